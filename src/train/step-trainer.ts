// What every trainer is to the loop that drives it (src/engine/runs/runner.ts, the CLI, the scripts): one optimizer
// step at a time, a held-out evaluation, a checkpoint out and back in, the weights it trains (sample generation
// reads them in place). Trainer (token batches: SFT, KD, on-policy) and PairTrainer (DPO/IPO) implement it, and
// log in the same vocabulary: StepLog, EvalLog, EventLog.
import type { ObjectiveSpec } from '../model/gpu-model.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { SlabShards } from '../model/slab-shards.ts';
import type { GeneratorAdapters } from '../model/generate.ts';
import { dropoutHash } from '../kernels/dropout/dropout.ref.ts';

/**
 * The LoRA dropout seed of micro-batch `micro` of trainer step `step` (a u32): a hash of the run's seed, the step and
 * the micro-batch, so a run resumed from a checkpoint (which restores the step) draws the same masks. The trainer step,
 * not Adam's: a skipped step does not advance Adam's, and its successor should not repeat its masks.
 */
export const stepDropoutSeed = (seed: number, step: number, micro: number): number => dropoutHash(seed >>> 0, step >>> 0, micro >>> 0);

export interface StepLog {
  kind: 'step';
  step: number;
  lr: number;
  loss: number;
  ce: number;
  kd: number;
  gradNorm: number;
  skipped: boolean;
  tokensPerSec: number;
  ms: number;
  /** dpo/ipo: share of pairs whose margin is > 0, and the mean margin. */
  pairAccuracy?: number;
  margin?: number;
  /** Cross-tokenizer KD: the ULD term's weighted mean over the step's rows. */
  uld?: number;
  /** rl: the batch's mean reward and its spread (population std), the KL to the reference per token (k3, before
   *  the update) and the answers' mean length in tokens. */
  reward?: number;
  rewardStd?: number;
  kl?: number;
  length?: number;
}

/** A step on preference pairs (DPO/IPO, a reward model): a StepLog (ce and kd 0) with the pairs' accuracy and
 *  mean margin (a reward model's: mean score difference). */
export type PairStepLog = StepLog & Required<Pick<StepLog, 'pairAccuracy' | 'margin'>>;

export interface EvalLog {
  kind: 'eval';
  step: number;
  /** Held-out cross-entropy per target token and its perplexity (dpo/ipo: the held-out pair loss and its exp). */
  loss: number;
  ppl: number;
  /** With a teacher: KL(teacher ‖ student) per target token (dense teachers) and top-1 agreement. */
  klToTeacher?: number;
  top1Agreement?: number;
  /** dpo/ipo: held-out preference accuracy and mean margin (reward model: mean score difference). */
  pairAccuracy?: number;
  margin?: number;
  /** rl: on held-out prompts, the mean reward of the policy's answers and its KL to the reference (loss and ppl are
   *  the held-out records' cross-entropy: NaN without held-out records). */
  reward?: number;
  kl?: number;
}

/**
 * What an event says, for code that acts on it (the page shows warnings, tests find the resume) without reading
 * its text: started (from random weights or a run), resumed (from `checkpointStep`), paused, checkpoint (saved),
 * skipped (a non-finite step), rolled-back (to the last checkpoint after repeated skips).
 */
export type EventCode = 'started' | 'resumed' | 'paused' | 'checkpoint' | 'skipped' | 'rolled-back';

export interface EventLog {
  kind: 'event';
  step: number;
  code: EventCode;
  level: 'info' | 'warn';
  message: string;
  /** resumed, rolled-back: the step of the checkpoint training continued from. */
  checkpointStep?: number;
}

export type TrainLog = StepLog | EvalLog | EventLog;

export interface StepTrainer {
  /** Optimizer steps taken (the checkpoint's step after restore). */
  readonly step: number;
  /** The parameter slab being trained (read in place by a Generator for samples). */
  readonly params: SlabShards;
  /** LoRA: the adapters a Generator applies on `params` (the frozen base). */
  readonly adapters?: GeneratorAdapters;
  trainStep(): Promise<StepLog>;
  /** Held-out evaluation of the current weights; undefined when there is nothing held out. */
  evaluate(): Promise<EvalLog | undefined>;
  snapshot(): Promise<Checkpoint>;
  /** Restores weights, optimizer state, step and data cursor (the configs must match the checkpoint's). */
  restore(c: Checkpoint): void;
  destroy(): void;
}

/** Plain cross-entropy on the labels, no teacher: SFT, DPO/IPO's policy and reference, evaluation, teachers. */
export const CE_ONLY: ObjectiveSpec = { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } };
