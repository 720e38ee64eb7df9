// A training run's typed configuration with its defaults in one place; unknown keys are rejected. Stored inside
// every checkpoint beside the model config.
import type { KdObjective, TopKPolicy } from '../kernels/loss/loss.ts';
import { makeLoraConfig, type LoraConfig } from '../model/lora.ts';
import type { OptimizerSpec } from '../model/gpu-model-types.ts';
import type { LrSchedule } from './schedule.ts';

export interface TrainConfig {
  /** Sequences per micro-batch and tokens per sequence. */
  batchSize: number;
  seqLen: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  gradAccum: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip; 0 disables. */
  clipNorm: number;
  seed: number;
  /** Evaluate on the held-out set every N steps (0 = only at the end). */
  evalEvery: number;
  evalBatches: number;
  /** Save a checkpoint every N steps (0 = only at the end). */
  checkpointEvery: number;
  /** Consecutive skipped (non-finite) steps before rolling back to the last checkpoint. */
  maxSkips: number;
  objective: KdObjective;
  temperature: number;
  kdWeight: number;
  ceWeight: number;
  beta: number;
  lambda: number;
  topkPolicy: TopKPolicy;
  /** Hidden-state distillation: weight of the MSE/cosine term (0 = off) and the teacher's hidden width. */
  hiddenWeight: number;
  hiddenKind: 'mse' | 'cosine';
  teacherHiddenWidth: number;
  /** LoRA: train low-rank adapters on a frozen base (the run's starting weights) instead of every weight. */
  lora?: LoraConfig;
  /** Keep one layer's activations and recompute the others in the backward (less memory, ~1/3 more compute). */
  recompute?: boolean;
  /** Cross-tokenizer KD: the weight of the ULD term (sorted-probability L1 where the teacher's and the student's
   *  tokens start together but differ), beside kdWeight's exact KL over shared strings. Absent = no ULD term. */
  uldWeight?: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  batchSize: 8,
  seqLen: 128,
  gradAccum: 1,
  steps: 1000,
  lr: 3e-3,
  warmupSteps: 50,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clipNorm: 1,
  seed: 1,
  evalEvery: 100,
  evalBatches: 8,
  checkpointEvery: 0,
  maxSkips: 3,
  objective: 'none',
  temperature: 1,
  kdWeight: 0,
  ceWeight: 1,
  beta: 0.5,
  lambda: 0.1,
  topkPolicy: 'uniform',
  hiddenWeight: 0,
  hiddenKind: 'mse',
  teacherHiddenWidth: 0,
};

export function makeTrainConfig(overrides: Record<string, unknown> = {}, where = 'train config'): TrainConfig {
  const known = [...Object.keys(DEFAULT_TRAIN), 'lora', 'recompute', 'uldWeight'];
  const unknown = Object.keys(overrides).filter((k) => !known.includes(k));
  if (unknown.length) throw new Error(`${where}: unknown key(s) ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${known.join(', ')})`);
  const c = { ...DEFAULT_TRAIN, ...overrides } as TrainConfig;
  if (c.recompute === undefined || c.recompute === false) delete c.recompute;
  else if (c.recompute !== true) throw new Error(`${where}: recompute must be true or false, got ${JSON.stringify(c.recompute)}`);
  if (c.uldWeight === undefined) delete c.uldWeight;
  else if (typeof c.uldWeight !== 'number' || !Number.isFinite(c.uldWeight) || c.uldWeight < 0) throw new Error(`${where}: uldWeight must be a finite number ≥ 0, got ${JSON.stringify(c.uldWeight)}`);
  if (c.lora === undefined) delete c.lora;
  else c.lora = makeLoraConfig(c.lora as Partial<LoraConfig>, `${where}: lora`);
  for (const k of ['batchSize', 'seqLen', 'gradAccum', 'steps', 'evalBatches', 'maxSkips'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  for (const k of ['warmupSteps', 'evalEvery', 'checkpointEvery', 'seed', 'teacherHiddenWidth'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new Error(`${where}: ${k} must be a non-negative integer, got ${JSON.stringify(c[k])}`);
  }
  for (const k of ['lr', 'minLrRatio', 'weightDecay', 'beta1', 'beta2', 'eps', 'clipNorm', 'temperature', 'kdWeight', 'ceWeight', 'beta', 'lambda', 'hiddenWeight'] as const) {
    if (typeof c[k] !== 'number' || !Number.isFinite(c[k]) || c[k] < 0) throw new Error(`${where}: ${k} must be a finite number ≥ 0, got ${JSON.stringify(c[k])}`);
  }
  if (!(c.lr > 0)) throw new Error(`${where}: lr must be > 0`);
  if (c.beta1 >= 1 || c.beta2 >= 1) throw new Error(`${where}: beta1 and beta2 must be < 1`);
  if (c.kdWeight === 0 && c.ceWeight === 0) throw new Error(`${where}: kdWeight and ceWeight are both 0: nothing to train`);
  if (c.hiddenKind !== 'mse' && c.hiddenKind !== 'cosine') throw new Error(`${where}: hiddenKind must be 'mse' or 'cosine', got ${JSON.stringify(c.hiddenKind)}`);
  if (c.hiddenWeight > 0 && c.teacherHiddenWidth < 1) throw new Error(`${where}: hiddenWeight > 0 needs teacherHiddenWidth (the teacher's hidden size)`);
  if (c.objective === 'none' && c.kdWeight !== 0) throw new Error(`${where}: objective 'none' (cross-entropy only) needs kdWeight 0`);
  return c;
}

/** The optimizer a run's TrainConfig asks for (AdamW's decay, betas, eps; the clip norm). */
export function optimizerOf(t: TrainConfig): OptimizerSpec {
  return { weightDecay: t.weightDecay, beta1: t.beta1, beta2: t.beta2, eps: t.eps, clipNorm: t.clipNorm };
}

/** The learning-rate schedule of a run's TrainConfig (warmup, cosine to lr·minLrRatio at its last step). */
export function scheduleOf(t: TrainConfig): LrSchedule {
  return { lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minLrRatio: t.minLrRatio };
}
