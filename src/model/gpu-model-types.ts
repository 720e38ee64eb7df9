// The GpuModel's types: what a step trains toward (ObjectiveSpec, HiddenSpec), how it updates (OptimizerSpec), the batch
// it reads (TrainBatch) and what comes back (StepReadback); its options (GpuModelOptions, checked before anything is
// allocated); and the vocabulary-padding convention of read-back logits.
import { HIDDEN_LOSS_KINDS, type HiddenLossKind } from '../kernels/hidden/hidden.ts';
import { checkTokenIds } from '../kernels/embedding/embedding.ts';
import { NO_LABEL, type KdObjective, type TopKPolicy } from '../kernels/loss/loss.ts';
import type { UldSpec } from './gpu-uld.ts';
import type { TeacherInput } from './activations.ts';
import { realVocab, type ModelConfig } from './config.ts';
import type { LoraConfig } from './lora.ts';
import type { SlabShards } from './slab-shards.ts';

/** The logit read back for a column of vocabulary padding: finite (so 0·log terms stay 0), exp() of it is 0. */
export const PADDING_LOGIT = Math.fround(-1e30);

/** Sets the vocabulary-padding columns of (rows, V) logits to PADDING_LOGIT, in place. */
export function maskPaddingLogits(logits: Float32Array, c: ModelConfig): Float32Array {
  const V = c.vocabSize, Vr = realVocab(c);
  if (Vr < V) for (let off = 0; off < logits.length; off += V) logits.fill(PADDING_LOGIT, off + Vr, off + V);
  return logits;
}

export interface ObjectiveSpec {
  objective: KdObjective; // 'none' = cross-entropy only
  temperature: number;
  kdWeight: number;
  ceWeight: number;
  beta?: number;
  lambda?: number;
  /** Teacher input the batches carry: none, dense logits (N, V), or top-k (N, k) with a missing-mass policy. */
  teacher: TeacherInput & { policy?: TopKPolicy };
  /** Cross-tokenizer KD: a ULD term over k teacher probabilities per row (batches carry teacherUld, uldWeights). */
  uld?: UldSpec;
}

export interface OptimizerSpec {
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global gradient-norm clip; ≤ 0 disables. */
  clipNorm: number;
}

/** Hidden-state distillation: the student's last hidden state, projected to the teacher's width, vs the teacher's. */
export interface HiddenSpec {
  /** The teacher's hidden width Ct (batches carry teacherHidden (B, T, Ct)). */
  teacherWidth: number;
  kind: HiddenLossKind;
  /** Multiplies the hidden loss next to the logit objectives (same 1/(Σw·accum) scale). */
  weight: number;
  /** Seed of W_h's initialisation normal(0, initStd) (initHiddenProjection); default 0. */
  seed?: number;
}

const HIDDEN_KEYS = ['teacherWidth', 'kind', 'weight', 'seed'];

export function checkHiddenSpec(h: HiddenSpec): void {
  const unknown = Object.keys(h).filter((k) => !HIDDEN_KEYS.includes(k));
  if (unknown.length) throw new Error(`GpuModel: unknown hidden option(s) ${unknown.join(', ')} (known: ${HIDDEN_KEYS.join(', ')})`);
  if (!Number.isInteger(h.teacherWidth) || h.teacherWidth < 1) throw new Error(`GpuModel: hidden.teacherWidth must be a positive integer, got ${h.teacherWidth}`);
  if (!HIDDEN_LOSS_KINDS.includes(h.kind)) throw new Error(`GpuModel: hidden.kind must be 'mse' or 'cosine', got '${h.kind}'`);
  if (!Number.isFinite(h.weight)) throw new Error(`GpuModel: hidden.weight must be a finite number, got ${h.weight}`);
  if (h.seed !== undefined && !Number.isInteger(h.seed)) throw new Error(`GpuModel: hidden.seed must be an integer, got ${h.seed}`);
}

export interface TrainBatch {
  ids: Uint32Array; // (B, T)
  labels: Uint32Array; // (B, T), NO_LABEL (0xFFFFFFFF) where there is no target
  weights: Float32Array; // (B, T), 0 = masked
  teacherLogits?: Float32Array; // (B, T, V)
  teacherIds?: Uint32Array; // (B, T, k)
  teacherLogprobs?: Float32Array; // (B, T, k)
  /** Teacher hidden states, required iff the model has the `hidden` option. */
  teacherHidden?: Float32Array; // (B, T, Ct)
  /** ULD inputs, required iff the objective has `uld`: the teacher's probabilities descending, the rows' weights. */
  teacherUld?: Float32Array; // (B, T, k)
  uldWeights?: Float32Array; // (B, T)
}

