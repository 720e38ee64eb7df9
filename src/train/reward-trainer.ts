// The training loop of a reward model (issue #24; src/model/gpu-reward.ts) over preference pairs: P pairs a step in
// a seeded order per epoch (pair-order.ts), warmup + cosine LR, AdamW with clipping over the trunk (or its LoRA
// adapters) and the score head together, the Bradley–Terry loss with an optional margin. A row is prompt +
// completion, its last T tokens when longer (the score is read at the completion's last token). Checkpoints are
// ordinary Checkpoints whose tail is the score head. Evaluation: the Bradley–Terry loss, pair accuracy and mean score
// difference over every held-out pair.
import { GpuRewardModel } from '../model/gpu-reward.ts';
import type { ModelConfig } from '../model/config.ts';
import type { BaseSource } from '../model/base-layout.ts';
import type { GeneratorAdapters } from '../model/generate.ts';
import { initLora } from '../model/lora.ts';
import { initHiddenProjection } from '../model/ref-model.ts';
import { bradleyTerry } from '../model/reward.ref.ts';
import type { SlabShards } from '../model/slab-shards.ts';
import { checkpointBlob, type Checkpoint } from './checkpoint.ts';
import { optimizerOf, scheduleOf, type TrainConfig } from './config.ts';
import type { PreferencePair } from './dpo.ts';
import { PairOrder } from './pair-order.ts';
import { lrAt } from './schedule.ts';
import type { EvalLog, PairStepLog, StepTrainer } from './step-trainer.ts';

/** Rows of prompt + completion (each its last T tokens), right-padded with `pad`, and their lengths. */
export function rewardRows(seqs: readonly (readonly number[])[], T: number, pad = 0): { ids: Uint32Array; lengths: number[] } {
  const ids = new Uint32Array(seqs.length * T).fill(pad), lengths: number[] = [];
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new Error(`reward row ${i} is empty`);
    const kept = s.slice(-T);
    ids.set(kept, i * T);
    lengths.push(kept.length);
  });
  return { ids, lengths };
}

/** The chosen rows of P pairs, then their rejected rows. */
export function rewardPairRows(pairs: readonly PreferencePair[], T: number, pad = 0): { ids: Uint32Array; lengths: number[] } {
  const seq = (p: PreferencePair, c: ArrayLike<number>) => [...Array.from(p.prompt), ...Array.from(c)];
  return rewardRows([...pairs.map((p) => seq(p, p.chosen)), ...pairs.map((p) => seq(p, p.rejected))], T, pad);
}


export class RewardTrainer implements StepTrainer {
  readonly rm: GpuRewardModel;
  step = 0;
  adamStep = 0;
  private readonly order: PairOrder<PreferencePair>;

  /** `init`: the trunk's starting weights (under LoRA the frozen base); the score head starts N(0, initStd²). */
  constructor(
    device: GPUDevice,
    readonly model: ModelConfig,
    readonly train: TrainConfig,
    readonly pairs: readonly PreferencePair[],
    readonly evalPairs: readonly PreferencePair[],
    init: BaseSource,
    /** The margin every pair must be won by (Bradley–Terry with a margin); default 0. */
    readonly margin = 0,
    /** The token that pads rows (any: the score never reads past a row's length). */
    readonly pad = 0,
  ) {
    const P = train.batchSize;
    if (!Number.isFinite(margin)) throw new Error(`reward model: the margin must be a finite number, got ${margin}`);
    this.order = new PairOrder(pairs, train.seed, P);
    const opt = optimizerOf(train);
    const lora = train.lora;
    if (!lora && !(init instanceof Float32Array)) throw new Error('RewardTrainer: full training starts from a whole f32 slab');
    this.rm = new GpuRewardModel(device, model, P, train.seqLen, opt, { ...(lora ? { lora } : {}), ...(train.recompute ? { recompute: true } : {}) });
    try {
      if (lora) {
        this.rm.gpu.uploadBase(init);
        this.rm.gpu.uploadAdapters(initLora(model, lora, train.seed));
      } else this.rm.gpu.uploadParams(init as Float32Array);
      this.rm.uploadHead(initHiddenProjection(model, 1, train.seed));
    } catch (e) {
      this.rm.destroy();
      throw e;
    }
  }

