// The hidden-state loss CPU reference (src/kernels/hidden/hidden.ref.ts): closed-form values, the ε-guarded zero
// vectors, masked rows, and dp against central finite differences of the reference forward in f64; then the
// reference model's hidden objective (ref-model.ts): the combined loss's gradient w.r.t. every slab coordinate and
// every W_h coordinate against finite differences, on a tiny config.
import { describe, expect, it } from 'vitest';
import { HIDDEN_COS_EPS, hiddenLossRef, type HiddenLossKind } from '../../src/kernels/hidden/hidden.ref.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.config.ts';
import { makeConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initHiddenProjection, initParams, refLoss, refLossAndGrad, type RefBatch } from '../../src/model/ref-model.ts';
import { Rng } from '../../src/util/rng.ts';

describe('hiddenLossRef', () => {
  it('mse: the mean squared difference, times the weight', () => {
    const r = hiddenLossRef({ N: 2, Cs: 3, p: [1, 2, 3, 0, 0, 0], h: [1, 0, 0, 1, 1, 1], weights: [2, 0.5], kind: 'mse', lossScale: 0.1 });
    expect(r.losses[0]).toBeCloseTo((2 * (0 + 4 + 9)) / 3, 12);
    expect(r.losses[1]).toBeCloseTo((0.5 * 3) / 3, 12);
    expect(Array.from(r.dp.subarray(0, 3))).toEqual([0, (0.1 * 2 * 2 * 2) / 3, (0.1 * 2 * 2 * 3) / 3].map((v) => expect.closeTo(v, 12)));
  });

  it('cosine: 1 − cos; parallel 0, orthogonal 1, opposite 2; zero vectors give 1 with a finite gradient', () => {
    const r = hiddenLossRef({
      N: 5, Cs: 2, kind: 'cosine', lossScale: 1, weights: [1, 1, 1, 1, 3],
      p: [2, 0, 1, 0, 1, 1, 0, 0, 3, 4], h: [5, 0, 0, 7, -1, -1, 1, 2, 0, 0],
    });
    expect(r.losses[0]).toBeCloseTo(0, 7);
    expect(r.losses[1]).toBeCloseTo(1, 12);
    expect(r.losses[2]).toBeCloseTo(2, 7);
    expect(r.losses[3]).toBe(1); // zero student row
    expect(r.losses[4]).toBe(3); // zero teacher row, weight 3
    // Zero student: dp = −h/(ε·|h|) is the only term (the |p|-term is 0), finite.
    const nh = Math.sqrt(5) + HIDDEN_COS_EPS;
    expect(r.dp[6]).toBeCloseTo(-1 / (HIDDEN_COS_EPS * nh), 0);
    expect(r.dp.every(Number.isFinite)).toBe(true);
    // Zero teacher: no gradient.
    expect(Array.from(r.dp.subarray(8, 10))).toEqual([0, 0]);
  });

  it('masked rows give exact zeros even with garbage inputs', () => {
    for (const kind of ['mse', 'cosine'] as const) {
      const r = hiddenLossRef({ N: 2, Cs: 2, p: [NaN, 1, 1, 2], h: [Infinity, 0, 1, 1], weights: [0, 1], kind, lossScale: 1 });
      expect(r.losses[0]).toBe(0);
      expect(Array.from(r.dp.subarray(0, 2))).toEqual([0, 0]);
      expect(Number.isFinite(r.losses[1]!)).toBe(true);
    }
  });

  it('rejects bad arguments with a clear error', () => {
    const base = { N: 2, Cs: 3, p: new Float64Array(6), h: new Float64Array(6), weights: [1, 1], kind: 'mse' as HiddenLossKind, lossScale: 1 };
    expect(() => hiddenLossRef({ ...base, h: new Float64Array(5) })).toThrow(/h has 5 elements, expected 6/);
    expect(() => hiddenLossRef({ ...base, kind: 'l1' as HiddenLossKind })).toThrow(/kind must be 'mse' or 'cosine'/);
    expect(() => hiddenLossRef({ ...base, Cs: 0 })).toThrow(/Cs must be a positive integer/);
  });

  it.each(['mse', 'cosine'] as const)('%s: dp matches central finite differences of lossScale·Σ losses', (kind) => {
    const N = 4, Cs = 7, rng = new Rng(5);
    const p = Float64Array.from({ length: N * Cs }, () => rng.normal());
    const h = Float64Array.from({ length: N * Cs }, () => rng.normal());
    const weights = [0.7, 0, 1.3, 2];
    const lossScale = 0.37;
    const f = (pp: Float64Array) => lossScale * hiddenLossRef({ N, Cs, p: pp, h, weights, kind, lossScale }).losses.reduce((a, b) => a + b, 0);
    const { dp } = hiddenLossRef({ N, Cs, p, h, weights, kind, lossScale });
    const eps = 1e-6;
    for (let i = 0; i < N * Cs; i++) {
      const q = Float64Array.from(p);
      q[i] = p[i]! + eps; const up = f(q);
      q[i] = p[i]! - eps; const dn = f(q);
      const fd = (up - dn) / (2 * eps);
      expect(Math.abs(dp[i]! - fd)).toBeLessThanOrEqual(1e-8 + 1e-6 * Math.abs(fd));
    }
  });
});

