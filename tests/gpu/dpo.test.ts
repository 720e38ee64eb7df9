// DPO / IPO on the GPU: the pair-loss gradient assembled from the fused CE kernel equals the CPU reference
// model's, which is checked against central finite differences of the DPO/IPO loss itself here — all in f64 (the
// reference model computes in f64 from any slab), to 1e-8·(1 + max|fd|) + 1e-6·|fd| as the reference model's own
// finite-difference tests — and training on toy pairs raises the preference margin. With LoRA dropout, a seeded
// pairStep's adapter gradient is the derivative of its own pair loss (both policy passes use the same masks).
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { initLora, loraLayout, makeLoraConfig } from '../../src/model/lora.ts';
import { initParams, refForward, refLossAndGrad } from '../../src/model/ref-model.ts';
import { pairBatch, pairCoefficients, pairStep, type PairObjective, type PreferencePair } from '../../src/train/dpo.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const config = makeConfig({ vocabSize: 19, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 8, initStd: 0.3 });
const T = 6;
const pairs: PreferencePair[] = [
  { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
  { prompt: [8], chosen: [9, 10], rejected: [11, 12, 13, 14] },
];
const objective = { objective: 'none' as const, temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' as const } };

/** Σ log p of each row's completion under the reference model, in f64 (the slab is read as given: f32 or f64). */
function refSeqLogprobs(slab: ArrayLike<number>): Float64Array {
  const { batch } = pairBatch(pairs, T);
  const B = 2 * pairs.length, V = config.vocabSize;
  const logits = refForward(config, slab, batch.ids, B, T).logits;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      if (batch.weights[n] === 0) continue;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[n * V + v]!);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[n * V + v]! - max);
      out[b] = out[b]! + logits[n * V + batch.labels[n]!]! - max - Math.log(sum);
    }
  }
  return out;
}

/** Central-difference step in f64 and the bound |grad − fd| ≤ FD_ABS·(1 + max|fd|) + FD_REL·|fd|. */
const FD_H = 1e-6, FD_ABS = 1e-8, FD_REL = 1e-6;

describe.each([{ kind: 'dpo', beta: 0.7 }, { kind: 'ipo', beta: 0.5 }] as PairObjective[])('$kind', (o) => {
  it('the GPU gradient equals the reference gradient, which equals finite differences of the pair loss', async () => {
    const { device } = gpu();
    const policySlab = initParams(config, 1);
    const refSlab = initParams(config, 2); // a different reference: margins ≠ 0
    const refLp = refSeqLogprobs(refSlab);
    const lossAt = (slab: Float64Array) => pairCoefficients(refSeqLogprobs(slab), refLp, o).loss;
    // CPU gradient in f64 from the identity: Σ rows coef_row · ∇(−CE of the row's completion) = ∇ of the pair loss.
    const { coef } = pairCoefficients(refSeqLogprobs(policySlab), refLp, o);
    const { batch, mask } = pairBatch(pairs, T);
    const B = 2 * pairs.length;
    const partGrad = (sign: 1 | -1) => {
      const w = Float64Array.from(mask, (m, i) => (Math.sign(coef[Math.floor(i / T)]!) === sign ? m * Math.abs(coef[Math.floor(i / T)]!) : 0));
      return refLossAndGrad(config, policySlab, { ids: batch.ids, B, T, labels: batch.labels, weights: w, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 }).grad;
    };
    const gPos = partGrad(1), gNeg = partGrad(-1);
    const cpuGrad = gPos.map((g, i) => g - gNeg[i]!);
    // Central finite differences of the pair loss in f64 on a spread of coordinates (the f32 slab's values, exactly).
    const rng = new Rng(3);
    const coords = Array.from({ length: 40 }, () => rng.int(policySlab.length));
    const fds = coords.map((i) => {
      const up = Float64Array.from(policySlab), dn = Float64Array.from(policySlab);
      up[i] = up[i]! + FD_H; dn[i] = dn[i]! - FD_H;
      return (lossAt(up) - lossAt(dn)) / (2 * FD_H);
    });
    const scale = Math.max(...fds.map(Math.abs));
    expect(scale, 'the chosen coordinates carry a gradient').toBeGreaterThan(1e-3);
    const bad = coords.flatMap((i, j) => {
      const tol = FD_ABS * (1 + scale) + FD_REL * Math.abs(fds[j]!);
      return Math.abs(cpuGrad[i]! - fds[j]!) <= tol ? [] : [`coordinate ${i}: reference ${cpuGrad[i]} vs finite differences ${fds[j]} (bound ${tol.toExponential(2)})`];
    });
    expect(bad, bad.slice(0, 5).join('\n')).toEqual([]);
    // GPU: the two passes of pairStep without an update, then the gradient slab.
    const policy = new GpuModel(device, config, B, T, objective);
    const reference = new GpuModel(device, config, B, T, objective);
    try {
      policy.uploadParams(policySlab);
      reference.uploadParams(refSlab);
      const r = await pairStep(policy, reference, pairs, o);
      expect(r.loss).toBeCloseTo(lossAt(Float64Array.from(policySlab)), 4);
      const cmp = compareArrays(await policy.readGrads(), cpuGrad, { atol: 1e-5, rtol: 1e-3 });
      expect(cmp.ok, describeComparison(cmp)).toBe(true);
    } finally {
      policy.destroy(); reference.destroy();
    }
  }, 60_000);
});

describe('DPO training', () => {
  it('raises the preference margin until the policy prefers every chosen completion', async () => {
    const { device } = gpu();
    const B = 2 * pairs.length;
    const policy = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 1 });
    const reference = new GpuModel(device, config, B, T, objective);
    try {
      const slab = initParams(config, 4);
      policy.uploadParams(slab);
      reference.uploadParams(slab);
      const first = await pairStep(policy, reference, pairs, { kind: 'dpo', beta: 0.5 }, { lr: 0.02, step: 1 });
      expect(first.meanMargin).toBeCloseTo(0, 6); // policy = reference at the start
      let last = first;
      for (let s = 2; s <= 15; s++) last = await pairStep(policy, reference, pairs, { kind: 'dpo', beta: 0.5 }, { lr: 0.02, step: s });
      expect(last.accuracy).toBe(1);
      expect(last.loss).toBeLessThan(first.loss - 0.1);
    } finally {
      policy.destroy(); reference.destroy();
    }
  }, 60_000);

  it('rejects pairs that do not fit', () => {
    expect(() => pairBatch([{ prompt: [1], chosen: [1, 2, 3, 4, 5, 6, 7], rejected: [1] }], T)).toThrow(/pair 0: prompt \+ completion is 8 tokens, more than T \+ 1 = 7/);
    expect(() => pairBatch([{ prompt: [], chosen: [1], rejected: [1] }], T)).toThrow(/empty prompt/);
    const { batch } = pairBatch(pairs, T);
    expect([...batch.labels.subarray(0, T)]).toEqual([NO_LABEL, 3, 4, 5, NO_LABEL, NO_LABEL]);
  });
});

describe('DPO with LoRA dropout', () => {
  it('a seeded step: dropout changes the loss, and the adapter gradient is its derivative (central difference along it)', async () => {
    const { device } = gpu();
    const B = 2 * pairs.length, o: PairObjective = { kind: 'dpo', beta: 0.5 };
    const lora = makeLoraConfig({ rank: 2, alpha: 4, dropout: 0.3 });
    const policy = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora });
    const reference = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora: { ...lora, dropout: 0 }, sharedBase: policy.params });
    try {
      policy.uploadParams(initParams(config, 4));
      const adapters = initLora(config, lora, 5), rng = new Rng(6);
      for (const e of loraLayout(config, lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapters[e.offset + i] = 0.3 * rng.normal();
      policy.uploadAdapters(adapters);
      reference.uploadAdapters(new Float32Array(adapters.length));
      const seed = 12345;
      const plain = await pairStep(policy, reference, pairs, o);
      const r = await pairStep(policy, reference, pairs, o, undefined, seed);
      expect(Math.abs(r.loss - plain.loss)).toBeGreaterThan(1e-4);
      const g = await policy.readAdapterGrads();
      const g2 = g.reduce((a, x) => a + x * x, 0), eps = 3e-3 / Math.sqrt(g2);
      const lossAt = async (t: number) => {
        policy.uploadAdapters(adapters.map((a, i) => a + t * g[i]!));
        return (await pairStep(policy, reference, pairs, o, undefined, seed)).loss;
      };
      const fd = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
      expect(Math.abs(fd - g2) / g2, `finite difference ${fd} vs |g|² ${g2}`).toBeLessThan(0.02);
    } finally {
      policy.destroy(); reference.destroy();
    }
  }, 60_000);
});
