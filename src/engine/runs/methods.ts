// The training methods as one table: what the form calls each, what data it trains on, whether it runs the teacher
// model on this GPU, which trainer steps it, its TrainConfig (the method's objective and weights under the user's
// keys) and the checks of its own settings. Everything else — planning, creation, the training loop, evaluation,
// the Train and Evaluate stages — reads this table instead of comparing method names. Plain data and pure
// functions only: the page imports it (labels, defaults) without pulling in the GPU code.
// Adding a method = one entry here (and, if it steps differently from the two trainers, its trainer in runner.ts).
import { makeTrainConfig, type TrainConfig } from '../../train/config.ts';
import type { EngineTeacher, RunMethod, RunSpec, SpecOf } from './types.ts';
import { rlProblems } from '../../train/rl-settings.ts';

/** What a batch brings from the teacher: nothing, its dense logits (N, V), or stored top-k rows (N, k). */
export type TeacherInput = 'none' | 'dense' | 'topk';

/** Which trainer steps the method: token batches (Trainer: SFT, KD, on-policy), preference pairs (PairTrainer: DPO,
 *  IPO), a reward model on pairs (RewardTrainer) or RL against one (RlTrainer). */
export type TrainerKind = 'tokens' | 'pairs' | 'reward' | 'rl';

/**
 * The settings a method has beyond the common ones (the form shows exactly these, and puts them in the spec):
 * kd-source (RunSpec.kdSource), ce-share (ceWeight, kdWeight = 1 − it), divergence (objective, τ, JSD's β, skew
 * λ), pair-beta (RunSpec.pairBeta), on-policy (RunSpec.onPolicy), reward-margin (RunSpec.rewardMargin), rl (RunSpec.rewardRun
 * and RunSpec.rl).
 */
export type MethodSetting = 'kd-source' | 'ce-share' | 'divergence' | 'pair-beta' | 'on-policy' | 'reward-margin' | 'rl';

export interface MethodEntry<M extends RunMethod = RunMethod> {
  id: M;
  /** The form's option. */
  label: string;
  /** The runs table's column. */
  short: string;
  /** What the dataset must hold: chat records, or preference pairs. */
  data: 'records' | 'pairs';
  trainer: TrainerKind;
  settings: readonly MethodSetting[];
  /** False for a model that is not sampled from (a reward model): no sample generations. */
  generates: boolean;
  /** Whether the run puts the teacher model on this GPU (dense KD, on-policy scoring). */
  runsTeacher(spec: SpecOf<M>): boolean;
  /** What each batch brings from the teacher. */
  teacherInput(spec: SpecOf<M>): TeacherInput;
  /** The run's TrainConfig: the user's keys under the method's objective and weights. */
  trainConfig(spec: SpecOf<M>): TrainConfig;
  /** Problems of the method's own settings, each saying what to change. */
  check(spec: SpecOf<M>): string[];
  /** A longer description of the run's method for its name and the runs table (e.g. 'kd (top-k, fkl)'). */
  describe(spec: SpecOf<M>, train: TrainConfig): string;
}

const WHERE = 'run settings';

/** The user's TrainConfig keys with the divergence (and its default) a distillation method trains on. */
function divergence(spec: RunSpec, fallback: 'fkl' | 'jsd'): Record<string, unknown> {
  const t = spec.train as Record<string, unknown>;
  return { ...t, objective: t.objective && t.objective !== 'none' ? t.objective : fallback };
}

const ceOnly = (spec: RunSpec) => makeTrainConfig({ ...spec.train, objective: 'none', kdWeight: 0, ceWeight: 1 }, WHERE);

/**
 * Problems of a spec's teacher mixture (RunSpec.mixture), each naming the field: only the methods that run the
 * teacher models on the GPU learn from one — token-level KD from dense logits and on-policy distillation (stored
 * top-k rows come from one teacher) —, with spec.teacher as its first teacher, a label and a folder per teacher,
 * and one weight ≥ 0 per teacher summing to > 0.
 */
