// The Train form's settings as one table: each setting's key, element id (a stable hook for tests), label, kind,
// default, and — for a method's own settings — which METHODS setting it belongs to (the form shows it only for
// methods that have it). The form builds its elements, reads, writes, saves and watches them from this table; the
// RunSpec is made from the settings by specOf, generically from the method's entry.
import { KD_OBJECTIVES } from '../../kernels/loss/loss.config.ts';
import { METHODS, methodOf, type MethodSetting } from '../../engine/runs/methods.ts';
import type { EngineModel, RunMethod, RunSpec } from '../../protocol.ts';
import type { KdSource, RlJudge } from '../../engine/runs/types.ts';

type Kind = 'number' | 'select' | 'text' | 'textarea';

/** The student select's value for "a pretrained model" (the other values are presets). */
export const PRETRAINED = 'pretrained';

export interface Field<K extends string = string, V extends string | number = string | number> {
  key: K;
  id: string;
  label: string;
  kind: Kind;
  default: V;
  /** Static options of a select (others are filled by the form: datasets, runs, presets). */
  options?: readonly (readonly [string, string])[];
  attrs?: Record<string, string>;
  hint?: string;
  /** A method's own setting: shown only when the chosen method has it. */
  setting?: MethodSetting;
  /** Shown only when this holds (besides `setting`); sees the settings untyped (their type comes from this table). */
  when?: (s: Readonly<Record<string, string | number>>) => boolean;
}

const num = <K extends string>(key: K, id: string, label: string, dflt: number, attrs: Record<string, string>, more: Partial<Field> = {}): Field<K, number> =>
  ({ key, id, label, kind: 'number', default: dflt, attrs, ...more }) as Field<K, number>;
const sel = <K extends string, V extends string = string>(key: K, id: string, label: string, dflt: NoInfer<V>, options?: readonly (readonly [string, string])[], more: Partial<Field> = {}): Field<K, V> =>
  ({ key, id, label, kind: 'select', default: dflt, ...(options ? { options } : {}), ...more }) as Field<K, V>;
const text = <K extends string>(key: K, id: string, label: string, kind: 'text' | 'textarea', attrs: Record<string, string>, more: Partial<Field> = {}): Field<K, string> =>
  ({ key, id, label, kind, default: '', attrs, ...more }) as Field<K, string>;

/** LoRA's target sets offered by the form. */
export const LORA_TARGET_SETS = { all: ['wq', 'wk', 'wv', 'wo', 'w_gate', 'w_up', 'w_down'], attention: ['wq', 'wk', 'wv', 'wo'], qv: ['wq', 'wv'] } as const;

/** The method runs the teacher model for its logits (dense KD, on-policy): a second teacher can be mixed in. */
export const runsDenseTeacher = (s: Readonly<Record<string, string | number>>): boolean => (s.method === 'kd' && s.kdSource === 'dense') || s.method === 'on-policy';

/** A pretrained student: the model LoRA adapts (a run's weights are adapted by exporting them and picking the folder). */
const startsTrained = (s: Readonly<Record<string, string | number>>): boolean => s.preset === PRETRAINED;

const OBJECTIVE_LABELS: Record<string, string> = {
  fkl: 'forward KL(teacher ‖ student)', rkl: 'reverse KL(student ‖ teacher)', jsd: 'generalized JSD(β)', tvd: 'total variation',
  skew_fkl: 'skew forward KL(λ)', skew_rkl: 'skew reverse KL(λ)',
};

