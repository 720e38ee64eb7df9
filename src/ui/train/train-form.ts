// The Train stage's form: what to train (dataset, method, the method's own settings), the student (preset with its
// parameter count, tokenizer, format) and the schedule (steps, batch, sequence length, LR, warmup, evaluation /
// checkpoint / sample intervals). Its settings are the field table of train-fields.ts: elements, reading,
// writing, saving and watching all come from it. Every change re-plans the run in the engine (debounced):
// parameter count, GPU memory against the adapter's limits, what stops it and what is worth a warning, each
// saying what to change. The settings survive a reload. Stable hooks: each field's id (train-fields.ts), and
// #train-use-seqkd (shown when token-level KD is impossible for this teacher/student pair: switches the method to
// SFT on the answers), #train-teacher, #train-plan[data-ok], #train-start.
import { presetConfig, PRESETS } from '../../model/config.ts';
import { countParams } from '../../model/params.ts';
import { methodOf } from '../../engine/runs/methods.ts';
import type { EngineModel, EngineTeacher, RunInfo, RunPlan, RunSpec } from '../../protocol.ts';
import type { RlJudge } from '../../engine/runs/types.ts';
import type { Dataset } from '../../store/schema.ts';
import { activeTeacher, loadPref, savePref } from '../app-state.ts';
import { errorText, formatBytes, h } from '../dom.ts';
import { engine, proxy, transferFiles } from '../engine-client.ts';
import { engineTeacher, pickedModelFiles } from '../services.ts';
import { hubUrl } from '../../engine/model-fetch.ts';
import { DEFAULT_SETTINGS, FIELDS, fieldShown, PRETRAINED, runsDenseTeacher, settingsProblem, specOf, type Field, type FormSettings, type SettingKey } from './train-fields.ts';

export { SOFTWARE_SETTINGS } from './train-fields.ts';

export interface TrainForm {
  element: HTMLElement;
  /** No settings were saved yet (the stage may pick defaults for this adapter). */
  firstVisit: boolean;
  /**
   * Fills the dataset and start-from selects (call when datasets or runs change). `topkTeachers`: for datasets
   * whose top-k rows came from a local teacher the engine can load, that teacher (a KD run from those rows takes
   * its tokenizer when the active teacher is another one, e.g. an API).
   */
  refresh(datasets: Dataset[], runs: RunInfo[], topkTeachers?: ReadonlyMap<string, EngineTeacher>): void;
  settings(): FormSettings;
  set(s: Partial<FormSettings>): void;
  /** Re-plans now (the teacher changed, a run finished). */
  replan(): void;
}

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

function control(f: Field, value: string | number): Control {
  const el: Control = f.kind === 'select' ? h('select', { id: f.id }) : f.kind === 'textarea' ? h('textarea', { id: f.id, ...(f.attrs ?? {}) })
    : h('input', { id: f.id, ...(f.kind === 'number' ? { type: 'number' } : {}), ...(f.attrs ?? {}) });
  if (el instanceof HTMLSelectElement && f.options) el.replaceChildren(...f.options.map(([v, l]) => h('option', { value: v }, l)));
  el.value = String(value);
  return el;
}

/** Rows of the form, by field key (a field not listed here is placed by hand). */
const ROWS: SettingKey[][] = [
  ['datasetId', 'method'],
  ['kdSource', 'ceWeight'],
  ['lambda', 'sampleTokens'],
  ['objective', 'temperature', 'beta', 'skewLambda'],
  ['pairBeta', 'rewardMargin'],
  ['rlReward', 'rewardRun', 'rlG', 'rlBeta', 'rlAdvantage', 'rlTokens'],
  ['mixTeacher', 'mixWeight'],
  ['preset', 'tokenizer', 'vocab', 'format', 'initFrom'],
  ['pretrained'],
  ['adapt', 'loraRank', 'loraAlpha', 'loraDropout', 'loraTargets', 'loraBase'],
];
/** The ROWS placed after the teacher note (each by its first key), the others before it in ROWS' order. */
const AFTER_NOTE: SettingKey[] = ['mixTeacher', 'preset', 'pretrained', 'adapt'];
const SCHEDULE: SettingKey[] = ['steps', 'batch', 'seqLen', 'lr', 'warmup', 'recompute'];
const INTERVALS: SettingKey[] = ['evalEvery', 'ckptEvery', 'sampleEvery', 'heldOutEvery'];

