// Reinforcement learning of the student on the GPU (issue #24, src/train/rl.ts + grpo.ts): one rlStep's gradient is
// the reference model's gradient of the CE loss under the GRPO weights computed from the reference model's own
// log-probabilities (so the GPU pipeline — sampling, both log-probability passes, the weights, the backward — is the
// objective the CPU tests check by finite differences). That GRPO raises a known reward, through a learnt reward
// model, over 3 seeds with the KL bounded: tests/gpu/reward.test.ts.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { initParams, refForward, refLossAndGrad } from '../../src/model/ref-model.ts';
import { groupAdvantages, policyGradientWeights } from '../../src/train/grpo.ts';
import { completionBatch, rlStep, type RewardFn } from '../../src/train/rl.ts';
import { CE_ONLY } from '../../src/train/step-trainer.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const config = makeConfig({ vocabSize: 12, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 10, initStd: 0.3 });
const T = 9, G = 4;
const OPT = { weightDecay: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, clipNorm: 1 };
const TARGET = 5;
/** The known reward: the share of the answer's tokens that are the target token. */
const shareOfTarget: RewardFn = (_p, cs) => cs.map((c) => (c.length === 0 ? 0 : c.filter((x) => x === TARGET).length / c.length));

/** Per-token log-probabilities of each row's labels under the reference model (f64). */
function refTokenLogp(slab: ArrayLike<number>, ids: Uint32Array, labels: Uint32Array, mask: Float32Array, B: number): Float64Array {
  const V = config.vocabSize, logits = refForward(config, slab, ids, B, T).logits;
  return Float64Array.from({ length: B * T }, (_, n) => {
    if (!mask[n]) return 0;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[n * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[n * V + v]! - m);
    return logits[n * V + labels[n]!]! - m - Math.log(s);
  });
}

describe('RL (GRPO) on the GPU', () => {
  it('one step\'s gradient = the reference model\'s gradient of the GRPO-weighted CE, weights from its own log-probabilities', async () => {
    const { device } = gpu();
    const prompts = [[1, 2], [3]];
    const B = prompts.length * G;
    const start = initParams(config, 4);
    const policy = new GpuModel(device, config, B, T, CE_ONLY, OPT);
    const reference = new GpuModel(device, config, B, T, CE_ONLY, OPT);
    // The policy has moved from the reference (as after some steps): the KL term is not zero.
    const moved = Float32Array.from(start, (x, i) => x + 0.05 * Math.sin(i));
    policy.uploadParams(moved);
    reference.uploadParams(start);
    const gen = new Generator(device, config, policy.params, T + 1);
    try {
      const o = { G, beta: 0.2, advantage: 'grpo' as const, maxNewTokens: 5, temperature: 1, stops: [0] };
      const r = await rlStep(policy, reference, gen, prompts, shareOfTarget, o, 7);
      const { batch, mask } = completionBatch(r.prompts, r.completions, T);
      const pg = policyGradientWeights({
        B, T, mask, logp: refTokenLogp(moved, batch.ids, batch.labels, mask, B), refLogp: refTokenLogp(start, batch.ids, batch.labels, mask, B),
        advantages: groupAdvantages(r.rewards, G, 'grpo'), beta: o.beta,
      });
      expect(r.loss).toBeCloseTo(pg.loss, 4);
      expect(r.kl).toBeGreaterThan(0);
      // The reference's loss takes weights ≥ 0: the signed weights' gradient is that of their positive part minus
      // that of their negative part (the gradient is linear in the weights).
      const part = (sign: 1 | -1) => refLossAndGrad(config, moved, {
        ids: batch.ids, B, T, labels: batch.labels, weights: pg.weights.map((w) => Math.max(0, sign * w)), objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1,
      }).grad;
      const pos = part(1), neg = part(-1);
      const cpu = pos.map((x, i) => x - neg[i]!);
      const cmp = compareArrays(await policy.readGrads(), cpu, { atol: 1e-5, rtol: 1e-3 });
      expect(cmp.ok, describeComparison(cmp)).toBe(true);
      expect(r.rewards.some((x) => x !== r.rewards[0])).toBe(true); // the advantages are not all zero
    } finally {
      gen.destroy(); policy.destroy(); reference.destroy();
    }
  }, 120_000);
});
