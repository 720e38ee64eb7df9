// The training loop of reinforcement learning (issue #24; rl.ts, grpo.ts): each step takes P prompts of the training
// records (drawn by a seed of the run and the step, so a resumed run draws the same), samples G answers to each on
// the live weights, scores them with the reward function (a trained reward model, or the teacher as a judge), and
// takes one GRPO / RLOO step with a KL penalty to the frozen reference — the starting student (full training: its
// weights, held by the caller), or under LoRA the same base with zero adapters (no second copy). Evaluation: the
// held-out records' cross-entropy under the policy (does it still speak?), and on held-out prompts (one sample each,
// fixed seeds) the mean reward and the KL to the reference.
import { Generator, type GeneratorAdapters } from '../model/generate.ts';
import { GpuModel } from '../model/gpu-model.ts';
import type { ModelConfig } from '../model/config.ts';
import type { BaseSource } from '../model/base-layout.ts';
import type { SlabShards } from '../model/slab-shards.ts';
import { Rng } from '../util/rng.ts';
import { evalBatches, type Batch, type PackedRow } from './batches.ts';
import { checkpointBlob, type Checkpoint } from './checkpoint.ts';
import { scheduleOf, type TrainConfig } from './config.ts';
import { evaluateHeldOut } from './evaluate.ts';
import { rlProblems, type RlSettings } from './rl-settings.ts';
import { policyAndReference } from './policy-reference.ts';
import { meanK3, rlStep, sampleAnswer, sampledLogprobs, type RewardFn } from './rl.ts';
import { lrAt } from './schedule.ts';
import type { EvalLog, StepLog, StepTrainer } from './step-trainer.ts';

/** An RL step: a StepLog (ce and kd 0) with the batch's mean reward, its spread, the KL to the reference and the
 *  answers' mean length. */
export type RlStepLog = StepLog & Required<Pick<StepLog, 'reward' | 'rewardStd' | 'kl' | 'length'>>;

export interface RlTrainerOptions {
  device: GPUDevice;
  model: ModelConfig;
  train: TrainConfig;
  rl: RlSettings;
  /** Prompts (token ids) of the training records, and of the held-out ones. */
  prompts: readonly Uint32Array[];
  evalPrompts: readonly Uint32Array[];
  /** Held-out records (packed rows) for the policy's cross-entropy. */
  evalRows?: readonly PackedRow[];
  /** The starting weights (full: a whole slab, also the reference's; LoRA: the frozen base). */
  init: BaseSource;
  reward: RewardFn;
  /** The tokens that end an answer (end-of-text; the chat template's turn-closers): sampling stops at them. */
  stops: readonly number[];
}

/** Held-out prompts evaluated (one sample each). */
const EVAL_PROMPTS = 16;

export class RlTrainer implements StepTrainer {
  readonly policy: GpuModel;
  readonly reference: GpuModel;
  private readonly gen: Generator;
  private readonly evalSet: Batch[];
  readonly B: number;
  step = 0;
  adamStep = 0;

  constructor(readonly o: RlTrainerOptions) {
    const { device, model, train: t, rl } = o;
    const problems = rlProblems(rl, t.seqLen);
    if (problems.length) throw new Error(problems.join('; '));
    if (o.prompts.length === 0) throw new Error('rl: the training records have no prompts to sample answers to');
    const P = t.batchSize;
    this.B = P * rl.G;
    ({ policy: this.policy, reference: this.reference } = policyAndReference(device, model, t, this.B, o.init, 'RlTrainer'));
    try {
      this.gen = new Generator(device, model, this.policy.params, t.seqLen + 1, this.adapters);
    } catch (e) {
      this.policy.destroy();
      this.reference.destroy();
      throw e;
    }
    this.evalSet = o.evalRows ? evalBatches(o.evalRows, this.B, t.seqLen, t.evalBatches, true) : [];
  }

  /** A prompt cut to its last tokens so that `maxNewTokens` answer tokens and the stop token fit in T + 1. */
  private fit(p: Uint32Array): number[] {
    return Array.from(p.subarray(Math.max(0, p.length - (this.o.train.seqLen - this.o.rl.maxNewTokens))));
  }

