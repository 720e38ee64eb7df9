// Reward model and RL under LoRA (issue #24: "works on pretrained students and with LoRA"): (1) a LoRA reward model's
// scores, Bradley–Terry loss, adapter gradients and head gradient equal the CPU reference's on the merged weights
// (adapters by loraGradFromMerged), Qwen2-shaped with q/k/v biases; (2) RlTrainer under LoRA: the reference is the
// shared base with adapters off, so the first step's KL is exactly 0 (the adapters start at B = 0); the base never
// changes, the adapters do, and the KL grows from 0.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { GpuRewardModel } from '../../src/model/gpu-reward.ts';
import { initLora, loraGradFromMerged, loraLayout, makeLoraConfig, mergeLora } from '../../src/model/lora.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { refRewardLossAndGrad } from '../../src/model/reward.ref.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { RlTrainer } from '../../src/train/rl-trainer.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const OPT = { weightDecay: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, clipNorm: 1 };

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const c = compareArrays(got, want, { atol: 1e-5, rtol: 1e-3 });
  expect(c.ok, `${what}: ${describeComparison(c)}`).toBe(true);
}

describe('reward model and RL under LoRA', () => {
  it('a LoRA reward model: scores, loss, adapter and head gradients = the reference on the merged weights', async () => {
    const { device } = gpu();
    const config = makeConfig({ vocabSize: 29, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 20, maxSeqLen: 12, initStd: 0.3, attentionBias: true });
    const lora = makeLoraConfig({ rank: 2, alpha: 4, targets: ['wq', 'wv', 'w_up', 'w_down'] });
    const rng = new Rng(7), P = 2, T = 6;
    const slab = initParams(config, 7);
    for (const e of paramLayout(config).entries) if (e.init === 'zeros') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 0.3 * rng.normal();
    const adapters = initLora(config, lora, 7);
    for (const e of loraLayout(config, lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapters[e.offset + i] = 0.2 * rng.normal();
    const w = Float32Array.from({ length: config.hidden }, () => rng.normal());
    const ids = Uint32Array.from({ length: 2 * P * T }, () => rng.int(config.vocabSize));
    const lengths = [6, 2, 4, 5];
    const rm = new GpuRewardModel(device, config, P, T, OPT, { lora });
    try {
      rm.gpu.uploadBase(slab);
      rm.gpu.uploadAdapters(adapters);
      rm.uploadHead(w);
      const r = await rm.step({ ids, lengths, margin: 0.3 }, { backward: true });
      const merged = mergeLora(config, slab, lora, adapters);
      const ref = refRewardLossAndGrad(config, Float64Array.from(merged), Float64Array.from(w), { ids, T, P, lengths, margin: 0.3 });
      expectClose(r.scores, ref.scores, 'scores');
      expect(r.loss).toBeCloseTo(ref.loss, 5);
      expectClose(await rm.gpu.readAdapterGrads(), loraGradFromMerged(config, lora, adapters, ref.grad), 'adapter gradients');
      expectClose(await rm.readHeadGrad(), ref.dw, 'head gradient');
    } finally {
      rm.destroy();
    }
  }, 120_000);

  it('RL under LoRA: first-step KL 0 (the reference is the base, adapters off); the base stays, the adapters move', async () => {
    const { device } = gpu();
    const config = makeConfig({ vocabSize: 12, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 10, initStd: 0.3 });
    const lora = makeLoraConfig({ rank: 4, alpha: 8 });
    const train = makeTrainConfig({ batchSize: 2, seqLen: 9, steps: 4, lr: 0.02, warmupSteps: 0, seed: 5, lora });
    const base = initParams(config, 3);
    const prompts = [[1, 2], [3], [6, 7], [9]].map((p) => Uint32Array.from(p));
    const share = (c: readonly number[]) => (c.length ? c.filter((x) => x === 5).length / c.length : 0);
    const t = new RlTrainer({
      device, model: config, train, rl: { G: 4, beta: 0.1, advantage: 'grpo', maxNewTokens: 5, temperature: 1 }, prompts, evalPrompts: prompts,
      init: base, reward: (_p, cs) => cs.map(share), stops: [0],
    });
    try {
      const logs = [];
      for (let i = 0; i < 4; i++) logs.push(await t.trainStep());
      expect(logs[0]!.kl).toBe(0);
      expect(logs.at(-1)!.kl).toBeGreaterThan(0);
      expect([...await t.policy.readParams()]).toEqual([...base]);
      const adapters = await t.policy.readAdapters();
      const bParts = loraLayout(config, lora).entries.filter((e) => e.part === 'b');
      expect(bParts.some((e) => adapters.subarray(e.offset, e.offset + e.size).some((x) => x !== 0))).toBe(true);
      const e = await t.evaluate();
      expect(Number.isFinite(e!.reward) && e!.kl! >= 0).toBe(true);
      expect(e!.loss).toBeNaN(); // no held-out records given: no perplexity, and it says so by absence of a number
    } finally {
      t.destroy();
    }
  }, 120_000);
});
