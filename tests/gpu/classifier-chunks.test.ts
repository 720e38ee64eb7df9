// The classifier and its loss chunk by chunk over rows (src/model/gpu-classifier.ts): the same small model built
// twice — one chunk of all N rows (the default budget) and chunks of 64 rows forced by a small logits budget, with a
// shorter last chunk (N = 3·50 = 150 = 64 + 64 + 22) — gives the same loss, KD, CE, per-row losses, logits and
// every gradient, for cross-entropy, a dense-teacher and a top-k-teacher objective, tied and untied lm_head, with
// and without backward; the chunked model also matches the CPU reference model; and the held-out evaluation, which
// reads the logits chunk by chunk, gives the same KL and top-1 agreement as the whole-batch metrics.
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { logitsChunkRows } from '../../src/model/gpu-classifier.ts';
import { GpuModel, maskPaddingLogits, type ObjectiveSpec, type StepReadback, type TrainBatch } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refLossAndGrad } from '../../src/model/ref-model.ts';
import { evaluateHeldOut } from '../../src/train/evaluate.ts';
import { teacherMetrics } from '../../src/train/metrics.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { expectGradsMatch, useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 3, T = 50, N = B * T, K = 5;
// V = 41 (37 real tokens + 4 of padding): not a multiple of 64; odd widths elsewhere too.
const base = { vocabSize: 41, vocabPadding: 4, hidden: 20, layers: 1, heads: 3, kvHeads: 1, headDim: 8, intermediate: 28, maxSeqLen: 64, initStd: 0.2, ropeTheta: 100 };
const VR = 37;
/** A budget of exactly 64 rows of logits: chunks of 64, 64 and 22 rows. */
const SMALL_BUDGET = 64 * base.vocabSize * 4;

function setup(tied: boolean, seed: number) {
  const config = makeConfig({ ...base, tieEmbeddings: tied });
  const rng = new Rng(seed);
  const slab = initParams(config, seed);
  for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
  const ids = Uint32Array.from({ length: N }, () => rng.int(VR));
  const labels = Uint32Array.from({ length: N }, () => rng.int(VR));
  labels[3] = NO_LABEL; labels[70] = NO_LABEL; labels[149] = NO_LABEL;
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  weights[5] = 0; weights[64] = 0; weights[140] = 0; // masked rows in every chunk
  return { config, rng, slab, ids, labels, weights };
}

type Case = { name: string; objective: ObjectiveSpec; teacher: (rng: Rng, V: number) => Partial<TrainBatch> };
const cases: Case[] = [
  { name: 'cross-entropy', objective: { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } }, teacher: () => ({}) },
  {
    name: 'forward KL (dense teacher, τ = 2) + CE',
    objective: { objective: 'fkl', temperature: 2, kdWeight: 0.7, ceWeight: 0.4, teacher: { kind: 'dense' } },
    teacher: (rng, V) => ({ teacherLogits: Float32Array.from({ length: N * V }, () => 3 * rng.normal()) }),
  },
  {
    name: 'reverse KL (top-5 teacher, tail bucket) + CE',
    objective: { objective: 'rkl', temperature: 1, kdWeight: 1, ceWeight: 0.3, teacher: { kind: 'topk', k: K, policy: 'tail-bucket' } },
    teacher: (rng) => {
      const ids = new Uint32Array(N * K), lp = new Float32Array(N * K);
      for (let n = 0; n < N; n++) {
        const pick = new Set<number>();
        while (pick.size < K) pick.add(rng.int(VR));
        [...pick].forEach((id, j) => { ids[n * K + j] = id; lp[n * K + j] = -1 - 2 * j - rng.next(); });
      }
      return { teacherIds: ids, teacherLogprobs: lp };
    },
  },
];

/** Same results up to f32 summation order (dW_lm sums its chunks' products one after another). */
const TIGHT = { atol: 1e-6, rtol: 1e-5 };

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number } = TIGHT): void {
  const cmp = compareArrays(got, want, tol);
  expect(cmp.ok, `${name}: ${describeComparison(cmp)}`).toBe(true);
}

function expectSameReadback(chunked: StepReadback, whole: StepReadback): void {
  expect(chunked.loss).toBeCloseTo(whole.loss, 6);
  expect(chunked.kd).toBeCloseTo(whole.kd, 6);
  expect(chunked.ce).toBeCloseTo(whole.ce, 6);
  expectClose('rowLosses', chunked.rowLosses, whole.rowLosses);
}