export const FIELDS = [
  sel('datasetId', 'train-dataset', 'dataset', ''),
  sel<'method', RunMethod>('method', 'train-method', 'method', 'kd', Object.values(METHODS).map((m) => [m.id, m.label] as const)),
  sel<'kdSource', KdSource>('kdSource', 'train-kd-source', 'teacher signal', 'store-topk',
    [['store-topk', 'the dataset’s stored top-k (feature strategy)'], ['cross-topk', 'the stored top-k, across tokenizers (a teacher whose tokenizer is not the student’s)'], ['dense', 'the teacher model’s full distributions, computed while training']], { setting: 'kd-source' }),
  num('ceWeight', 'train-ce', 'CE share', 0.5, { min: '0', max: '1', step: '0.05' }, { setting: 'ce-share', hint: 'weight of cross-entropy on the real next token; KD gets 1 − this' }),
  num('lambda', 'train-lambda', 'λ: share of on-policy steps', 0.5, { min: '0', max: '1', step: '0.05' }, { setting: 'on-policy' }),
  num('sampleTokens', 'train-sample-tokens', 'sample length', 24, { min: '1', max: '256' }, { setting: 'on-policy' }),
  sel('objective', 'train-objective', 'divergence', 'fkl', KD_OBJECTIVES.filter((o) => o !== 'none').map((o) => [o, OBJECTIVE_LABELS[o] ?? o] as const), { setting: 'divergence' }),
  num('temperature', 'train-tau', 'τ', 1, { min: '0.1', max: '10', step: '0.1' }, { setting: 'divergence', hint: 'temperature of the KD term' }),
  num('beta', 'train-beta', 'β (JSD)', 0.5, { min: '0', max: '1', step: '0.05' }, { setting: 'divergence', when: (s) => s.objective === 'jsd' }),
  num('skewLambda', 'train-skew', 'λ (skew KL)', 0.1, { min: '0', max: '0.99', step: '0.05' }, { setting: 'divergence', when: (s) => String(s.objective).startsWith('skew') }),
  text('mixTeacher', 'train-mix-teacher', 'second teacher, mixed in (same tokenizer; a Hub id or a folder URL, or pick its folder; empty: the teacher alone)', 'text',
    { placeholder: 'empty: the teacher alone', class: 'wide', spellcheck: 'false' }, { when: runsDenseTeacher }),
  num('mixWeight', 'train-mix-weight', 'its weight', 0.5, { min: '0', max: '1', step: '0.05' },
    { when: (s) => runsDenseTeacher(s) && String(s.mixTeacher).trim() !== '', hint: 'the student learns (1 − w)·p_teacher + w·p_second; evaluation shows KL to each' }),
  num('pairBeta', 'train-pair-beta', 'β (DPO/IPO)', 0.1, { min: '0.01', max: '10', step: '0.01' }, { setting: 'pair-beta' }),
  num('rewardMargin', 'train-reward-margin', 'margin', 0, { min: '0', max: '10', step: '0.1' }, { setting: 'reward-margin', hint: 'each chosen answer must outscore its rejected one by this much (Bradley–Terry with a margin); 0 = plain' }),
  sel<'rlReward', 'model' | 'judge'>('rlReward', 'train-rl-reward', 'rewards from', 'model', [['model', 'a reward model run'], ['judge', 'the active teacher as a judge (grades 1–10)']],
    { setting: 'rl', hint: 'a reward model scores on this GPU; the teacher as judge grades every answer (remote: one request each, every grade kept so none is asked twice)' }),
  sel('rewardRun', 'train-reward-run', 'reward model', '', undefined, { setting: 'rl', when: (s) => s.rlReward !== 'judge', hint: 'a run of the method “Reward model”, trained from the same student (same tokenizer)' }),
  num('rlG', 'train-rl-g', 'answers per prompt (G)', 4, { min: '2', max: '64' }, { setting: 'rl', hint: 'GRPO compares G answers to one prompt: each learns by how much its reward beats the group’s' }),
  num('rlBeta', 'train-rl-beta', 'KL weight β', 0.1, { min: '0', max: '10', step: '0.01' }, { setting: 'rl', hint: 'how strongly the student is held near where it started (the frozen reference)' }),
  sel<'rlAdvantage', 'grpo' | 'mean' | 'rloo'>('rlAdvantage', 'train-rl-advantage', 'advantage', 'grpo', [['grpo', 'GRPO (reward − group mean) / std'], ['mean', 'Dr. GRPO (reward − group mean)'], ['rloo', 'RLOO (reward − mean of the others)']], { setting: 'rl' }),
  num('rlTokens', 'train-rl-tokens', 'answer length', 24, { min: '1', max: '512' }, { setting: 'rl' }),
  sel('preset', 'train-preset', 'student', 'micro'),
  text('pretrained', 'train-pretrained', 'pretrained model (a Hub id, owner/name, or a folder URL; or pick its folder)', 'text',
    { placeholder: 'HuggingFaceTB/SmolLM2-135M', class: 'wide', spellcheck: 'false' }, { when: (s) => s.preset === PRETRAINED }),
  sel<'tokenizer', 'bpe' | 'teacher'>('tokenizer', 'train-tokenizer', 'tokenizer', 'teacher', [['teacher', 'the teacher’s own (needed for token-level KD)'], ['bpe', 'a new BPE trained on this dataset']],
    { when: (s) => s.preset !== PRETRAINED }),
  num('vocab', 'train-vocab', 'vocabulary', 2048, { min: '260', max: '65536', step: '64' }, { when: (s) => s.tokenizer === 'bpe' && s.preset !== PRETRAINED }),
  sel<'format', 'continuation' | 'chat' | 'template'>('format', 'train-format', 'format', 'continuation', [
    ['continuation', 'continuation (the answer follows the prompt, as a base LM)'],
    ['chat', 'chat (role headers; exported with a chat template)'],
    ['template', 'the teacher’s chat template (or one you paste)'],
  ]),
  sel('initFrom', 'train-init', 'start from', ''),
  // What trains, for a student that starts from trained weights (a pretrained model or a run).
  sel<'adapt', 'full' | 'lora'>('adapt', 'train-adapt', 'train', 'full', [['full', 'every weight (full fine-tuning)'], ['lora', 'LoRA adapters on the frozen model (far less memory)']],
    { when: startsTrained, hint: 'LoRA trains small low-rank adapters (rank r, scale α/r) beside the frozen weights: the optimizer state shrinks from 16 bytes per parameter to almost nothing' }),
  num('loraRank', 'train-lora-rank', 'rank r', 16, { min: '1', max: '256' }, { when: (s) => startsTrained(s) && s.adapt === 'lora' }),
  num('loraAlpha', 'train-lora-alpha', 'α', 32, { min: '0.1', max: '1024', step: '0.1' }, { when: (s) => startsTrained(s) && s.adapt === 'lora', hint: 'the adapters’ update is scaled by α / r' }),
  num('loraDropout', 'train-lora-dropout', 'dropout', 0, { min: '0', max: '0.95', step: '0.05' },
    { when: (s) => startsTrained(s) && s.adapt === 'lora', hint: 'PEFT’s lora_dropout: each step drops this share of the adapters’ inputs (training only; 0 = none, 0.05–0.1 is usual)' }),
  sel<'loraTargets', 'all' | 'attention' | 'qv'>('loraTargets', 'train-lora-targets', 'adapted layers', 'all', [
    ['all', 'q, k, v, o, gate, up, down (all linear layers)'], ['attention', 'q, k, v, o (attention)'], ['qv', 'q and v only (the original LoRA)'],
  ], { when: (s) => startsTrained(s) && s.adapt === 'lora' }),
  sel<'loraBase', 'f32' | 'bf16'>('loraBase', 'train-lora-base', 'frozen model held as', 'f32', [['f32', 'f32 (exact)'], ['bf16', 'bf16, 16 bits (half the memory)']],
    { when: (s) => startsTrained(s) && s.adapt === 'lora', hint: 'the frozen linear weights in 16 bits: half their memory, at bf16 precision (as the Hub ships most models)' }),
  text('chatTemplate', 'train-template', 'Chat template (Jinja): records are rendered with it, only the assistant’s tokens are trained, and exports carry it', 'textarea',
    { rows: '3', spellcheck: 'false', placeholder: 'empty: the teacher’s own chat template (its tokenizer_config.json); or paste a Jinja chat template' }, { when: (s) => s.format === 'template' }),
  num('steps', 'train-steps', 'steps', 200, { min: '1', max: '1000000' }),
  num('batch', 'train-batch', 'batch', 8, { min: '1', max: '512' }),
  num('seqLen', 'train-seqlen', 'sequence length', 64, { min: '8', max: '4096' }),
  num('lr', 'train-lr', 'learning rate', 3e-3, { min: '0.00001', max: '1', step: '0.0001' }),
  num('warmup', 'train-warmup', 'warmup steps', 20, { min: '0', max: '100000' }),
  sel<'recompute', 'keep' | 'recompute'>('recompute', 'train-recompute', 'activations', 'keep', [['keep', 'kept for the backward (fastest)'], ['recompute', 'recomputed layer by layer (less memory, ~⅓ more compute)']],
    { hint: 'recomputing keeps one layer’s activations instead of every layer’s: the same numbers, less GPU memory, more time a step' }),
  num('evalEvery', 'train-eval-every', 'held-out eval every', 25, { min: '0', max: '100000' }),
  num('ckptEvery', 'train-ckpt-every', 'checkpoint every', 25, { min: '0', max: '100000' }),
  num('sampleEvery', 'train-sample-every', 'samples every', 50, { min: '0', max: '100000' }),
  num('heldOutEvery', 'train-heldout', 'hold out every Nth record', 10, { min: '2', max: '1000' }),
  text('prompts', 'train-prompts', 'Sample prompts (the student continues them during training; empty: the first held-out prompts)', 'textarea',
    { rows: '2', spellcheck: 'false', placeholder: 'one per line (up to 3); empty: the dataset’s first held-out prompts' }),
  text('name', 'train-name', 'run name', 'text', { placeholder: 'named after the method and time', class: 'wide' }),
] as const;