describe('reference model with a hidden-state objective', () => {
  const config = makeConfig({ vocabSize: 11, hidden: 6, layers: 1, heads: 2, kvHeads: 1, headDim: 4, intermediate: 10, maxSeqLen: 4, tieEmbeddings: false, initStd: 0.4 });
  const B = 2, T = 3, N = B * T;

  it.each([['mse', 5], ['cosine', 6], ['mse', 4]] as const)('%s, Ct = %i (C = 6), with forward KL + CE: d(loss)/d(slab) and d(loss)/d(W_h) match finite differences', (kind, Ct) => {
    const rng = new Rng(3 + Ct);
    const slab = Float64Array.from(initParams(config, 9));
    for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.4 * (rng.next() - 0.5);
    const Wh = Float64Array.from(initHiddenProjection(config, Ct, 4));
    const batch: RefBatch = {
      ids: Uint32Array.from({ length: N }, () => rng.int(11)), B, T,
      labels: Uint32Array.from({ length: N }, (_, n) => (n === 2 ? NO_LABEL : rng.int(11))),
      weights: [0.5, 1.2, 0, 0.9, 1, 0.7], objective: 'fkl', temperature: 1.5, kdWeight: 0.6, ceWeight: 0.4, lossScale: 1 / 4.3,
      teacher: { kind: 'dense', logits: Float64Array.from({ length: N * 11 }, () => 2 * rng.normal()) },
      hidden: { teacherWidth: Ct, teacherHidden: Float64Array.from({ length: N * Ct }, () => rng.normal()), Wh, kind, weight: 0.8 },
    };
    const r = refLossAndGrad(config, slab, batch);
    expect(r.hiddenGrad!.length).toBe(Ct * 6);
    expect(r.lossTerms.hidden!).toBeGreaterThan(0);
    // The loss really contains the hidden term.
    const noHidden = refLoss(config, slab, { ...batch, hidden: undefined }).loss;
    expect(r.loss - noHidden).toBeCloseTo(batch.lossScale * 0.8 * r.lossTerms.hidden!, 12);
    const eps = 1e-6;
    const fd = (f: (d: number) => number) => (f(eps) - f(-eps)) / (2 * eps);
    const close = (got: number, want: number, what: string) => expect(Math.abs(got - want), what).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(want));
    for (const e of paramLayout(config).entries) {
      for (let i = 0; i < e.size; i++) {
        const j = e.offset + i;
        const want = fd((d) => { const s = Float64Array.from(slab); s[j] = slab[j]! + d; return refLoss(config, s, batch).loss; });
        close(r.grad[j]!, want, `d${e.name}[${i}]`);
      }
    }
    for (let j = 0; j < Wh.length; j++) {
      const want = fd((d) => { const w = Float64Array.from(Wh); w[j] = Wh[j]! + d; return refLoss(config, slab, { ...batch, hidden: { ...batch.hidden!, Wh: w } }).loss; });
      close(r.hiddenGrad![j]!, want, `dW_h[${j}]`);
    }
  });

  it('rejects a hidden objective of the wrong size', () => {
    const slab = initParams(config, 1);
    const base: RefBatch = { ids: new Uint32Array(N), B, T, labels: new Uint32Array(N), weights: new Float32Array(N).fill(1), objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 };
    const hidden = { teacherWidth: 5, teacherHidden: new Float32Array(N * 5), Wh: new Float32Array(5 * 6), kind: 'mse' as const, weight: 1 };
    expect(() => refLoss(config, slab, { ...base, hidden: { ...hidden, teacherHidden: new Float32Array(N * 4) } })).toThrow(/hidden.teacherHidden has 24 elements, expected N·Ct = 6·5/);
    expect(() => refLossAndGrad(config, slab, { ...base, hidden: { ...hidden, Wh: new Float32Array(30 - 1) } })).toThrow(/hidden.Wh has 29 elements, expected Ct·C = 5·6/);
  });
});
