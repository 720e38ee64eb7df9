// The ULD term in the model (cross-tokenizer KD, issue #23; src/model/gpu-uld.ts, gpu-classifier.ts): a small model
// with a top-k KD + CE objective and a ULD term on some rows gives the loss, the ULD mean and every gradient of the
// CPU reference — the reference model's fused loss and backward (refLossAndGrad) plus the ULD oracle on its logits
// (uldLossRef) pushed back through the same model (refBackward) — in one chunk and in chunks of 64 + 64 + 22 rows;
// rows of ULD weight 0 add nothing (the model equals one without the term there); a batch without the ULD inputs is
// refused, and a model without the term ignores them (as it ignores any teacher input it was not built for).
import { describe, expect, it } from 'vitest';
import { uldLossRef, uldTeacherRow } from '../../src/kernels/loss/uld.ref.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel, type ObjectiveSpec, type TrainBatch } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refBackward, refForward, refLossAndGrad } from '../../src/model/ref-model.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectGradsMatch, useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 3, T = 50, N = B * T, K = 4, KU = 6, VR = 37;
const config = makeConfig({ vocabSize: 41, vocabPadding: 4, hidden: 20, layers: 1, heads: 3, kvHeads: 1, headDim: 8, intermediate: 28, maxSeqLen: 64, initStd: 0.4, ropeTheta: 100 });
const TAU = 1.3, ULD_WEIGHT = 0.7;
const objective: ObjectiveSpec = { objective: 'fkl', temperature: TAU, kdWeight: 0.6, ceWeight: 0.5, teacher: { kind: 'topk', k: K, policy: 'renormalize' }, uld: { k: KU, weight: ULD_WEIGHT } };

function setup() {
  const rng = new Rng(11);
  const slab = initParams(config, 11);
  const ids = Uint32Array.from({ length: N }, () => rng.int(VR));
  const labels = Uint32Array.from({ length: N }, () => rng.int(VR));
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  weights[5] = 0; weights[64] = 0; weights[140] = 0;
  const teacherIds = new Uint32Array(N * K), teacherLogprobs = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const pick = new Set<number>([labels[n]!]);
    while (pick.size < K) pick.add(rng.int(VR));
    [...pick].forEach((id, j) => { teacherIds[n * K + j] = id; teacherLogprobs[n * K + j] = -0.5 - j - rng.next(); });
  }
  // A ULD row every third position (a teacher row of 3..6 entries), none elsewhere.
  const teacherUld = new Float32Array(N * KU), uldWeights = new Float32Array(N);
  for (let n = 0; n < N; n += 3) {
    uldWeights[n] = weights[n]!;
    const lps = Array.from({ length: 3 + rng.int(4) }, () => -4 * rng.next());
    teacherUld.set(uldTeacherRow(lps, TAU, KU), n * KU);
  }
  const batch: TrainBatch = { ids, labels, weights, teacherIds, teacherLogprobs, teacherUld, uldWeights };
  return { slab, batch };
}

describe('the ULD term in the model', () => {
  it('loss, ULD mean and every gradient = reference fused loss + ULD oracle backpropagated; one chunk = chunks of 64', async () => {
    const { device } = gpu();
    const { slab, batch } = setup();
    const wsum = batch.weights.reduce((a, b) => a + b, 0);
    const ref = refLossAndGrad(config, slab, {
      ids: batch.ids, B, T, labels: batch.labels, weights: batch.weights, objective: 'fkl', temperature: TAU, kdWeight: 0.6, ceWeight: 0.5,
      lossScale: 1 / wsum, teacher: { kind: 'topk', k: K, ids: batch.teacherIds!, logprobs: batch.teacherLogprobs!, policy: 'renormalize' },
    });
    const fwd = refForward(config, slab, batch.ids, B, T);
    const uld = uldLossRef({ N, V: config.vocabSize, realVocab: VR, K: KU, temperature: TAU, logits: fwd.logits, teacher: batch.teacherUld!, weights: batch.uldWeights!, scale: ULD_WEIGHT / wsum });
    const grad = Float64Array.from(ref.grad);
    refBackward(config, slab, fwd.acts, uld.grad, grad); // accumulates the ULD term's gradient onto the fused loss's
    const uldSum = uld.losses.reduce((a, b) => a + b, 0);
    expect(uldSum).toBeGreaterThan(0.1);

    for (const budget of [undefined, 64 * config.vocabSize * 4 * 2]) {
      const m = new GpuModel(device, config, B, T, objective, undefined, budget ? { logitsBudgetBytes: budget } : {});
      try {
        expect(m.logitsRows).toBe(budget ? 64 : N); // the ULD gradient takes half the budget
        m.uploadParams(slab);
        m.setBatch(batch);
        const r = await m.run();
        expect(r.uld).toBeCloseTo(uldSum / wsum, 5);
        expect(r.loss).toBeCloseTo(ref.loss + (ULD_WEIGHT * uldSum) / wsum, 4);
        expectGradsMatch(paramLayout(config), await m.readGrads(), grad);
        const fo = await m.run({ backward: false });
        expect(fo.uld).toBeCloseTo(r.uld, 6);
      } finally {
        m.destroy();
      }
    }
  }, 300_000);

  it('rows of ULD weight 0 add nothing; missing ULD inputs are refused, a model without the term ignores them', async () => {
    const { device } = gpu();
    const { slab, batch } = setup();
    const { uld: _, ...plain } = objective;
    const withUld = new GpuModel(device, config, B, T, objective), without = new GpuModel(device, config, B, T, plain);
    try {
      for (const m of [withUld, without]) m.uploadParams(slab);
      withUld.setBatch({ ...batch, uldWeights: new Float32Array(N) });
      const { teacherUld: _t, uldWeights: _w, ...rest } = batch;
      without.setBatch(rest);
      const a = await withUld.run(), b = await without.run();
      expect(a.uld).toBe(0);
      expect(a.loss).toBeCloseTo(b.loss, 6);
      const ga = await withUld.readGrads(), gb = await without.readGrads();
      expect(Array.from(ga)).toEqual(Array.from(gb));
      expect(() => withUld.setBatch(rest)).toThrow(/teacherUld has no elements, expected N·k = 150·6/);
      without.setBatch(batch);
      expect((await without.run()).loss).toBe(b.loss);
    } finally {
      withUld.destroy();
      without.destroy();
    }
  }, 300_000);
});