type AnyField = (typeof FIELDS)[number];
/** The form's settings: one value per field of FIELDS, typed by it. */
export type FormSettings = { [F in AnyField as F['key']]: F extends Field<string, infer V> ? V : never };
export type SettingKey = keyof FormSettings;

export const DEFAULT_SETTINGS = Object.fromEntries(FIELDS.map((f) => [f.key, f.default])) as FormSettings;

/** First-visit settings for a software adapter (SwiftShader): a student and a schedule that finish in minutes there. */
export const SOFTWARE_SETTINGS: Partial<FormSettings> = { preset: 'nano', steps: 20, warmup: 2, batch: 4, seqLen: 32, evalEvery: 5, ckptEvery: 5, sampleEvery: 10 };

/** What is wrong with settings the engine would refuse as malformed, saying what to do; undefined when none is. */
export function settingsProblem(s: FormSettings): string | undefined {
  if (s.adapt === 'lora' && startsTrained(s) && !(s.loraDropout >= 0 && s.loraDropout < 1)) {
    return `LoRA dropout must be at least 0 and below 1, got ${Number.isNaN(s.loraDropout) ? 'no number' : s.loraDropout}: set it to 0 (no dropout) or a share such as 0.05 or 0.1`;
  }
  if (runsDenseTeacher(s as unknown as Record<string, string | number>) && s.mixTeacher.trim() !== '' && !(s.mixWeight >= 0 && s.mixWeight <= 1)) {
    return `the second teacher's weight must be between 0 and 1, got ${Number.isNaN(s.mixWeight) ? 'no number' : s.mixWeight}: 0.5 mixes the two teachers equally`;
  }
  return undefined;
}

