// The GPU student against the CPU reference model (src/model/ref-model.ts, itself checked by finite
// differences): logits, loss and EVERY parameter gradient, for cross-entropy, forward KL on a dense teacher mixed
// with CE, and reverse KL on a top-k teacher; then ten AdamW steps against the reference optimizer.
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { adamwRef, clipScaleRef, gradNormRef, type AdamWState } from '../../src/kernels/optim/optim.ref.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel, type ObjectiveSpec, type TrainBatch } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward, refLossAndGrad, type RefBatch } from '../../src/model/ref-model.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectGradsMatch, useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 2, T = 7, N = B * T;

function setup(tied: boolean, seed: number) {
  const config = makeConfig({ vocabSize: 41, hidden: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, tieEmbeddings: tied, initStd: 0.2, ropeTheta: 100 });
  const rng = new Rng(seed);
  const slab = initParams(config, seed);
  // Norm gains away from 1 so that every path of the norms' backward matters.
  for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
  const ids = Uint32Array.from({ length: N }, () => rng.int(config.vocabSize));
  const labels = Uint32Array.from({ length: N }, () => rng.int(config.vocabSize));
  labels[3] = NO_LABEL;
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  weights[5] = 0;
  return { config, rng, slab, ids, labels, weights };
}

type Case = { name: string; objective: ObjectiveSpec; teacher: (rng: Rng, V: number) => Partial<TrainBatch> };
const K = 5;
const cases: Case[] = [
  { name: 'cross-entropy', objective: { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } }, teacher: () => ({}) },
  {
    name: 'forward KL (dense teacher, τ = 2) + CE',
    objective: { objective: 'fkl', temperature: 2, kdWeight: 0.7, ceWeight: 0.4, teacher: { kind: 'dense' } },
    teacher: (rng, V) => ({ teacherLogits: Float32Array.from({ length: N * V }, () => 3 * rng.normal()) }),
  },
  {
    name: 'reverse KL (top-5 teacher, tail bucket)',
    objective: { objective: 'rkl', temperature: 1, kdWeight: 1, ceWeight: 0.3, teacher: { kind: 'topk', k: K, policy: 'tail-bucket' } },
    teacher: (rng, V) => {
      const ids = new Uint32Array(N * K), lp = new Float32Array(N * K);
      for (let n = 0; n < N; n++) {
        const pick = new Set<number>();
        while (pick.size < K) pick.add(rng.int(V));
        [...pick].forEach((id, j) => { ids[n * K + j] = id; lp[n * K + j] = -1 - 2 * j - rng.next(); });
      }
      return { teacherIds: ids, teacherLogprobs: lp };
    },
  },
];

