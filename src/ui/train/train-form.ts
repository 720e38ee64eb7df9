// The Train stage's form: what to train (dataset, method, the teacher signal, the objective), the student (preset
// with its parameter count, tokenizer, format) and the schedule (steps, batch, sequence length, LR, warmup,
// evaluation/checkpoint/sample intervals). Every change re-plans the run in the engine (debounced): parameter
// count, GPU memory against the adapter's limits, and what stops it, each saying what to change. The settings
// survive a reload. Stable hooks: #train-dataset, #train-method, #train-kd-source, #train-objective, #train-tau,
// #train-ce, #train-beta, #train-init, #train-lambda, #train-preset, #train-tokenizer, #train-vocab, #train-format,
// #train-template (format 'template': a pasted Jinja chat template; empty = the teacher's), #train-use-seqkd (shown
// when token-level KD is impossible for this teacher/student pair: switches the method to SFT on the answers),
// #train-steps, #train-batch, #train-seqlen, #train-lr, #train-warmup, #train-eval-every, #train-ckpt-every,
// #train-sample-every, #train-heldout, #train-prompts, #train-name, #train-plan[data-ok], #train-start.
import { KD_OBJECTIVES } from '../../kernels/loss/loss.config.ts';
import { presetConfig, PRESETS } from '../../model/config.ts';
import { countParams } from '../../model/params.ts';
import type { RunInfo, RunMethod, RunPlan, RunSpec } from '../../protocol.ts';
import type { Dataset } from '../../store/schema.ts';
import { activeTeacher, loadPref, savePref, type ActiveTeacher } from '../app-state.ts';
import { errorText, formatBytes, h } from '../dom.ts';
import { engine } from '../engine-client.ts';
import { engineTeacher } from '../services.ts';

const METHODS: [RunMethod, string][] = [
  ['sft', 'SFT on the teacher’s answers (sequence-level KD)'],
  ['kd', 'Token-level KD (match the teacher’s distributions)'],
  ['on-policy', 'On-policy KD (GKD: the student’s own samples, scored by the teacher)'],
  ['dpo', 'DPO on preference pairs'],
  ['ipo', 'IPO on preference pairs'],
];
const OBJECTIVE_LABELS: Record<string, string> = {
  fkl: 'forward KL(teacher ‖ student)', rkl: 'reverse KL(student ‖ teacher)', jsd: 'generalized JSD(β)', tvd: 'total variation',
  skew_fkl: 'skew forward KL(λ)', skew_rkl: 'skew reverse KL(λ)',
};

export interface FormSettings {
  datasetId: string;
  method: RunMethod;
  kdSource: 'store-topk' | 'dense';
  objective: string;
  temperature: number;
  ceWeight: number;
  beta: number;
  skewLambda: number;
  pairBeta: number;
  initFrom: string;
  lambda: number;
  sampleTokens: number;
  preset: string;
  tokenizer: 'bpe' | 'teacher';
  vocab: number;
  format: 'continuation' | 'chat' | 'template';
  /** format 'template': a Jinja chat template; '' = the teacher's own. */
  chatTemplate: string;
  steps: number;
  batch: number;
  seqLen: number;
  lr: number;
  warmup: number;
  evalEvery: number;
  ckptEvery: number;
  sampleEvery: number;
  heldOutEvery: number;
  prompts: string;
  name: string;
}

export const DEFAULT_SETTINGS: FormSettings = {
  datasetId: '', method: 'kd', kdSource: 'store-topk', objective: 'fkl', temperature: 1, ceWeight: 0.5, beta: 0.5, skewLambda: 0.1,
  pairBeta: 0.1, initFrom: '', lambda: 0.5, sampleTokens: 24, preset: 'micro', tokenizer: 'teacher', vocab: 2048, format: 'continuation', chatTemplate: '',
  steps: 200, batch: 8, seqLen: 64, lr: 3e-3, warmup: 20, evalEvery: 25, ckptEvery: 25, sampleEvery: 50, heldOutEvery: 10, prompts: '', name: '',
};