export function mixtureProblems(spec: RunSpec): string[] {
  const m = (spec as { mixture?: unknown }).mixture;
  if (m === undefined) return [];
  const what = spec.method === 'kd' ? 'KD from stored top-k rows' : spec.method.toUpperCase();
  if (!((spec.method === 'kd' && spec.kdSource === 'dense') || spec.method === 'on-policy')) return [`mixture: a teacher mixture is for token-level KD from the teachers' dense logits (kdSource 'dense') or on-policy distillation, not ${what}: pick one of those, or leave the mixture out`];
  if (typeof m !== 'object' || m === null) return ['mixture: expected {teachers, weights}'];
  const { teachers, weights } = m as { teachers?: unknown; weights?: unknown };
  const out: string[] = [];
  if (!spec.teacher) out.push('mixture: its first teacher is spec.teacher, and no local teacher is loaded: load one in step 1');
  if (!Array.isArray(teachers) || teachers.length === 0) return [...out, 'mixture.teachers: give at least one teacher beside spec.teacher (a list of {label, source})'];
  for (const [i, t] of teachers.entries()) {
    const ok = typeof t === 'object' && t !== null && typeof (t as EngineTeacher).label === 'string' && (t as EngineTeacher).label.trim() !== ''
      && typeof (t as EngineTeacher).source === 'object' && (t as EngineTeacher).source !== null;
    if (!ok) out.push(`mixture.teachers[${i}]: expected {label, source} with a non-empty label and a model folder source`);
  }
  if (!Array.isArray(weights) || weights.length !== teachers.length + 1) {
    out.push(`mixture.weights: give one weight per teacher, spec.teacher's first: ${teachers.length + 1} numbers, got ${Array.isArray(weights) ? weights.length : JSON.stringify(weights)}`);
    return out;
  }
  for (const [i, w] of weights.entries()) if (!(typeof w === 'number' && Number.isFinite(w) && w >= 0)) out.push(`mixture.weights[${i}] must be a finite number ≥ 0, got ${JSON.stringify(w)}`);
  if (out.length === 0 && !((weights as number[]).reduce((s, w) => s + w, 0) > 0)) out.push('mixture.weights sum to 0: give at least one teacher a weight > 0');
  return out;
}

/** Problems of RL's judge (RunSpec.judge). */
function judgeProblems(j: unknown): string[] {
  const o = j as { ref?: unknown; label?: unknown; scoreMax?: unknown };
  const out: string[] = [];
  if (typeof o !== 'object' || o === null || typeof o.ref !== 'object' || o.ref === null) out.push('judge: the teacher that grades the answers is missing: load a teacher in step 1');
  if (typeof o?.label !== 'string' || o.label.trim() === '') out.push('judge: give the judging teacher a label');
  if (o?.scoreMax !== undefined && !(Number.isInteger(o.scoreMax) && (o.scoreMax as number) >= 2 && (o.scoreMax as number) <= 100)) out.push(`judge.scoreMax must be an integer in 2..100, got ${JSON.stringify(o.scoreMax)}`);
  return out;
}

/** A checked spec's teachers of token-level KD with their normalised weights: spec.teacher alone (weight 1), or the
 *  mixture's, spec.teacher first; none when the spec has no teacher. */
export function teachersOf(spec: RunSpec): { teachers: EngineTeacher[]; weights: number[] } {
  if (!spec.teacher) return { teachers: [], weights: [] };
  if (!spec.mixture) return { teachers: [spec.teacher], weights: [1] };
  const sum = spec.mixture.weights.reduce((s, w) => s + w, 0);
  return { teachers: [spec.teacher, ...spec.mixture.teachers], weights: spec.mixture.weights.map((w) => w / sum) };
}

type PairSpec = SpecOf<'dpo' | 'ipo'>;

const pairEntry = <M extends 'dpo' | 'ipo'>(id: M, label: string): MethodEntry<M> => ({
  id, label, short: id.toUpperCase(), data: 'pairs', trainer: 'pairs', settings: ['pair-beta'], generates: true,
  runsTeacher: () => false,
  teacherInput: () => 'none',
  trainConfig: ceOnly,
  check: (s: PairSpec) => [...(typeof s.pairBeta === 'number' && s.pairBeta > 0 ? [] : [`${id.toUpperCase()} needs β > 0`]), ...mixtureProblems(s)],
  describe: (s: PairSpec) => `${id.toUpperCase()} β ${s.pairBeta}`,
}) as MethodEntry<M>;