/** Refuses a batch whose arrays do not have the model's sizes, with token ids or labels outside its vocabulary. */
export function checkBatch(b: TrainBatch, m: { N: number; B: number; T: number; config: ModelConfig; teacher: ObjectiveSpec['teacher']; hiddenWidth?: number }): void {
  const { N, config: c, teacher: t } = m;
  const need = (name: string, arr: { length: number } | undefined, n: number) => {
    if (!arr || arr.length !== n) throw new Error(`batch: ${name} has ${arr?.length ?? 'no'} elements, expected ${n} (B=${m.B}, T=${m.T})`);
  };
  need('ids', b.ids, N); need('labels', b.labels, N); need('weights', b.weights, N);
  const Vr = realVocab(c);
  checkTokenIds(b.ids, Vr);
  if (Vr < c.vocabSize) {
    const i = b.labels.findIndex((y) => y >= Vr && y !== NO_LABEL);
    if (i >= 0) throw new Error(`batch: label ${b.labels[i]} at ${i} is vocabulary padding (the model has ${Vr} real tokens of ${c.vocabSize})`);
  }
  if (t.kind === 'dense') need('teacherLogits', b.teacherLogits, N * c.vocabSize);
  if (t.kind === 'topk') { need('teacherIds', b.teacherIds, N * t.k); need('teacherLogprobs', b.teacherLogprobs, N * t.k); }
  if (m.hiddenWidth) need('teacherHidden', b.teacherHidden, N * m.hiddenWidth);
  else if (b.teacherHidden) throw new Error('batch: teacherHidden given, but the model was built without the hidden option');
}

export interface StepReadback {
  /** Σ over rows of lossScale·(kdWeight·w·KD + ceWeight·w·CE): the objective that was differentiated. */
  loss: number;
  /** Weighted means over the batch's weighted rows: Σ w·KD / Σ w and Σ w·CE / Σ w. */
  kd: number;
  ce: number;
  gradNorm: number;
  /** The step's gradient had a NaN/Inf: the GPU skipped the update. */
  skipped: boolean;
  /** Per row: [w·KD, w·CE] (N, 2), e.g. for sequence log-probabilities (DPO). */
  rowLosses: Float32Array;
  /** Hidden-state loss, weighted mean Σ w·loss_n / Σ w (0 without the `hidden` option). */
  hidden: number;
  /** ULD loss, weighted mean Σ w·ULD_n / Σ w over the batch's weights (0 without objective.uld). */
  uld: number;
}

export interface GpuModelOptions {
  hidden?: HiddenSpec;
  /** LoRA: the model's weights are a frozen base (no gradients, no moments); only the adapters (and W_h) train. */
  lora?: LoraConfig;
  /** Largest buffer of the parameter/gradient/moment slabs in bytes; default the device's maxBufferSize. Smaller
   *  values split the slabs into more buffers (tests of the shards). */
  maxBufferBytes?: number;
  /** Keep one layer's activations instead of every layer's: the backward recomputes layer l's forward (from the kept
   *  residual stream) just before layer l's backward. Less memory, about a third more compute; the same numbers. */
  recompute?: boolean;
  /** LoRA only: use this frozen base (another LoRA model's `params`: a DPO reference) instead of allocating one. */
  sharedBase?: SlabShards;
  /** Bytes the student's logits buffer may take (default DEFAULT_LOGITS_BUDGET_BYTES, 64 MiB): the classifier and
   *  its loss run over chunks of logitsChunkRows(N, V, budget) rows. */
  logitsBudgetBytes?: number;
  /** A reward model (gpu-reward.ts): the trained slab's tail is a score head w (C) on the final norm's output; the
   *  step runs the forward to the final norm and the backward from a gradient the host writes into dln. */
  scoreHead?: boolean;
}

const OPTION_KEYS = ['hidden', 'lora', 'maxBufferBytes', 'logitsBudgetBytes', 'sharedBase', 'recompute', 'scoreHead'];

/** Refuses unknown options and combinations the model cannot build, before anything is allocated. */
export function checkModelOptions(options: GpuModelOptions): void {
  const unknown = Object.keys(options).filter((k) => !OPTION_KEYS.includes(k));
  if (unknown.length) throw new Error(`GpuModel: unknown option(s) ${unknown.join(', ')} (known: ${OPTION_KEYS.join(', ')})`);
  if (options.hidden) checkHiddenSpec(options.hidden);
  if (options.sharedBase && !options.lora) throw new Error('GpuModel: sharedBase is the frozen base of a LoRA model: give lora too');
  if (options.scoreHead && options.hidden) throw new Error('GpuModel: a reward model (scoreHead) has no hidden-state distillation: give one of scoreHead and hidden');
}

/** GpuModel.run's options. */
export interface RunOptions {
  /** Default true; false: forward and loss only. */
  backward?: boolean;
  /** Default true; false accumulates onto the gradients (micro-batches). */
  zeroGrads?: boolean;
  /** Clip + AdamW after the backward. */
  update?: { lr: number; step: number };
  /** LoRA dropout for this run, its masks hashed from this u32 (the same seed gives the same masks); absent: no
   *  dropout (evaluation). Nothing without LoRA or with lora.dropout 0. */
  dropoutSeed?: number;
}

/** The dropout state of a run: active with its seed, or off. */
export function runDropout(opts: RunOptions): { active: boolean; seed: number } {
  const s = opts.dropoutSeed;
  if (s === undefined) return { active: false, seed: 0 };
  if (!Number.isInteger(s) || s < 0 || s >= 2 ** 32) throw new Error(`GpuModel.run: dropoutSeed must be an integer in [0, 2^32), got ${s}`);
  return { active: true, seed: s };
}