/** A RunSpec from the form's settings (and the active teacher). */
export function specOf(s: FormSettings, teacher: ActiveTeacher | null): RunSpec {
  const t = engineTeacher(teacher);
  const prompts = s.prompts.split('\n').map((x) => x.trim()).filter(Boolean);
  const train: RunSpec['train'] = {
    steps: s.steps, batchSize: s.batch, seqLen: s.seqLen, lr: s.lr, warmupSteps: Math.min(s.warmup, s.steps),
    evalEvery: s.evalEvery, checkpointEvery: s.ckptEvery,
  };
  if (s.method === 'kd' || s.method === 'on-policy') {
    Object.assign(train, { objective: s.objective, temperature: s.temperature, beta: s.beta, lambda: s.skewLambda });
    if (s.method === 'kd') Object.assign(train, { ceWeight: s.ceWeight, kdWeight: 1 - s.ceWeight });
  }
  return {
    name: s.name.trim() || `${s.method}${s.method === 'kd' ? `-${s.kdSource === 'dense' ? 'dense' : 'topk'}-${s.objective}` : ''} ${new Date().toISOString().slice(5, 16).replace('T', ' ')}`,
    datasetId: s.datasetId, preset: s.preset, tokenizer: s.tokenizer === 'teacher' ? { kind: 'teacher' } : { kind: 'bpe', vocabSize: s.vocab },
    format: s.format, ...(s.format === 'template' && s.chatTemplate.trim() ? { chatTemplate: s.chatTemplate } : {}), method: s.method, ...(s.method === 'kd' ? { kdSource: s.kdSource } : {}),
    // The teacher rides along whenever the engine can run it: its tokenizer, dense KD, and evaluation against it.
    ...(t ? { teacher: t } : {}),
    train,
    ...(s.method === 'dpo' || s.method === 'ipo' ? { pairBeta: s.pairBeta } : {}),
    ...(s.initFrom ? { initFrom: s.initFrom } : {}),
    ...(s.method === 'on-policy' ? { onPolicy: { lambda: s.lambda, maxNewTokens: s.sampleTokens, temperature: 1 } } : {}),
    sampleEvery: s.sampleEvery, samplePrompts: prompts.slice(0, 3), heldOutEvery: s.heldOutEvery,
  };
}

const num = (el: HTMLInputElement) => Number(el.value);

export interface TrainForm {
  element: HTMLElement;
  /** No settings were saved yet (the stage may pick defaults for this adapter). */
  firstVisit: boolean;
  /** Fills the dataset and start-from selects (call when datasets or runs change). */
  refresh(datasets: Dataset[], runs: RunInfo[]): void;
  settings(): FormSettings;
  set(s: Partial<FormSettings>): void;
  /** Re-plans now (the teacher changed, a run finished). */
  replan(): void;
}

/** First-visit defaults for a software adapter (SwiftShader): a student and a schedule that finish in minutes there. */
export const SOFTWARE_SETTINGS: Partial<FormSettings> = { preset: 'nano', steps: 20, batch: 4, seqLen: 32, evalEvery: 5, ckptEvery: 5, sampleEvery: 10 };

