// The GPU student with hidden-state distillation (GpuModel's `hidden` option) against the CPU reference model
// (ref-model.ts with RefBatch.hidden, itself checked by finite differences in tests/unit/hidden-ref.test.ts):
// loss, every slab gradient and the W_h gradient for mse and cosine, Ct ≠ C and Ct = C, with CE and with forward
// KL on a dense teacher; the global grad norm covering W_h; a few AdamW steps reducing the hidden loss; bad input.
import { describe, expect, it } from 'vitest';
import type { HiddenLossKind } from '../../src/kernels/hidden/hidden.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel, type HiddenSpec, type ObjectiveSpec } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initHiddenProjection, initParams, refLossAndGrad, type RefBatch } from '../../src/model/ref-model.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectGradsMatch, useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 2, T = 7, N = B * T, C = 24, V = 41;
const config = makeConfig({ vocabSize: V, hidden: C, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, tieEmbeddings: true, initStd: 0.2, ropeTheta: 100 });
const CE: ObjectiveSpec = { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } };
const FKL: ObjectiveSpec = { objective: 'fkl', temperature: 2, kdWeight: 0.7, ceWeight: 0.4, teacher: { kind: 'dense' } };

function setup(seed: number, Ct: number) {
  const rng = new Rng(seed);
  const slab = initParams(config, seed);
  for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
  const ids = Uint32Array.from({ length: N }, () => rng.int(V));
  const labels = Uint32Array.from({ length: N }, () => rng.int(V));
  labels[3] = NO_LABEL;
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  weights[5] = 0;
  const teacherHidden = Float32Array.from({ length: N * Ct }, () => rng.normal());
  teacherHidden.fill(NaN, 5 * Ct, 6 * Ct); // masked row: never read
  const teacherLogits = Float32Array.from({ length: N * V }, () => 3 * rng.normal());
  return { slab, ids, labels, weights, teacherHidden, teacherLogits, wsum: weights.reduce((a, b) => a + b, 0) };
}

function refBatchOf(s: ReturnType<typeof setup>, o: ObjectiveSpec, hidden: HiddenSpec, Wh: Float32Array): RefBatch {
  return {
    ids: s.ids, B, T, labels: s.labels, weights: s.weights, objective: o.objective, temperature: o.temperature,
    kdWeight: o.kdWeight, ceWeight: o.ceWeight, lossScale: 1 / s.wsum,
    teacher: o.teacher.kind === 'dense' ? { kind: 'dense', logits: s.teacherLogits } : undefined,
    hidden: { teacherWidth: hidden.teacherWidth, teacherHidden: s.teacherHidden, Wh, kind: hidden.kind, weight: hidden.weight },
  };
}

const cases: [string, HiddenLossKind, number, ObjectiveSpec][] = [
  ['mse, Ct = 17 ≠ C, with CE', 'mse', 17, CE],
  ['cosine, Ct = C, with CE', 'cosine', C, CE],
  ['mse, Ct = C, with forward KL + CE', 'mse', C, FKL],
  ['cosine, Ct = 33 ≠ C, with forward KL + CE', 'cosine', 33, FKL],
];