describe('GPU model vs CPU reference model', () => {
  it.each([true, false].flatMap((tied) => cases.map((c) => [`${c.name}, ${tied ? 'tied' : 'untied'}`, tied, c] as const)))('%s: logits, loss and every gradient', async (_, tied, c) => {
    const { device } = gpu();
    const s = setup(tied, tied ? 11 : 12);
    const teacher = c.teacher(s.rng, s.config.vocabSize);
    const model = new GpuModel(device, s.config, B, T, c.objective);
    try {
      model.uploadParams(s.slab);
      const batch: TrainBatch = { ids: s.ids, labels: s.labels, weights: s.weights, ...teacher };
      model.setBatch(batch);
      const logits = await model.logits();
      const refLogits = refForward(s.config, s.slab, s.ids, B, T).logits;
      const cl = compareArrays(logits, refLogits, { atol: 2e-5, rtol: 2e-4 });
      expect(cl.ok, `logits: ${describeComparison(cl)}`).toBe(true);

      const r = await model.run();
      const wsum = s.weights.reduce((a, b) => a + b, 0);
      const o = c.objective;
      const refBatch: RefBatch = {
        ids: s.ids, B, T, labels: s.labels, weights: s.weights, objective: o.objective, temperature: o.temperature,
        kdWeight: o.kdWeight, ceWeight: o.ceWeight, lossScale: 1 / wsum,
        teacher: o.teacher.kind === 'dense' ? { kind: 'dense', logits: teacher.teacherLogits! }
          : o.teacher.kind === 'topk' ? { kind: 'topk', k: K, ids: teacher.teacherIds!, logprobs: teacher.teacherLogprobs!, policy: o.teacher.policy! } : undefined,
      };
      const ref = refLossAndGrad(s.config, s.slab, refBatch);
      expect(r.loss).toBeCloseTo(ref.loss, 4);
      expectGradsMatch(model.layout, await model.readGrads(), ref.grad);
    } finally {
      model.destroy();
    }
  }, 60_000);

  it.each([
    ['Qwen2 (q/k/v biases)', { attentionBias: true }],
    ['Qwen3 (q/k norms, H·D = 64 ≠ C = 24)', { qkNorm: true, headDim: 16 }],
    ['Llama-3 (llama3 RoPE scaling)', { ropeTheta: 5000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 } }],
  ] as const)('family switch %s: logits, loss and every gradient (CE)', async (_, over) => {
    const { device } = gpu();
    const base = setup(false, 31);
    const config = makeConfig({ ...base.config, ...over });
    const slab = initParams(config, 31);
    for (const e of paramLayout(config).entries) {
      if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (base.rng.next() - 0.5);
      if (e.init === 'zeros') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 0.3 * base.rng.normal();
    }
    const model = new GpuModel(device, config, B, T, cases[0]!.objective);
    try {
      model.uploadParams(slab);
      model.setBatch({ ids: base.ids, labels: base.labels, weights: base.weights });
      const cl = compareArrays(await model.logits(), refForward(config, slab, base.ids, B, T).logits, { atol: 2e-5, rtol: 2e-4 });
      expect(cl.ok, `logits: ${describeComparison(cl)}`).toBe(true);
      const r = await model.run();
      const wsum = base.weights.reduce((a, b) => a + b, 0);
      const ref = refLossAndGrad(config, slab, {
        ids: base.ids, B, T, labels: base.labels, weights: base.weights, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 / wsum,
      });
      expect(r.loss).toBeCloseTo(ref.loss, 4);
      expectGradsMatch(model.layout, await model.readGrads(), ref.grad);
    } finally {
      model.destroy();
    }
  }, 60_000);

  it('ten AdamW steps follow the reference optimizer on the reference gradients', async () => {
    const { device } = gpu();
    const s = setup(true, 21);
    const opt = { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, clipNorm: 0.5 };
    const model = new GpuModel(device, s.config, B, T, cases[0]!.objective, opt);
    const layout = model.layout;
    const regions = layout.entries.map((e) => ({ offset: e.offset, count: e.size, weightDecay: e.decay ? opt.weightDecay : 0 }));
    let state: AdamWState = { p: Float64Array.from(s.slab), m: new Float64Array(s.slab.length), v: new Float64Array(s.slab.length) };
    try {
      model.uploadParams(s.slab);
      model.setBatch({ ids: s.ids, labels: s.labels, weights: s.weights });
      const wsum = s.weights.reduce((a, b) => a + b, 0);
      for (let step = 1; step <= 10; step++) {
        const lr = 0.01;
        const r = await model.run({ update: { lr, step } });
        const ref = refLossAndGrad(s.config, Float32Array.from(state.p), {
          ids: s.ids, B, T, labels: s.labels, weights: s.weights, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 / wsum,
        });
        expect(r.loss).toBeCloseTo(ref.loss, 3);
        const stats = gradNormRef(ref.grad, opt.clipNorm);
        expect(r.gradNorm).toBeCloseTo(stats.norm, 3);
        expect(stats.clipScale).toBe(clipScaleRef(stats.norm, opt.clipNorm));
        state = adamwRef(state, ref.grad, { lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, step }, regions, stats);
      }
      const p = await model.readParams();
      const cmp = compareArrays(p, state.p, { atol: 2e-4, rtol: 1e-3 });
      expect(cmp.ok, `params after 10 steps: ${describeComparison(cmp)}`).toBe(true);
    } finally {
      model.destroy();
    }
  }, 120_000);
});