export const METHODS: { [M in RunMethod]: MethodEntry<M> } = {
  sft: {
    id: 'sft', label: 'SFT on the teacher’s answers (sequence-level KD)', short: 'SFT', data: 'records', trainer: 'tokens', settings: [], generates: true,
    runsTeacher: () => false,
    teacherInput: () => 'none',
    trainConfig: ceOnly,
    check: (s) => mixtureProblems(s),
    describe: () => 'SFT',
  },
  kd: {
    id: 'kd', label: 'Token-level KD (match the teacher’s distributions)', short: 'token KD', data: 'records', trainer: 'tokens', settings: ['kd-source', 'ce-share', 'divergence'], generates: true,
    runsTeacher: (s) => s.kdSource === 'dense',
    teacherInput: (s) => (s.kdSource === 'dense' ? 'dense' : 'topk'),
    trainConfig: (s) => {
      const t = divergence(s, 'fkl');
      const topk = s.kdSource !== 'dense';
      // Across tokenizers the ULD term joins the exact KL (weight 1 unless the user set one).
      return makeTrainConfig({ kdWeight: 0.5, ceWeight: 0.5, ...(s.kdSource === 'cross-topk' ? { uldWeight: 1 } : {}), ...t, ...(topk && !t.topkPolicy ? { topkPolicy: 'uniform' } : {}) }, WHERE);
    },
    check: (s) => {
      if (s.kdSource !== 'store-topk' && s.kdSource !== 'cross-topk' && s.kdSource !== 'dense') return ["KD needs a teacher signal: the dataset's stored top-k ('store-topk'; 'cross-topk' when the teacher's tokenizer is not the student's) or the teacher model's dense logits ('dense')"];
      if (s.kdSource !== 'cross-topk' && (s.train as Record<string, unknown>).uldWeight !== undefined) return ['the ULD weight is for KD across tokenizers: pick the stored top-k across tokenizers, or leave it out'];
      if (s.kdSource === 'dense' && !s.teacher) return ['dense-logit KD runs the teacher model on this GPU: load a local teacher from a folder (an HF Llama folder) in step 1, or use the stored top-k'];
      return mixtureProblems(s);
    },
    describe: (s, t) => `token KD (${s.kdSource === 'dense' ? s.mixture ? `dense, mixture of ${s.mixture.weights.length} teachers` : 'dense' : s.kdSource === 'cross-topk' ? 'top-k across tokenizers' : 'top-k'}, ${t.objective})`,
  },
  'on-policy': {
    id: 'on-policy', label: 'On-policy KD (GKD: the student’s own samples, scored by the teacher)', short: 'on-policy', data: 'records', trainer: 'tokens', settings: ['on-policy', 'divergence'], generates: true,
    runsTeacher: () => true,
    teacherInput: () => 'dense',
    // GKD: the divergence alone, on dataset batches (teacher logits on the data) and on the student's samples.
    trainConfig: (s) => makeTrainConfig({ ...divergence(s, 'jsd'), kdWeight: 1, ceWeight: 0 }, WHERE),
    check: (s) => {
      const out: string[] = [];
      if (!s.teacher) out.push('on-policy distillation scores the student\'s samples with the teacher model on this GPU: load a local teacher from a folder in step 1');
      const o = s.onPolicy;
      if (!o || !(o.lambda >= 0 && o.lambda <= 1)) out.push('on-policy: λ (the share of steps on the student\'s own samples) must be in [0, 1]');
      else {
        if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) out.push('on-policy: the sample length must be a positive integer');
        if (!(o.temperature >= 0 && o.temperature <= 2)) out.push('on-policy: the sampling temperature must be in [0, 2]');
      }
      return [...out, ...mixtureProblems(s)];
    },
    describe: (s, t) => `on-policy (λ ${s.onPolicy.lambda}${s.mixture ? `, mixture of ${s.mixture.weights.length} teachers` : ''}, ${t.objective})`,
  },
  dpo: pairEntry('dpo', 'DPO on preference pairs'),
  ipo: pairEntry('ipo', 'IPO on preference pairs'),
  reward: {
    id: 'reward', label: 'Reward model (learn the teacher’s preferences from pairs)', short: 'reward model', data: 'pairs', trainer: 'reward', settings: ['reward-margin'], generates: false,
    runsTeacher: () => false,
    teacherInput: () => 'none',
    trainConfig: ceOnly,
    check: (s) => [
      ...(s.rewardMargin === undefined || (typeof s.rewardMargin === 'number' && Number.isFinite(s.rewardMargin)) ? [] : [`the reward model's margin must be a number, got ${JSON.stringify(s.rewardMargin)}`]),
      ...mixtureProblems(s),
    ],
    describe: (s) => `reward model (Bradley–Terry${s.rewardMargin ? `, margin ${s.rewardMargin}` : ''})`,
  },
  rl: {
    id: 'rl', label: 'RL (GRPO / RLOO): rewards from a reward model or the teacher as a judge', short: 'RL', data: 'records', trainer: 'rl', settings: ['rl'], generates: true,
    runsTeacher: () => false,
    teacherInput: () => 'none',
    trainConfig: ceOnly,
    check: (s) => [
      ...(s.judge && s.rewardRun ? ['RL takes its rewards from a reward model or from the teacher as a judge, not both: pick one']
        : s.judge ? judgeProblems(s.judge)
          : typeof s.rewardRun === 'string' && s.rewardRun !== '' ? []
            : ['RL needs rewards: pick a reward model run (train one with the method "Reward model" on a dataset with preference pairs), or the teacher as a judge with a teacher loaded in step 1']),
      ...rlProblems(s.rl, makeTrainConfig(s.train, WHERE).seqLen),
      ...mixtureProblems(s),
    ],
    describe: (s) => `RL (${s.rl.advantage.toUpperCase()}, G ${s.rl.G}, β ${s.rl.beta}${s.judge ? `, judged by ${s.judge.label}` : ''})`,
  },
};

/** The table's entry of a spec's method (its functions take any spec: method-style parameters are bivariant). */
export function methodOf(spec: Pick<RunSpec, 'method'>): MethodEntry {
  const m = (METHODS as Record<string, MethodEntry>)[spec.method];
  if (!m) throw new Error(`run settings: method must be one of ${Object.keys(METHODS).join(', ')}, got ${JSON.stringify(spec.method)}`);
  return m;
}