describe('GPU model with hidden-state distillation vs CPU reference', () => {
  it.each(cases)('%s: loss, every slab gradient, the W_h gradient', async (_, kind, Ct, o) => {
    const { device } = gpu();
    const s = setup(31 + Ct, Ct);
    const hidden: HiddenSpec = { teacherWidth: Ct, kind, weight: 1.7, seed: 5 };
    const model = new GpuModel(device, config, B, T, o, undefined, { hidden });
    try {
      model.uploadParams(s.slab);
      const Wh = await model.readHiddenProjection();
      expect(Array.from(Wh)).toEqual(Array.from(initHiddenProjection(config, Ct, 5)));
      model.setBatch({ ids: s.ids, labels: s.labels, weights: s.weights, teacherHidden: s.teacherHidden, ...(o.teacher.kind === 'dense' ? { teacherLogits: s.teacherLogits } : {}) });
      const r = await model.run();
      const ref = refLossAndGrad(config, s.slab, refBatchOf(s, o, hidden, Wh));
      expect(ref.lossTerms.hidden! / s.wsum).toBeGreaterThan(0.05);
      expect(r.hidden).toBeCloseTo(ref.lossTerms.hidden! / s.wsum, 4);
      expect(r.loss).toBeCloseTo(ref.loss, 4);
      expectGradsMatch(model.layout, await model.readGrads(), ref.grad);
      const gWh = await model.readHiddenProjectionGrad();
      const maxH = ref.hiddenGrad!.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
      const cmp = compareArrays(gWh, ref.hiddenGrad!, { atol: 1e-5 * maxH, rtol: 1e-3 });
      expect(cmp.ok, `dW_h: ${describeComparison(cmp)}`).toBe(true);
    } finally {
      model.destroy();
    }
  }, 60_000);

  it('AdamW steps: the grad norm covers W_h, W_h is updated, and the hidden loss goes down', async () => {
    const { device } = gpu();
    const Ct = 17;
    const s = setup(77, Ct);
    const hidden: HiddenSpec = { teacherWidth: Ct, kind: 'mse', weight: 1 };
    const model = new GpuModel(device, config, B, T, CE, { weightDecay: 0, clipNorm: 0 }, { hidden });
    try {
      model.uploadParams(s.slab);
      const Wh0 = await model.readHiddenProjection();
      model.setBatch({ ids: s.ids, labels: s.labels, weights: s.weights, teacherHidden: s.teacherHidden });
      const ref = refLossAndGrad(config, s.slab, refBatchOf(s, CE, hidden, Wh0));
      const sq = (a: Float64Array) => a.reduce((m, g) => m + g * g, 0);
      const first = await model.run({ update: { lr: 0.02, step: 1 } });
      expect(first.gradNorm).toBeCloseTo(Math.sqrt(sq(ref.grad) + sq(ref.hiddenGrad!)), 4);
      expect(first.gradNorm).toBeGreaterThan(Math.sqrt(sq(ref.grad)) * 1.01); // W_h's part is not negligible here
      const Wh1 = await model.readHiddenProjection();
      // Adam's first step moves every coordinate with a non-zero gradient by ≈ lr.
      for (let i = 0; i < Wh1.length; i++) if (Math.abs(ref.hiddenGrad![i]!) > 1e-6) expect(Math.abs(Wh1[i]! - Wh0[i]!)).toBeCloseTo(0.02, 3);
      for (let step = 2; step <= 6; step++) await model.run({ update: { lr: 0.02, step } });
      const last = await model.run({ backward: false });
      expect(last.hidden).toBeLessThan(0.8 * first.hidden);
    } finally {
      model.destroy();
    }
  }, 60_000);

  it('rejects bad hidden options and batches with clear errors', () => {
    const { device } = gpu();
    const s = setup(3, 5);
    expect(() => new GpuModel(device, config, B, T, CE, undefined, { hidden: { teacherWidth: 0, kind: 'mse', weight: 1 } })).toThrow(/hidden.teacherWidth must be a positive integer/);
    expect(() => new GpuModel(device, config, B, T, CE, undefined, { hidden: { teacherWidth: 5, kind: 'l2' as never, weight: 1 } })).toThrow(/hidden.kind must be 'mse' or 'cosine'/);
    expect(() => new GpuModel(device, config, B, T, CE, undefined, { hidden: { teacherWidth: 5, kind: 'mse', weight: 1, width: 3 } as never })).toThrow(/unknown hidden option\(s\) width/);
    const model = new GpuModel(device, config, B, T, CE, undefined, { hidden: { teacherWidth: 5, kind: 'mse', weight: 1 } });
    const plain = new GpuModel(device, config, B, T, CE);
    try {
      const batch = { ids: s.ids, labels: s.labels, weights: s.weights };
      expect(() => model.setBatch(batch)).toThrow(/batch: teacherHidden has no elements, expected 70/);
      expect(() => model.setBatch({ ...batch, teacherHidden: new Float32Array(69) })).toThrow(/teacherHidden has 69 elements, expected 70/);
      expect(() => plain.setBatch({ ...batch, teacherHidden: new Float32Array(70) })).toThrow(/without the hidden option/);
      expect(() => model.uploadHiddenProjection(new Float32Array(C * 5 - 1))).toThrow(/uploadHiddenProjection: 119 floats/);
      expect(() => plain.uploadHiddenProjection(new Float32Array(1))).toThrow(/without the hidden option/);
    } finally {
      model.destroy();
      plain.destroy();
    }
  });
});