/** Whether a field shows for these settings: the method has its setting, and its own condition holds. */
export function fieldShown(f: Field, s: FormSettings): boolean {
  if (f.setting && !methodOf({ method: s.method }).settings.includes(f.setting)) return false;
  return f.when ? f.when(s as unknown as Record<string, string | number>) : true;
}

/** A RunSpec from the form's settings, the engine teacher (undefined when the engine cannot run one) and, for a
 *  pretrained student, its folder: the common settings, then exactly the settings the chosen method has
 *  (METHODS[m].settings). */
export function specOf(s: FormSettings, teacher: RunSpec['teacher'], pretrained?: EngineModel, second?: EngineModel, judge?: RlJudge): RunSpec {
  const m = methodOf({ method: s.method });
  const has = (x: MethodSetting) => m.settings.includes(x);
  const prompts = s.prompts.split('\n').map((x) => x.trim()).filter(Boolean);
  const train: RunSpec['train'] = {
    steps: s.steps, batchSize: s.batch, seqLen: s.seqLen, lr: s.lr, warmupSteps: s.warmup, evalEvery: s.evalEvery, checkpointEvery: s.ckptEvery,
    ...(has('divergence') ? { objective: s.objective as NonNullable<RunSpec['train']['objective']>, temperature: s.temperature, beta: s.beta, lambda: s.skewLambda } : {}),
    ...(has('ce-share') ? { ceWeight: s.ceWeight, kdWeight: 1 - s.ceWeight } : {}),
    ...(s.recompute === 'recompute' ? { recompute: true } : {}),
    ...(s.adapt === 'lora' && startsTrained(s) ? { lora: { rank: s.loraRank, alpha: s.loraAlpha, targets: [...LORA_TARGET_SETS[s.loraTargets]], dropout: s.loraDropout, base: s.loraBase } } : {}),
  };
  const when = new Date().toISOString().slice(5, 16).replace('T', ' ');
  return {
    name: s.name.trim() || `${m.id}${has('kd-source') ? `-${s.kdSource === 'dense' ? 'dense' : 'topk'}` : ''}${has('divergence') ? `-${s.objective}` : ''} ${when}`,
    datasetId: s.datasetId, method: s.method, preset: s.preset,
    tokenizer: s.tokenizer === 'teacher' ? { kind: 'teacher' } : { kind: 'bpe', vocabSize: s.vocab },
    format: s.format, ...(s.format === 'template' && s.chatTemplate.trim() ? { chatTemplate: s.chatTemplate } : {}),
    // The teacher rides along whenever the engine can run it: its tokenizer, dense KD, and evaluation against it.
    ...(teacher ? { teacher } : {}),
    // A second teacher mixed into the first's distributions (the engine checks its tokenizer and weights).
    ...(second && runsDenseTeacher(s as unknown as Record<string, string | number>) ? { mixture: { teachers: [second], weights: [1 - s.mixWeight, s.mixWeight] } } : {}),
    ...(s.preset === PRETRAINED && pretrained ? { pretrained } : {}),
    train,
    ...(has('kd-source') ? { kdSource: s.kdSource } : {}),
    ...(has('pair-beta') ? { pairBeta: s.pairBeta } : {}),
    ...(has('on-policy') ? { onPolicy: { lambda: s.lambda, maxNewTokens: s.sampleTokens, temperature: 1 } } : {}),
    ...(has('reward-margin') ? { rewardMargin: s.rewardMargin } : {}),
    ...(has('rl') ? {
      ...(s.rlReward === 'judge' ? (judge ? { judge } : {}) : { rewardRun: s.rewardRun }),
      rl: { G: s.rlG, beta: s.rlBeta, advantage: s.rlAdvantage, maxNewTokens: s.rlTokens, temperature: 1 },
    } : {}),
    ...(s.initFrom && s.preset !== PRETRAINED ? { initFrom: s.initFrom } : {}),
    sampleEvery: s.sampleEvery, samplePrompts: prompts.slice(0, 3), heldOutEvery: s.heldOutEvery,
  } as RunSpec;
}