  async trainStep(): Promise<PairStepLog> {
    const t = this.train, t0 = performance.now();
    const step = this.step + 1;
    const lr = lrAt(step, scheduleOf(t));
    const pairs = this.order.next(t.batchSize);
    const r = await this.rm.step({ ...rewardPairRows(pairs, t.seqLen, this.pad), margin: this.margin }, { update: { lr, step: this.adamStep + 1 } });
    this.step = step;
    if (!r.skipped) this.adamStep++;
    const ms = performance.now() - t0, P = t.batchSize;
    let margin = 0;
    for (let p = 0; p < P; p++) margin += (r.scores[p]! - r.scores[P + p]!) / P;
    return {
      kind: 'step', step, lr, loss: r.loss, ce: 0, kd: 0, gradNorm: r.gradNorm, skipped: r.skipped,
      tokensPerSec: (2 * P * t.seqLen) / (ms / 1000), ms, pairAccuracy: r.accuracy, margin,
    };
  }

  /** The trunk's weights (a Generator could read them, but a reward model is not sampled from). */
  get params(): SlabShards {
    return this.rm.gpu.params;
  }

  get adapters(): GeneratorAdapters | undefined {
    return this.train.lora ? { lora: this.train.lora, slab: this.rm.gpu.state.params } : undefined;
  }

  /** Scores of rows of token ids (each its last T tokens), in batches of the model's rows. */
  async score(seqs: readonly (readonly number[])[]): Promise<Float64Array> {
    const { ids, lengths } = rewardRows(seqs, this.train.seqLen, this.pad);
    return this.rm.scoreRows(ids, lengths);
  }

  /** Every held-out pair: the Bradley–Terry loss (and its exp as `ppl`), pair accuracy and mean score difference;
   *  undefined without held-out pairs. */
  async evaluate(): Promise<EvalLog | undefined> {
    const n = this.evalPairs.length;
    if (n === 0) return undefined;
    const { ids, lengths } = rewardPairRows(this.evalPairs, this.train.seqLen, this.pad);
    const s = await this.rm.scoreRows(ids, lengths);
    const bt = bradleyTerry(s.subarray(0, n), s.subarray(n), this.margin);
    let margin = 0;
    for (let p = 0; p < n; p++) margin += (s[p]! - s[n + p]!) / n;
    return { kind: 'eval', step: this.step, loss: bt.loss, ppl: Math.exp(bt.loss), pairAccuracy: bt.accuracy, margin };
  }

  /** Trunk (or adapters), score head (the tail) and moments as a checkpoint whose tensors are views of its blob. */
  async snapshot(): Promise<Checkpoint> {
    const { checkpoint } = checkpointBlob({ model: this.model, train: this.train, step: this.step, adamStep: this.adamStep, cursor: this.order.cursor }, this.rm.gpu.stateSizes);
    await this.rm.gpu.readStateInto(checkpoint);
    return checkpoint;
  }

  restore(c: Checkpoint): void {
    if (JSON.stringify(c.model) !== JSON.stringify(this.model)) throw new Error('resume: the checkpoint was made with a different model config');
    if (JSON.stringify(c.train.lora) !== JSON.stringify(this.train.lora)) throw new Error('resume: the checkpoint and this run disagree on LoRA');
    if (!c.tail || c.tail.length !== this.model.hidden) throw new Error(`resume: the checkpoint has no score head of ${this.model.hidden} values: it is not a reward model's`);
    if (this.train.lora) this.rm.gpu.uploadAdapters(c.params);
    else this.rm.gpu.uploadParams(c.params);
    this.rm.uploadHead(c.tail);
    this.rm.gpu.writeOptimizerState({ m: c.m, v: c.v });
    this.step = c.step;
    this.adamStep = c.adamStep;
    this.order.cursor = { ...c.cursor };
  }

  destroy(): void {
    this.rm.destroy();
  }
}