export function trainForm(onStart: (spec: RunSpec) => Promise<void>): TrainForm {
  const stored = loadPref<Partial<FormSettings> | null>('train-form', null);
  const saved = { ...DEFAULT_SETTINGS, ...(stored ?? {}) };
  const input = (id: string, value: string | number, attrs: Record<string, string> = {}) => h('input', { id, value: String(value), ...attrs });
  const numIn = (id: string, value: number, attrs: Record<string, string>) => input(id, value, { type: 'number', ...attrs });
  const select = (id: string, options: [string, string][], value: string) => {
    const el = h('select', { id }, ...options.map(([v, l]) => h('option', { value: v }, l)));
    el.value = value;
    return el;
  };
  const dataset = h('select', { id: 'train-dataset', class: 'wide' });
  const method = select('train-method', METHODS, saved.method);
  const kdSource = select('train-kd-source', [['store-topk', 'the dataset’s stored top-k (feature strategy)'], ['dense', 'the teacher model’s full distributions, computed while training']], saved.kdSource);
  const objective = select('train-objective', KD_OBJECTIVES.filter((o) => o !== 'none').map((o) => [o, OBJECTIVE_LABELS[o] ?? o]), saved.objective);
  const tau = numIn('train-tau', saved.temperature, { min: '0.1', max: '10', step: '0.1' });
  const ce = numIn('train-ce', saved.ceWeight, { min: '0', max: '1', step: '0.05' });
  const beta = numIn('train-beta', saved.beta, { min: '0', max: '1', step: '0.05' });
  const skew = numIn('train-skew', saved.skewLambda, { min: '0', max: '0.99', step: '0.05' });
  const pairBeta = numIn('train-pair-beta', saved.pairBeta, { min: '0.01', max: '10', step: '0.01' });
  const initFrom = h('select', { id: 'train-init', class: 'wide' });
  const lambda = numIn('train-lambda', saved.lambda, { min: '0', max: '1', step: '0.05' });
  const sampleTokens = numIn('train-sample-tokens', saved.sampleTokens, { min: '1', max: '256' });
  const preset = h('select', { id: 'train-preset' });
  const tokenizer = select('train-tokenizer', [['teacher', 'the teacher’s own (needed for token-level KD)'], ['bpe', 'a new BPE trained on this dataset']], saved.tokenizer);
  const vocab = numIn('train-vocab', saved.vocab, { min: '260', max: '65536', step: '64' });
  const format = select('train-format', [
    ['continuation', 'continuation (the answer follows the prompt, as a base LM)'],
    ['chat', 'chat (role headers; exported with a chat template)'],
    ['template', 'the teacher’s chat template (or one you paste)'],
  ], saved.format);
  const chatTemplate = h('textarea', { id: 'train-template', rows: '3', spellcheck: 'false', placeholder: 'empty: the teacher’s own chat template (its tokenizer_config.json); or paste a Jinja chat template' });
  chatTemplate.value = saved.chatTemplate;
  const steps = numIn('train-steps', saved.steps, { min: '1', max: '1000000' });
  const batch = numIn('train-batch', saved.batch, { min: '1', max: '512' });
  const seqLen = numIn('train-seqlen', saved.seqLen, { min: '8', max: '4096' });
  const lr = numIn('train-lr', saved.lr, { min: '0.00001', max: '1', step: '0.0001' });
  const warmup = numIn('train-warmup', saved.warmup, { min: '0', max: '100000' });
  const evalEvery = numIn('train-eval-every', saved.evalEvery, { min: '0', max: '100000' });
  const ckptEvery = numIn('train-ckpt-every', saved.ckptEvery, { min: '0', max: '100000' });
  const sampleEvery = numIn('train-sample-every', saved.sampleEvery, { min: '0', max: '100000' });
  const heldOut = numIn('train-heldout', saved.heldOutEvery, { min: '2', max: '1000' });
  const prompts = h('textarea', { id: 'train-prompts', rows: '2', spellcheck: 'false', placeholder: 'one per line (up to 3)' });
  prompts.value = saved.prompts;
  const name = input('train-name', saved.name, { placeholder: 'named after the method and time', class: 'wide' });
  const plan = h('div', { id: 'train-plan', class: 'muted' }, 'Pick a dataset.');
  const start = h('button', { id: 'train-start', disabled: true }, 'Start training');
  const seqKd = h('button', { id: 'train-use-seqkd', class: 'secondary' }, 'Train by SeqKD instead (SFT on the teacher’s answers)');
  const teacherNote = h('p', { id: 'train-teacher', class: 'muted small' });

  let lastDatasets: Dataset[] = [];
  const settings = (): FormSettings => ({
    datasetId: dataset.value, method: method.value as RunMethod, kdSource: kdSource.value as FormSettings['kdSource'], objective: objective.value,
    temperature: num(tau), ceWeight: num(ce), beta: num(beta), skewLambda: num(skew), pairBeta: num(pairBeta), initFrom: initFrom.value,
    lambda: num(lambda), sampleTokens: num(sampleTokens), preset: preset.value, tokenizer: tokenizer.value as FormSettings['tokenizer'], vocab: num(vocab),
    format: format.value as FormSettings['format'], chatTemplate: chatTemplate.value, steps: num(steps), batch: num(batch), seqLen: num(seqLen), lr: num(lr), warmup: num(warmup),
    evalEvery: num(evalEvery), ckptEvery: num(ckptEvery), sampleEvery: num(sampleEvery), heldOutEvery: num(heldOut), prompts: prompts.value, name: name.value,
  });

  const field = (label: string, el: HTMLElement, hint?: string) => h('label', { class: 'field', ...(hint ? { title: hint } : {}) }, label, el);
  const kdRow = h('div', { class: 'row' }, field('teacher signal', kdSource), field('CE share', ce, 'weight of cross-entropy on the real next token; KD gets 1 − this'));
  const betaField = field('β (JSD)', beta), skewField = field('λ (skew KL)', skew);
  const objRow = h('div', { class: 'row' }, field('divergence', objective), field('τ', tau, 'temperature of the KD term'), betaField, skewField);
  const pairRow = h('div', { class: 'row' }, field('β (DPO/IPO)', pairBeta));
  const opRow = h('div', { class: 'row' }, field('λ: share of on-policy steps', lambda), field('sample length', sampleTokens));
  const vocabField = field('vocabulary', vocab);
  const templateField = h('label', { class: 'block' }, 'Chat template (Jinja): records are rendered with it, only the assistant’s tokens are trained, and exports carry it', chatTemplate);
  const syncVisibility = () => {
    const m = method.value;
    kdRow.hidden = m !== 'kd';
    opRow.hidden = m !== 'on-policy';
    objRow.hidden = m !== 'kd' && m !== 'on-policy';
    betaField.hidden = objective.value !== 'jsd';
    skewField.hidden = !objective.value.startsWith('skew');
    pairRow.hidden = m !== 'dpo' && m !== 'ipo';
    vocabField.hidden = tokenizer.value !== 'bpe';
    templateField.hidden = format.value !== 'template';
    const fromRun = initFrom.value !== '';
    preset.disabled = fromRun;
    tokenizer.disabled = fromRun;
    vocab.disabled = fromRun;
  };

  const renderPresets = () => {
    const t = activeTeacher();
    const v = tokenizer.value === 'teacher' ? undefined : num(vocab);
    const was = preset.value || saved.preset;
    preset.replaceChildren(...Object.keys(PRESETS).map((p) => {
      const c = presetConfig(p, v ? { vocabSize: v } : {});
      const n = countParams(c);
      return h('option', { value: p }, `${p} — ${c.hidden} wide, ${c.layers} layers${v ? `, ${(n / 1e6).toFixed(2)}M parameters` : ''}`);
    }));
    preset.value = PRESETS[was] ? was : 'micro';
    teacherNote.textContent = t
      ? `Teacher: ${t.label}${engineTeacher(t) ? ' — its weights run on this GPU for dense KD, on-policy scoring and evaluation.' : ' — an API: token-level KD uses the top-k rows it returned (feature strategy).'}`
      : 'No teacher chosen (step 1): SFT and DPO on a dataset still work; the teacher’s tokenizer and dense KD need a local teacher.';
  };

  let seq = 0, timer: ReturnType<typeof setTimeout> | undefined;
  const replan = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++seq;
      const s = settings();
      savePref('train-form', { ...s, datasetId: s.datasetId, name: '' });
      syncVisibility();
      start.disabled = true;
      if (!s.datasetId) { plan.className = 'muted'; plan.textContent = 'Make or import a dataset in step 2 first.'; plan.dataset.ok = 'false'; return; }
      plan.className = 'muted';
      plan.textContent = 'Checking…';
      try {
        const p: RunPlan = await engine().planRun(specOf(s, activeTeacher()));
        if (mine !== seq) return;
        renderPlan(p);
        start.disabled = !p.ok;
      } catch (e) {
        if (mine !== seq) return;
        plan.className = 'error';
        plan.dataset.ok = 'false';
        plan.textContent = errorText(e).replace(/^Error: /, '');
      }
    }, 150);
  };

  const renderPlan = (p: RunPlan) => {
    plan.dataset.ok = String(p.ok);
    plan.className = '';
    const ds = lastDatasets.find((d) => d.id === dataset.value);
    plan.replaceChildren(
      h('p', {}, h('strong', {}, `${(p.params / 1e6).toFixed(2)}M parameters`), ` · ${p.model.hidden} wide, ${p.model.layers} layers, ${p.model.heads} heads, vocabulary ${p.model.vocabSize}, context ${p.model.maxSeqLen}`),
      h('p', { class: 'muted' }, `GPU memory ≈ ${formatBytes(p.memory.bytes)} (largest buffer ${formatBytes(p.memory.largestBuffer)} of ${formatBytes(p.limits.maxBufferSize)} allowed) · ${p.train.batchSize * p.train.seqLen} tokens a step`),
      h('p', { class: 'muted' }, `Dataset${ds ? ` “${ds.name}”` : ''}: ${p.dataset.records} records, ${p.dataset.pairs} pairs, ${p.dataset.topk} answers with teacher top-k (every ${num(heldOut)}th held out for evaluation).`),
      ...(p.alignment?.aligned ? [h('p', { class: 'muted' }, p.alignment.message)] : []),
      ...p.problems.map((x) => h('p', { class: 'note bad' }, x)),
      ...(p.offerSeqKd ? [h('p', {}, seqKd)] : []),
      ...p.warnings.map((x) => h('p', { class: 'warn' }, x)),
    );
  };

  for (const el of [dataset, method, kdSource, objective, tau, ce, beta, skew, pairBeta, initFrom, lambda, sampleTokens, preset, tokenizer, vocab, format, chatTemplate, steps, batch, seqLen, lr, warmup, evalEvery, ckptEvery, sampleEvery, heldOut, prompts, name]) {
    el.addEventListener('change', () => { if (el === tokenizer || el === vocab) renderPresets(); replan(); });
  }
  seqKd.addEventListener('click', () => { method.value = 'sft'; replan(); });
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      await onStart(specOf(settings(), activeTeacher()));
      name.value = '';
    } finally {
      replan();
    }
  });

  renderPresets();
  syncVisibility();
  const element = h('div', { id: 'train-form', class: 'subcard' },
    h('h3', {}, 'New run'),
    h('div', { class: 'row' }, field('dataset', dataset), field('method', method)),
    kdRow, opRow, objRow, pairRow, teacherNote,
    h('div', { class: 'row' }, field('student', preset), field('tokenizer', tokenizer), vocabField, field('format', format), field('start from', initFrom)),
    templateField,
    h('div', { class: 'row' }, field('steps', steps), field('batch', batch), field('sequence length', seqLen), field('learning rate', lr), field('warmup steps', warmup)),
    h('details', {}, h('summary', { class: 'muted' }, 'Evaluation, checkpoints, samples, name'),
      h('div', { class: 'row' }, field('held-out eval every', evalEvery), field('checkpoint every', ckptEvery), field('samples every', sampleEvery), field('hold out every Nth record', heldOut)),
      h('label', { class: 'block' }, 'Sample prompts (the student continues them during training)'), prompts,
      h('div', { class: 'row' }, field('run name', name))),
    plan, h('div', { class: 'buttons' }, start),
  );

  return {
    element,
    settings,
    firstVisit: stored === null,
    set(s) {
      const els: Partial<Record<keyof FormSettings, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>> = {
        datasetId: dataset, method, kdSource, objective, temperature: tau, ceWeight: ce, beta, skewLambda: skew, pairBeta, initFrom, lambda,
        sampleTokens, preset, tokenizer, vocab, format, chatTemplate, steps, batch, seqLen, lr, warmup, evalEvery, ckptEvery, sampleEvery, heldOutEvery: heldOut, prompts, name,
      };
      for (const [k, v] of Object.entries(s)) { const el = els[k as keyof FormSettings]; if (el && v !== undefined) el.value = String(v); }
      renderPresets();
      replan();
    },
    refresh(datasets, runs) {
      lastDatasets = datasets;
      const want = dataset.value || saved.datasetId;
      dataset.replaceChildren(...datasets.map((d) => h('option', { value: d.id }, `${d.name} — ${d.counts.records} records, ${d.counts.pairs} pairs${d.counts.topk ? `, top-k on ${d.counts.topk}` : ''}`)));
      dataset.value = datasets.some((d) => d.id === want) ? want : datasets.at(-1)?.id ?? '';
      const wantInit = initFrom.value || saved.initFrom;
      initFrom.replaceChildren(h('option', { value: '' }, 'random weights'),
        ...runs.filter((r) => r.checkpointStep > 0).map((r) => h('option', { value: r.id }, `run “${r.name}” (step ${r.checkpointStep})`)));
      initFrom.value = runs.some((r) => r.id === wantInit && r.checkpointStep > 0) ? wantInit : '';
      renderPresets();
      replan();
    },
    replan: () => { renderPresets(); replan(); },
  };
}
