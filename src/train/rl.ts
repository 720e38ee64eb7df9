// One step of reinforcement learning of the student (issue #24: GRPO / RLOO, grpo.ts) on this GPU: for each of the
// step's prompts the student samples G completions on its live weights (the Generator shares the policy's slab);
// a reward function scores them (a reward model, the teacher as a judge, or a known function in tests); advantages
// are normalised within each group; the frozen reference (the starting student, or the base with adapters off
// under LoRA) and the policy give every sampled token's log-probability through the fused CE kernel (weights = the
// completion mask, no backward); grpo.ts turns them into per-token CE weights and the policy takes one update with
// them (loss scale 1), exactly as DPO's second pass does (dpo.ts). A sample that stopped early ends with its stop
// token (end-of-text, or a chat template's turn-closer), which is learnt too (the decision to stop is part of it).
import { NO_LABEL } from '../kernels/loss/loss.ts';
import type { Generator } from '../model/generate.ts';
import type { GpuModel, TrainBatch } from '../model/gpu-model.ts';
import { Rng } from '../util/rng.ts';
import { groupAdvantages, policyGradientWeights, type AdvantageKind } from './grpo.ts';

/** Which answers a reward call scores: a training step's or an evaluation's, and the index of its first answer
 *  (a judge stores its grades by them). */
export interface RewardAt {
  phase: 'train' | 'eval';
  step: number;
  first: number;
}

/** Scores of the completions (token ids) of the prompts, one per (prompt, completion), in order. */
export type RewardFn = (prompts: readonly number[][], completions: readonly number[][], at?: RewardAt) => Promise<number[]> | number[];

export interface RlOptions {
  /** Samples per prompt (≥ 2). */
  G: number;
  /** Weight of the KL penalty to the reference. */
  beta: number;
  advantage: AdvantageKind;
  maxNewTokens: number;
  temperature: number;
  /** The tokens that end an answer (end-of-text; a chat template's turn-closers): sampling stops at the first one,
   *  which stays in the answer (it is learnt: the decision to stop is part of the answer). */
  stops?: readonly number[];
}

export interface RlStepResult {
  loss: number;
  /** Mean and spread (population std) of the batch's rewards. */
  meanReward: number;
  rewardStd: number;
  /** Mean per-token k3 KL of the policy to the reference on the samples (before the update). */
  kl: number;
  /** Mean completion length in tokens (the stop token included). */
  meanLength: number;
  gradNorm: number;
  skipped: boolean;
  prompts: number[][];
  completions: number[][];
  rewards: number[];
}

/** Rows of prompt + completion, right-padded to T; labels and mask on the completion's tokens. */
export function completionBatch(prompts: readonly number[][], completions: readonly number[][], T: number): { batch: TrainBatch; mask: Float32Array } {
  const B = completions.length, N = B * T, G = B / prompts.length;
  const ids = new Uint32Array(N), labels = new Uint32Array(N).fill(NO_LABEL), mask = new Float32Array(N);
  for (let b = 0; b < B; b++) {
    const prompt = prompts[Math.floor(b / G)]!, seq = [...prompt, ...completions[b]!];
    if (prompt.length === 0) throw new Error(`rl: prompt ${Math.floor(b / G)} is empty`);
    if (seq.length > T + 1) throw new Error(`rl: prompt + completion ${b} is ${seq.length} tokens, more than T + 1 = ${T + 1}`);
    for (let t = 0; t + 1 < seq.length; t++) {
      ids[b * T + t] = seq[t]!;
      if (t + 1 >= prompt.length) { labels[b * T + t] = seq[t + 1]!; mask[b * T + t] = 1; }
    }
  }
  return { batch: { ids, labels, weights: mask }, mask };
}

/** Each position's log-probability of its label, from a pass whose weights were the mask (rowLosses: w·CE). */
function tokenLogprobs(rowLosses: Float32Array, N: number): Float64Array {
  return Float64Array.from({ length: N }, (_, i) => -rowLosses[2 * i + 1]!);
}

/** One answer to a prompt: sampled until one of `stops` (kept as the answer's last token) or maxNewTokens. */
export function sampleAnswer(gen: Generator, prompt: readonly number[], o: { maxNewTokens: number; temperature: number; seed: number; stops: readonly number[] }): Promise<number[]> {
  return gen.generate(prompt, { maxNewTokens: o.maxNewTokens, temperature: o.temperature, seed: o.seed, ...(o.stops.length ? { onToken: (id: number) => !o.stops.includes(id) } : {}) });
}

/** Per-token log-probabilities of prompts' completions (G = rows / prompts each) under the policy and the reference. */
export async function sampledLogprobs(policy: GpuModel, reference: GpuModel, prompts: readonly number[][], completions: readonly number[][]): Promise<{ batch: TrainBatch; mask: Float32Array; logp: Float64Array; refLogp: Float64Array }> {
  const N = policy.B * policy.T;
  const { batch, mask } = completionBatch(prompts, completions, policy.T);
  reference.setBatch(batch);
  const refLogp = tokenLogprobs((await reference.run({ backward: false })).rowLosses, N);
  policy.setBatch(batch);
  const logp = tokenLogprobs((await policy.run({ backward: false })).rowLosses, N);
  return { batch, mask, logp, refLogp };
}

/** KL(policy ‖ reference) as GRPO measures it (grpo.ts): the mean over rows with a masked token of each row's mean
 *  k3 = e^d − d − 1, d = ref − policy, over its masked tokens; 0 without one. */
export function meanK3(logp: Float64Array, refLogp: Float64Array, mask: Float32Array, T: number): number {
  let sum = 0, rows = 0;
  for (let r = 0; r * T < mask.length; r++) {
    let kl = 0, n = 0;
    for (let i = r * T; i < (r + 1) * T; i++) if (mask[i]) { const d = refLogp[i]! - logp[i]!; kl += Math.exp(d) - d - 1; n++; }
    if (n) { sum += kl / n; rows++; }
  }
  return rows ? sum / rows : 0;
}

/**
 * Samples G completions of each prompt with `gen` (on the policy's weights), scores them with `reward`, and takes
 * one policy-gradient step (none without `update`: the gradients only). policy and reference: GpuModels of the
 * same config with B = prompts·G rows of T.
 */
export async function rlStep(
  policy: GpuModel, reference: GpuModel, gen: Generator, prompts: readonly number[][], reward: RewardFn, o: RlOptions, seed: number,
  update?: { lr: number; step: number }, at?: RewardAt,
): Promise<RlStepResult> {
  const B = prompts.length * o.G, T = policy.T;
  if (policy.B !== B || reference.B !== B) throw new Error(`rl: the models are planned for B = ${policy.B} (reference ${reference.B}); ${prompts.length} prompts × G ${o.G} need ${B}`);
  const rng = new Rng(seed);
  const completions: number[][] = [];
  for (const p of prompts) {
    const maxNewTokens = Math.min(o.maxNewTokens, T + 1 - p.length);
    if (maxNewTokens < 1) throw new Error(`rl: a prompt of ${p.length} tokens leaves no room to sample in T = ${T}`);
    for (let g = 0; g < o.G; g++) completions.push(await sampleAnswer(gen, p, { maxNewTokens, temperature: o.temperature, seed: rng.nextU32(), stops: o.stops ?? [] }));
  }
  const promptList = prompts.map((p) => [...p]);
  const rewards = await reward(promptList.flatMap((p) => Array.from({ length: o.G }, () => p)), completions, at);
  if (rewards.length !== B) throw new Error(`rl: the reward function returned ${rewards.length} scores for ${B} completions`);
  const bad = rewards.findIndex((r) => !Number.isFinite(r));
  if (bad >= 0) throw new Error(`rl: the reward of completion ${bad} is ${rewards[bad]} (not a finite number)`);
  const advantages = groupAdvantages(rewards, o.G, o.advantage);
  const { batch, mask, logp, refLogp } = await sampledLogprobs(policy, reference, promptList, completions);
  const pg = policyGradientWeights({ B, T, mask, logp, refLogp, advantages, beta: o.beta });
  policy.setBatch({ ...batch, weights: pg.weights }, 1, 1);
  const r = await policy.run({ ...(update ? { update } : {}) });
  const mean = rewards.reduce((a, b) => a + b, 0) / B;
  return {
    loss: pg.loss, meanReward: mean, rewardStd: Math.sqrt(rewards.reduce((a, x) => a + (x - mean) ** 2, 0) / B), kl: pg.kl,
    meanLength: completions.reduce((a, c) => a + c.length, 0) / B, gradNorm: r.gradNorm, skipped: r.skipped,
    prompts: promptList, completions, rewards,
  };
}