describe('classifier and loss in chunks of rows', () => {
  it('the chunk rows rule: N when the batch fits, else a multiple of 64 within the budget (at least 64)', () => {
    expect(logitsChunkRows(N, 41)).toBe(N);
    expect(logitsChunkRows(N, 41, SMALL_BUDGET)).toBe(64);
    expect(logitsChunkRows(N, 41, SMALL_BUDGET * 2 + 100)).toBe(128);
    expect(logitsChunkRows(N, 41, 10)).toBe(64);
    expect(logitsChunkRows(1024, 49152)).toBe(320);
    expect(logitsChunkRows(1024, 151936)).toBe(64);
    expect(logitsChunkRows(16, 151936)).toBe(16);
  });

  it.each([true, false].flatMap((tied) => cases.map((c) => [`${c.name}, ${tied ? 'tied' : 'untied'}`, tied, c] as const)))(
    '%s: one chunk vs chunks of 64 + 64 + 22 rows, and the chunked model vs the CPU reference', async (_, tied, c) => {
      const { device } = gpu();
      const s = setup(tied, tied ? 41 : 42);
      const batch: TrainBatch = { ids: s.ids, labels: s.labels, weights: s.weights, ...c.teacher(s.rng, s.config.vocabSize) };
      const whole = new GpuModel(device, s.config, B, T, c.objective);
      const chunked = new GpuModel(device, s.config, B, T, c.objective, undefined, { logitsBudgetBytes: SMALL_BUDGET });
      try {
        expect(whole.logitsRows).toBe(N);
        expect(chunked.logitsRows).toBe(64);
        for (const m of [whole, chunked]) { m.uploadParams(s.slab); m.setBatch(batch); }
        expectClose('logits', await chunked.logits(), await whole.logits());
        // Loss only, then loss and backward.
        expectSameReadback(await chunked.run({ backward: false }), await whole.run({ backward: false }));
        const rc = await chunked.run(), rw = await whole.run();
        expectSameReadback(rc, rw);
        const gc = await chunked.readGrads(), gw = await whole.readGrads();
        const maxG = gw.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
        for (const e of chunked.layout.entries) {
          expectClose(`d${e.name}`, gc.subarray(e.offset, e.offset + e.size), gw.subarray(e.offset, e.offset + e.size), { atol: 1e-6 * maxG, rtol: 1e-5 });
        }
        // The chunked model against the CPU reference (as model.test.ts checks the unchunked one).
        const o = c.objective, wsum = s.weights.reduce((a, b) => a + b, 0);
        const ref = refLossAndGrad(s.config, s.slab, {
          ids: s.ids, B, T, labels: s.labels, weights: s.weights, objective: o.objective, temperature: o.temperature,
          kdWeight: o.kdWeight, ceWeight: o.ceWeight, lossScale: 1 / wsum,
          teacher: o.teacher.kind === 'dense' ? { kind: 'dense', logits: batch.teacherLogits! }
            : o.teacher.kind === 'topk' ? { kind: 'topk', k: K, ids: batch.teacherIds!, logprobs: batch.teacherLogprobs!, policy: o.teacher.policy! } : undefined,
        });
        expect(rc.loss).toBeCloseTo(ref.loss, 4);
        expectGradsMatch(chunked.layout, gc, ref.grad);
      } finally {
        whole.destroy();
        chunked.destroy();
      }
    }, 120_000);

  it.each(cases.slice(1).map((c) => [c.name, c] as const))('held-out evaluation, %s: the same KL and top-1 agreement read chunk by chunk', async (_, c) => {
    const { device } = gpu();
    const s = setup(false, 43);
    const signal = c.teacher(s.rng, s.config.vocabSize);
    // A real teacher signal has no mass on vocabulary padding (vocab-align.ts): masked like the student's logits.
    if (signal.teacherLogits) maskPaddingLogits(signal.teacherLogits, s.config);
    const teacherMask = Float32Array.from({ length: N }, (_, n) => (n % 7 === 2 ? 0 : 1));
    const batches = [{ ids: s.ids, labels: s.labels, weights: s.weights }];
    const ce: ObjectiveSpec = { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } };
    const whole = new GpuModel(device, s.config, B, T, ce);
    const chunked = new GpuModel(device, s.config, B, T, ce, undefined, { logitsBudgetBytes: SMALL_BUDGET });
    try {
      for (const m of [whole, chunked]) m.uploadParams(s.slab);
      // The evaluation drops the teacher fields the CE-only model has no buffer for: it reads them on the host.
      const opts = { topK: K, teacherFor: async () => ({ ...signal, teacherMask }) };
      const ew = (await evaluateHeldOut(whole, batches, opts))!, ec = (await evaluateHeldOut(chunked, batches, opts))!;
      // Each model's evaluation against the whole-batch metrics on its whole logits (what evaluate.ts computed before
      // it read chunks): the chunks' means, weighted back by their rows, are the batch's.
      const weights = s.weights.map((w, n) => w * teacherMask[n]!);
      const teacher = signal.teacherLogits ? { logits: signal.teacherLogits } : { ids: signal.teacherIds!, logprobs: signal.teacherLogprobs!, k: K };
      for (const [model, e] of [[whole, ew], [chunked, ec]] as const) {
        model.setBatch(batches[0]!);
        const m = teacherMetrics(await model.logits(), weights, s.config.vocabSize, teacher);
        expect(m.rows).toBeGreaterThan(100);
        expect(e.top1Agreement).toBeCloseTo(m.top1, 12);
        if (signal.teacherLogits) expect(e.klToTeacher).toBeCloseTo(m.kl, 12);
        if (signal.teacherLogits) expect(m.kl).toBeGreaterThan(0.1);
        else expect(e.klToTeacher).toBeUndefined();
      }
      expect(ec.top1Agreement).toBe(ew.top1Agreement);
      if (signal.teacherLogits) expect(ec.klToTeacher).toBeCloseTo(ew.klToTeacher!, 5);
      expect(ec.loss).toBeCloseTo(ew.loss, 6);
    } finally {
      whole.destroy();
      chunked.destroy();
    }
  }, 120_000);
});
