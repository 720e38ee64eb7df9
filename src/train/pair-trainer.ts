// The training loop of rank optimization (DPO / IPO, src/train/dpo.ts) over a list of preference pairs: P pairs a
// step in a seeded order per epoch (the same cursor as BatchLoader: epoch, position), warmup + cosine LR, AdamW
// with clipping on the policy, the frozen reference holding the starting weights. Checkpoints are ordinary
// Checkpoints (the reference's weights are stored beside them by the caller), so resume continues on the same
// loss curve. Evaluation: the pair loss, preference accuracy and mean margin on held-out pairs (no update).
import { GpuModel } from '../model/gpu-model.ts';
import type { ModelConfig } from '../model/config.ts';
import { PairOrder } from './pair-order.ts';
import { policyAndReference } from './policy-reference.ts';
import { checkpointBlob, type Checkpoint } from './checkpoint.ts';
import { scheduleOf, type TrainConfig } from './config.ts';
import { pairStep, type PairObjective, type PreferencePair } from './dpo.ts';
import { lrAt } from './schedule.ts';
import { stepDropoutSeed, type EvalLog, type PairStepLog, type StepTrainer } from './step-trainer.ts';
import type { SlabShards } from '../model/slab-shards.ts';
import type { GeneratorAdapters } from '../model/generate.ts';
import type { BaseSource } from '../model/base-layout.ts';


export class PairTrainer implements StepTrainer {
  readonly policy: GpuModel;
  readonly reference: GpuModel;
  step = 0;
  adamStep = 0;
  private readonly order: PairOrder<PreferencePair>;

  /**
   * `init` = the starting weights (the policy's first weights and the frozen reference's). Under LoRA (train.lora)
   * `init` is the frozen base, held once: the policy trains adapters on it and the reference is the same base with
   * zero adapters (B = 0: exactly the base), so the reference costs no second copy of the weights.
   */
  constructor(
    device: GPUDevice,
    readonly model: ModelConfig,
    readonly train: TrainConfig,
    readonly pairs: readonly PreferencePair[],
    readonly evalPairs: readonly PreferencePair[],
    readonly objective: PairObjective,
    init: BaseSource,
  ) {
    const P = train.batchSize;
    this.order = new PairOrder(pairs, train.seed, P);
    ({ policy: this.policy, reference: this.reference } = policyAndReference(device, model, train, 2 * P, init, 'PairTrainer'));
  }

  async trainStep(): Promise<PairStepLog> {
    const t = this.train, t0 = performance.now();
    const step = this.step + 1;
    const lr = lrAt(step, scheduleOf(t));
    const r = await pairStep(this.policy, this.reference, this.order.next(this.train.batchSize), this.objective, { lr, step: this.adamStep + 1 }, stepDropoutSeed(t.seed, step, 0));
    this.step = step;
    if (!r.skipped) this.adamStep++;
    const ms = performance.now() - t0;
    return {
      kind: 'step', step, lr, loss: r.loss, ce: 0, kd: 0, gradNorm: r.gradNorm, skipped: r.skipped,
      tokensPerSec: (2 * t.batchSize * t.seqLen) / (ms / 1000), ms, pairAccuracy: r.accuracy, margin: r.meanMargin,
    };
  }

  get params(): SlabShards {
    return this.policy.params;
  }

  /** LoRA: the policy's adapters, for a Generator on `params`. */
  get adapters(): GeneratorAdapters | undefined {
    return this.train.lora ? { lora: this.train.lora, slab: this.policy.state.params } : undefined;
  }

  /** Held-out pairs in batches of P (the last partial batch is left out): the pair loss (and its exp as `ppl`),
   *  preference accuracy and mean margin; undefined without a whole batch of held-out pairs. */
  async evaluate(): Promise<EvalLog | undefined> {
    const P = this.train.batchSize;
    const n = Math.floor(this.evalPairs.length / P);
    if (n === 0) return undefined;
    let loss = 0, acc = 0, margin = 0;
    for (let b = 0; b < n; b++) {
      const r = await pairStep(this.policy, this.reference, this.evalPairs.slice(b * P, (b + 1) * P), this.objective);
      loss += r.loss / n; acc += r.accuracy / n; margin += r.meanMargin / n;
    }
    return { kind: 'eval', step: this.step, loss, ppl: Math.exp(loss), pairAccuracy: acc, margin };
  }

  /** The policy's state as a checkpoint whose tensors are views of its encoded blob (see Trainer.snapshot). */
  async snapshot(): Promise<Checkpoint> {
    const { checkpoint } = checkpointBlob({ model: this.model, train: this.train, step: this.step, adamStep: this.adamStep, cursor: this.order.cursor }, this.policy.stateSizes);
    await this.policy.readStateInto(checkpoint);
    return checkpoint;
  }

  restore(c: Checkpoint): void {
    if (JSON.stringify(c.model) !== JSON.stringify(this.model)) throw new Error('resume: the checkpoint was made with a different model config');
    if (JSON.stringify(c.train.lora) !== JSON.stringify(this.train.lora)) throw new Error('resume: the checkpoint and this run disagree on LoRA');
    // A LoRA checkpoint's params are the adapters (the base is `init`).
    if (this.train.lora) this.policy.uploadAdapters(c.params);
    else this.policy.uploadParams(c.params);
    this.policy.writeOptimizerState({ m: c.m, v: c.v });
    this.step = c.step;
    this.adamStep = c.adamStep;
    this.order.cursor = { ...c.cursor };
  }

  destroy(): void {
    this.policy.destroy();
    this.reference.destroy();
  }
}