  async trainStep(): Promise<RlStepLog> {
    const { train: t, rl } = this.o, t0 = performance.now();
    const step = this.step + 1;
    const lr = lrAt(step, scheduleOf(t));
    // The step's prompts and sampling seed depend on the run's seed and the step only: a resumed step redraws them.
    const rng = new Rng((t.seed * 2654435761 + step * 40503) >>> 0);
    const prompts = Array.from({ length: t.batchSize }, () => this.fit(this.o.prompts[rng.int(this.o.prompts.length)]!));
    const r = await rlStep(this.policy, this.reference, this.gen, prompts, this.o.reward,
      { G: rl.G, beta: rl.beta, advantage: rl.advantage, maxNewTokens: rl.maxNewTokens, temperature: rl.temperature, stops: this.o.stops }, rng.nextU32(), { lr, step: this.adamStep + 1 }, { phase: 'train', step, first: 0 });
    this.step = step;
    if (!r.skipped) this.adamStep++;
    const ms = performance.now() - t0;
    return {
      kind: 'step', step, lr, loss: r.loss, ce: 0, kd: 0, gradNorm: r.gradNorm, skipped: r.skipped,
      tokensPerSec: (this.B * t.seqLen) / (ms / 1000), ms, reward: r.meanReward, rewardStd: r.rewardStd, kl: r.kl, length: r.meanLength,
    };
  }

  get params(): SlabShards {
    return this.policy.params;
  }

  get adapters(): GeneratorAdapters | undefined {
    return this.o.train.lora ? { lora: this.o.train.lora, slab: this.policy.state.params } : undefined;
  }

  /** Held-out records' cross-entropy (and perplexity) under the policy; on up to 16 held-out prompts (training
   *  prompts when none is held out), one answer each with fixed seeds: the mean reward and KL to the reference. */
  async evaluate(): Promise<EvalLog | undefined> {
    const { train: t, rl } = this.o;
    const ce = this.evalSet.length ? await evaluateHeldOut(this.policy, this.evalSet) : undefined;
    const pool = this.o.evalPrompts.length ? this.o.evalPrompts : this.o.prompts;
    const prompts = pool.slice(0, EVAL_PROMPTS).map((p) => this.fit(p));
    let reward = 0, kl = 0, n = 0;
    for (let i0 = 0; i0 < prompts.length; i0 += this.B) {
      // One answer per prompt; a short last chunk is filled with copies of its first row (not counted).
      const chunk = prompts.slice(i0, i0 + this.B), rows = chunk.length;
      const answers: number[][] = [];
      for (const [b, p] of chunk.entries()) {
        answers.push(await sampleAnswer(this.gen, p, { maxNewTokens: rl.maxNewTokens, temperature: rl.temperature, seed: (t.seed * 7 + i0 + b) >>> 0, stops: this.o.stops }));
      }
      const all = Array.from({ length: this.B }, (_, b) => chunk[b < rows ? b : 0]!);
      while (answers.length < this.B) answers.push(answers[0]!);
      const rewards = await this.o.reward(chunk, answers.slice(0, rows), { phase: 'eval', step: this.step, first: i0 });
      reward += rewards.reduce((a, x) => a + x, 0);
      const lp = await sampledLogprobs(this.policy, this.reference, all, answers);
      const mask = lp.mask.map((m, i) => (i < rows * t.seqLen ? m : 0));
      kl += meanK3(lp.logp, lp.refLogp, mask, t.seqLen) * rows;
      n += rows;
    }
    return {
      kind: 'eval', step: this.step, loss: ce?.loss ?? NaN, ppl: ce?.ppl ?? NaN,
      ...(n ? { reward: reward / n, kl: kl / n } : {}),
    };
  }

  async snapshot(): Promise<Checkpoint> {
    const { checkpoint } = checkpointBlob({ model: this.o.model, train: this.o.train, step: this.step, adamStep: this.adamStep, cursor: { epoch: 0, row: this.step } }, this.policy.stateSizes);
    await this.policy.readStateInto(checkpoint);
    return checkpoint;
  }

  restore(c: Checkpoint): void {
    if (JSON.stringify(c.model) !== JSON.stringify(this.o.model)) throw new Error('resume: the checkpoint was made with a different model config');
    if (JSON.stringify(c.train.lora) !== JSON.stringify(this.o.train.lora)) throw new Error('resume: the checkpoint and this run disagree on LoRA');
    if (this.o.train.lora) this.policy.uploadAdapters(c.params);
    else this.policy.uploadParams(c.params);
    this.policy.writeOptimizerState({ m: c.m, v: c.v });
    this.step = c.step;
    this.adamStep = c.adamStep;
  }

  destroy(): void {
    this.gen.destroy();
    this.policy.destroy();
    this.reference.destroy();
  }
}