/** What planning measured of KD across tokenizers, for the plan. */
function crossShareText(c: RunPlan['crossShare']): string {
  if (!c) return 'Across tokenizers: how many tokens pair exactly is measured when the run is created (its new BPE is trained then) and shown with the run.';
  const n = c.exact + c.uld + c.none, pct = (x: number) => `${n ? Math.round((100 * x) / n) : 0}%`;
  return `Across tokenizers, on the first ${c.answers} answers: ${pct(c.exact)} of their tokens pair exactly with the teacher's (KL over shared strings), ${pct(c.uld)} by ULD, ${pct(c.none)} learn their label only${c.unaligned ? `; ${c.unaligned} answers cannot be aligned and are left out of KD` : ''}.`;
}

/** A run a new run can start from: trained, a whole model (a LoRA run's checkpoint holds adapters), not a reward model. */
const startable = (r: RunInfo): boolean => r.checkpointStep > 0 && !r.train.lora && r.spec.method !== 'reward';

export function trainForm(onStart: (spec: RunSpec) => Promise<void>): TrainForm {
  const stored = loadPref<Partial<FormSettings> | null>('train-form', null);
  const saved: FormSettings = { ...DEFAULT_SETTINGS, ...(stored ?? {}) };
  const els = new Map<SettingKey, Control>(), wrappers = new Map<SettingKey, HTMLElement>();
  for (const f of FIELDS as readonly Field[]) {
    const key = f.key as SettingKey;
    const el = control(f, saved[key]);
    els.set(key, el);
    wrappers.set(key, f.kind === 'textarea'
      ? h('label', { class: 'block' }, f.label, el)
      : h('label', { class: 'field', ...(f.hint ? { title: f.hint } : {}) }, f.label, el));
  }
  const el = (k: SettingKey) => els.get(k)!;
  const wrap = (k: SettingKey) => wrappers.get(k)!;
  (el('datasetId') as HTMLSelectElement).classList.add('wide');
  (el('initFrom') as HTMLSelectElement).classList.add('wide');
  const plan = h('div', { id: 'train-plan', class: 'muted' }, 'Pick a dataset.');
  const start = h('button', { id: 'train-start', disabled: true }, 'Start training');
  const seqKd = h('button', { id: 'train-use-seqkd', class: 'secondary' }, 'Train by SeqKD instead (SFT on the teacher’s answers)');
  const useCross = h('button', { id: 'train-use-cross', class: 'secondary' }, 'Distil across tokenizers instead (the stored top-k paired with the student’s tokens by text)');
  const useLora = h('button', { id: 'train-use-lora', class: 'secondary' }, 'Train LoRA adapters instead (the model stays frozen)');
  const teacherNote = h('p', { id: 'train-teacher', class: 'muted small' });
  // A pretrained student from disk: its files go to the engine once (held there); the field names the folder.
  const pickFiles = h('input', { id: 'train-pretrained-files', type: 'file', webkitdirectory: true, multiple: true, 'aria-label': 'Pick the pretrained model’s folder' });
  const pickWrap = h('label', { class: 'field' }, 'or pick its folder (config.json, *.safetensors, tokenizer.json)', pickFiles);
  let held: { name: string; key: string } | undefined;
  const PICKED = 'picked folder: ';
  // The second teacher of a mixture, picked from disk the same way.
  const pickMix = h('input', { id: 'train-mix-files', type: 'file', webkitdirectory: true, multiple: true, 'aria-label': 'Pick the second teacher’s folder' });
  const pickMixWrap = h('label', { class: 'field' }, 'or pick its folder', pickMix);
  let heldMix: { name: string; key: string } | undefined;

  const rows: HTMLElement[] = [];
  let lastDatasets: Dataset[] = [];
  let topkTeachers: ReadonlyMap<string, EngineTeacher> = new Map();
  const settings = (): FormSettings => Object.fromEntries((FIELDS as readonly Field[]).map((f) => {
    const v = els.get(f.key as SettingKey)!.value;
    return [f.key, f.kind === 'number' ? Number(v) : v];
  })) as FormSettings;

  /** The teacher the run takes: the active one when the engine can run it, else (KD from a dataset's stored top-k
   *  on the teacher's tokenizer) the local teacher that made those rows. */
  /** The pretrained student the settings name: a picked folder (held by the engine), a Hub id, or a folder URL. */
  const folderModel = (value: string, h: { name: string; key: string } | undefined): EngineModel | undefined => {
    const v = value.trim();
    if (v === '') return undefined;
    if (v.startsWith(PICKED)) return h && v === PICKED + h.name ? { label: h.name, source: { held: h.key } } : { label: v, source: { held: 'none' } };
    if (/^[\w.-]+\/[\w.-]+$/.test(v)) return { label: v, source: { url: hubUrl(v) } };
    const u = new URL(v, document.baseURI);
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    return { label: v, source: { url: u.href } };
  };
  const pretrainedOf = (s: FormSettings): EngineModel | undefined => (s.preset === PRETRAINED ? folderModel(s.pretrained, held) : undefined);
  const secondOf = (s: FormSettings): EngineModel | undefined => (runsDenseTeacher(s as unknown as Record<string, string | number>) ? folderModel(s.mixTeacher, heldMix) : undefined);
  /** RL judged by the teacher: the active teacher, found again by its reference (never a key). */
  const judgeOf = (): RlJudge | undefined => { const t = activeTeacher(); return t ? { ref: t.ref, label: t.model } : undefined; };
  const specFor = (s: FormSettings) => specOf(s, teacherFor(s), pretrainedOf(s), secondOf(s), judgeOf());

  const teacherFor = (s: FormSettings): EngineTeacher | undefined =>
    engineTeacher(activeTeacher()) ?? (methodOf(s).settings.includes('kd-source') && s.kdSource !== 'dense' ? topkTeachers.get(s.datasetId) : undefined);

  const syncVisibility = () => {
    const s = settings();
    for (const f of FIELDS as readonly Field[]) wrap(f.key as SettingKey).hidden = !fieldShown(f, s);
    pickWrap.hidden = s.preset !== PRETRAINED;
    pickMixWrap.hidden = !runsDenseTeacher(s as unknown as Record<string, string | number>);
    for (const r of rows) r.hidden = [...r.children].every((c) => (c as HTMLElement).hidden);
    const fromRun = s.initFrom !== '';
    for (const k of ['preset', 'tokenizer', 'vocab'] as const) el(k).disabled = fromRun;
    el('initFrom').disabled = s.preset === PRETRAINED; // a pretrained model is where the run starts
  };

  const renderPresets = () => {
    const preset = el('preset') as HTMLSelectElement;
    const s = settings();
    const v = s.tokenizer === 'teacher' ? undefined : s.vocab;
    const was = preset.value || saved.preset;
    preset.replaceChildren(...Object.keys(PRESETS).map((p) => {
      const c = presetConfig(p, v ? { vocabSize: v } : {});
      return h('option', { value: p }, `${p} — ${c.hidden} wide, ${c.layers} layers${v ? `, ${(countParams(c) / 1e6).toFixed(2)}M parameters` : ''}`);
    }), h('option', { value: PRETRAINED }, 'a pretrained model (SmolLM2, TinyLlama, Llama-3.2, Qwen2.5, Qwen3, … : a Hub id, a folder URL or a folder from disk)'));
    preset.value = PRESETS[was] || was === PRETRAINED ? was : 'micro';
    const t = activeTeacher(), et = teacherFor(s);
    teacherNote.textContent = t
      ? `Teacher: ${t.label}${engineTeacher(t) ? ' — its weights run on this GPU for dense KD, on-policy scoring and evaluation.'
        : ` — an API: token-level KD uses the top-k rows it returned (feature strategy)${et ? `; this dataset’s rows came from the local teacher ${et.label}, whose tokenizer the student takes` : ''}.`}`
      : 'No teacher chosen (step 1): SFT and DPO on a dataset still work; the teacher’s tokenizer and dense KD need a local teacher.';
  };

  let seq = 0, timer: ReturnType<typeof setTimeout> | undefined;
  const replan = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++seq;
      const s = settings();
      savePref('train-form', { ...s, name: '' });
      syncVisibility();
      start.disabled = true;
      plan.className = 'muted';
      if (!s.datasetId) { plan.textContent = 'Make or import a dataset in step 2 first.'; plan.dataset.ok = 'false'; return; }
      if (s.preset === PRETRAINED && !pretrainedOf(s)) { plan.textContent = 'Name the pretrained model (a Hub id such as HuggingFaceTB/SmolLM2-135M, or a folder URL), or pick its folder.'; plan.dataset.ok = 'false'; return; }
      const bad = settingsProblem(s);
      if (bad) { plan.className = 'error'; plan.textContent = bad; plan.dataset.ok = 'false'; return; }
      plan.textContent = 'Checking…';
      try {
        const p = await engine().planRun(specFor(s), proxy((m: string) => { if (mine === seq) plan.textContent = `Checking… ${m}`; }));
        if (mine !== seq) return;
        renderPlan(p, s);
        start.disabled = !p.ok;
      } catch (e) {
        if (mine !== seq) return;
        plan.className = 'error';
        plan.dataset.ok = 'false';
        plan.textContent = errorText(e);
      }
    }, 150);
  };

  const renderPlan = (p: RunPlan, s: FormSettings) => {
    plan.dataset.ok = String(p.ok);
    plan.className = '';
    const ds = lastDatasets.find((d) => d.id === s.datasetId);
    plan.replaceChildren(
      h('p', {}, h('strong', {}, `${(p.params / 1e6).toFixed(2)}M parameters`), ` · ${p.model.hidden} wide, ${p.model.layers} layers, ${p.model.heads} heads, vocabulary ${p.model.vocabSize}, context ${p.model.maxSeqLen}`),
      ...(p.lora ? [h('p', { id: 'train-lora-plan' }, `LoRA trains ${(p.lora.trainedParams / 1e6).toFixed(2)}M of them (${(100 * p.lora.trainedParams / p.params).toFixed(2)}%); full fine-tuning would need ≈ ${formatBytes(p.lora.fullMemory.bytes)} of GPU memory.`)] : []),
      h('p', { class: 'muted', id: 'train-memory' }, `GPU memory ≈ ${formatBytes(p.memory.bytes)} (largest buffer ${formatBytes(p.memory.largestBuffer)} of ${formatBytes(p.limits.maxBufferSize)} allowed) · ${p.train.batchSize * p.train.seqLen} tokens a step`),
      h('p', { class: 'muted small' }, p.memory.parts.filter((x) => x.bytes > 0).map((x) => `${x.name} ${formatBytes(x.bytes)}`).join(' · ')),
      h('p', { class: 'muted' }, `Dataset${ds ? ` “${ds.name}”` : ''}: ${p.dataset.records} records, ${p.dataset.pairs} pairs, ${p.dataset.topk} answers with teacher top-k; ${p.heldOut} held out for evaluation (every ${s.heldOutEvery}th).`),
      ...(p.alignment?.aligned ? [h('p', { class: 'muted' }, p.alignment.message)] : []),
      ...(s.kdSource === 'cross-topk' && methodOf(s).settings.includes('kd-source') ? [h('p', { id: 'train-cross-share', class: 'muted' }, crossShareText(p.crossShare))] : []),
      ...p.problems.map((x) => h('p', { class: 'note bad' }, x)),
      ...(p.offerCross ? [h('p', {}, useCross)] : []),
      ...(p.offerSeqKd ? [h('p', {}, seqKd)] : []),
      ...(p.offerLora ? [h('p', {}, useLora)] : []),
      ...p.warnings.map((x) => h('p', { class: 'warn' }, x)),
    );
  };

  for (const [key, c] of els) c.addEventListener('change', () => { if (key === 'tokenizer' || key === 'vocab') renderPresets(); replan(); });
  seqKd.addEventListener('click', () => { el('method').value = 'sft'; replan(); });
  useCross.addEventListener('click', () => { el('kdSource').value = 'cross-topk'; replan(); });
  useLora.addEventListener('click', () => { el('adapt').value = 'lora'; replan(); });
  pickFiles.addEventListener('change', async () => {
    const list = pickFiles.files;
    if (!list || list.length === 0) return;
    const files = await pickedModelFiles(list);
    const name = (list[0]!.webkitRelativePath || list[0]!.name).split('/')[0] || 'model';
    if (held) void engine().releaseFolder(held.key);
    held = { name, key: await engine().holdFolder(transferFiles(files)) };
    el('pretrained').value = PICKED + name;
    pickFiles.value = '';
    replan();
  });
  pickMix.addEventListener('change', async () => {
    const list = pickMix.files;
    if (!list || list.length === 0) return;
    const files = await pickedModelFiles(list);
    const name = (list[0]!.webkitRelativePath || list[0]!.name).split('/')[0] || 'model';
    if (heldMix) void engine().releaseFolder(heldMix.key);
    heldMix = { name, key: await engine().holdFolder(transferFiles(files)) };
    el('mixTeacher').value = PICKED + name;
    pickMix.value = '';
    replan();
  });
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      await onStart(specFor(settings()));
      el('name').value = '';
    } finally {
      replan();
    }
  });

  renderPresets();
  const row = (keys: SettingKey[]) => {
    const r = h('div', { class: 'row' }, ...keys.map(wrap));
    rows.push(r);
    return r;
  };
  const rowOf = (first: SettingKey) => row(ROWS.find((r) => r[0] === first)!);
  const element = h('div', { id: 'train-form', class: 'subcard' },
    h('h3', {}, 'New run'),
    // The method's own rows, the teacher note, then the rows with a folder picker after them (found by their first key).
    ...ROWS.filter((r) => !AFTER_NOTE.includes(r[0]!)).map(row), teacherNote, rowOf('mixTeacher'), pickMixWrap, rowOf('preset'), rowOf('pretrained'),
    pickWrap, rowOf('adapt'), wrap('chatTemplate'),
    row(SCHEDULE),
    h('details', {}, h('summary', { class: 'muted' }, 'Evaluation, checkpoints, samples, name'),
      row(INTERVALS), wrap('prompts'), row(['name'])),
    plan, h('div', { class: 'buttons' }, start),
  );
  // Every setting of FIELDS must be on the form (a setting left out would be invisible yet sent): said loudly.
  const missing = [...wrappers.keys()].filter((k) => !element.contains(wrap(k)));
  if (missing.length) console.error(`train form: settings not placed on the form: ${missing.join(', ')}`);
  syncVisibility();

  return {
    element,
    settings,
    firstVisit: stored === null,
    set(s) {
      for (const [k, v] of Object.entries(s)) if (v !== undefined) els.get(k as SettingKey)!.value = String(v);
      renderPresets();
      replan();
    },
    refresh(datasets, runs, teachers) {
      lastDatasets = datasets;
      if (teachers) topkTeachers = teachers;
      const dataset = el('datasetId') as HTMLSelectElement, initFrom = el('initFrom') as HTMLSelectElement, rewardRun = el('rewardRun') as HTMLSelectElement;
      const want = dataset.value || saved.datasetId;
      dataset.replaceChildren(...datasets.map((d) => h('option', { value: d.id }, `${d.name} — ${d.counts.records} records, ${d.counts.pairs} pairs${d.counts.topk ? `, top-k on ${d.counts.topk}` : ''}`)));
      dataset.value = datasets.some((d) => d.id === want) ? want : datasets.at(-1)?.id ?? '';
      const wantInit = initFrom.value || saved.initFrom;
      initFrom.replaceChildren(h('option', { value: '' }, 'random weights'),
        // A LoRA run's checkpoint holds adapters, not a model: it is started from by exporting its merged model.
        // A reward model's trunk is not a language model to start from.
        ...runs.filter(startable).map((r) => h('option', { value: r.id }, `run “${r.name}” (step ${r.checkpointStep})`)));
      initFrom.value = runs.some((r) => r.id === wantInit && startable(r)) ? wantInit : '';
      // RL's reward models: trained reward-model runs.
      const rms = runs.filter((r) => r.spec.method === 'reward' && r.checkpointStep > 0), wantRm = rewardRun.value || saved.rewardRun;
      rewardRun.replaceChildren(...(rms.length ? rms.map((r) => h('option', { value: r.id }, `“${r.name}” (step ${r.checkpointStep}${r.lastEval?.pairAccuracy !== undefined ? `, held-out accuracy ${(r.lastEval.pairAccuracy * 100).toFixed(0)}%` : ''})`))
        : [h('option', { value: '' }, 'none yet: train one with the method “Reward model” first')]));
      rewardRun.value = rms.some((r) => r.id === wantRm) ? wantRm : rms.at(-1)?.id ?? '';
      renderPresets();
      replan();
    },
    replan: () => { renderPresets(); replan(); },
  };
}
