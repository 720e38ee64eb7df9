// The CPU attention reference: hand-computed values, causality, GQA grouping, and its hand-written backward
// against central finite differences of its forward (f64).
import { describe, expect, it } from 'vitest';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from '../../src/kernels/attention/attention.ref.ts';
import { Rng } from '../../src/util/rng.ts';

const randn = (rng: Rng, n: number): Float64Array => Float64Array.from({ length: n }, () => rng.normal());

describe('attentionForwardRef', () => {
  it('computes a hand-checked two-token case', () => {
    // D = 1, scale 1: row 0 sees only key 0; row 1 has scores [0, ln 2] → P = [1/3, 2/3].
    const dims = { B: 1, T: 2, H: 1, Hkv: 1, D: 1 };
    const { o, lse } = attentionForwardRef([1, 1], [0, Math.LN2], [3, 6], dims);
    expect(o[0]).toBeCloseTo(3, 14);
    expect(o[1]).toBeCloseTo(3 / 3 + (2 * 6) / 3, 14);
    expect(lse[0]).toBeCloseTo(0, 14);
    expect(lse[1]).toBeCloseTo(Math.log(3), 14);
  });

  it('uses scale = 1/√D by default and returns o = v for T = 1', () => {
    const dims = { B: 1, T: 1, H: 1, Hkv: 1, D: 4 };
    const { o, lse } = attentionForwardRef([1, 2, 3, 4], [1, 1, 1, 1], [5, 6, 7, 8], dims);
    expect([...o]).toEqual([5, 6, 7, 8]);
    expect(lse[0]).toBeCloseTo(10 / 2, 14);
    expect(attentionForwardRef([1, 2, 3, 4], [1, 1, 1, 1], [5, 6, 7, 8], dims, 0.1).lse[0]).toBeCloseTo(1, 14);
  });

  it('is causal: row t ignores keys and values after t', () => {
    const rng = new Rng(1);
    const dims = { B: 1, T: 5, H: 1, Hkv: 1, D: 3 };
    const q = randn(rng, 15);
    const k = randn(rng, 15);
    const v = randn(rng, 15);
    const a = attentionForwardRef(q, k, v, dims);
    const k2 = k.slice();
    const v2 = v.slice();
    for (let i = 9; i < 15; i++) { k2[i] = 7; v2[i] = -7; } // positions 3, 4
    const b = attentionForwardRef(q, k2, v2, dims);
    expect([...b.o.subarray(0, 9)]).toEqual([...a.o.subarray(0, 9)]);
    expect(b.o[9]).not.toBe(a.o[9]);
  });

  it('groups query heads onto kv heads like repeat_kv: GQA equals MHA with each kv head repeated', () => {
    const rng = new Rng(2);
    const [B, T, H, Hkv, D] = [2, 4, 6, 2, 3];
    const q = randn(rng, B * T * H * D);
    const k = randn(rng, B * T * Hkv * D);
    const v = randn(rng, B * T * Hkv * D);
    const dout = randn(rng, B * T * H * D);
    const rep = (x: Float64Array) => {
      const out = new Float64Array(B * T * H * D);
      for (let bt = 0; bt < B * T; bt++) {
        for (let h = 0; h < H; h++) out.set(x.subarray((bt * Hkv + Math.floor(h / 3)) * D, (bt * Hkv + Math.floor(h / 3) + 1) * D), (bt * H + h) * D);
      }
      return out;
    };
    const gqa = attentionForwardRef(q, k, v, { B, T, H, Hkv, D });
    const mha = attentionForwardRef(q, rep(k), rep(v), { B, T, H, Hkv: H, D });
    for (let i = 0; i < gqa.o.length; i++) expect(gqa.o[i]).toBeCloseTo(mha.o[i]!, 12);
    // dk of a kv head = Σ over its group of the repeated heads' dk.
    const g = attentionBackwardRef(q, k, v, dout, { B, T, H, Hkv, D });
    const m = attentionBackwardRef(q, rep(k), rep(v), dout, { B, T, H, Hkv: H, D });
    for (let bt = 0; bt < B * T; bt++) {
      for (let hk = 0; hk < Hkv; hk++) {
        for (let d = 0; d < D; d++) {
          let sk = 0;
          let sv = 0;
          for (let j = 0; j < 3; j++) { sk += m.dk[(bt * H + hk * 3 + j) * D + d]!; sv += m.dv[(bt * H + hk * 3 + j) * D + d]!; }
          expect(g.dk[(bt * Hkv + hk) * D + d]).toBeCloseTo(sk, 12);
          expect(g.dv[(bt * Hkv + hk) * D + d]).toBeCloseTo(sv, 12);
        }
      }
    }
  });

  it('rejects bad dims and mismatched sizes', () => {
    expect(() => attentionForwardRef([0], [0], [0], { B: 1, T: 1, H: 3, Hkv: 2, D: 1 })).toThrow(/H = 3 is not a multiple of Hkv = 2/);
    expect(() => attentionForwardRef([0, 0], [0], [0], { B: 1, T: 1, H: 1, Hkv: 1, D: 1 })).toThrow(/q has 2 elements, expected 1/);
  });
});

describe('attentionBackwardRef', () => {
  /** Central differences of L = Σ dout·o with respect to each element of q, k and v. */
  function finiteDifferenceCheck(dims: AttentionDims, seed: number): void {
    const { B, T, H, Hkv, D } = dims;
    const rng = new Rng(seed);
    const x = { q: randn(rng, B * T * H * D), k: randn(rng, B * T * Hkv * D), v: randn(rng, B * T * Hkv * D) };
    const dout = randn(rng, B * T * H * D);
    const loss = (y: typeof x) => attentionForwardRef(y.q, y.k, y.v, dims).o.reduce((s, o, i) => s + o * dout[i]!, 0);
    const grads = attentionBackwardRef(x.q, x.k, x.v, dout, dims);
    const eps = 1e-6;
    for (const [name, g] of [['q', grads.dq], ['k', grads.dk], ['v', grads.dv]] as const) {
      const t = x[name];
      for (let i = 0; i < t.length; i++) {
        const keep = t[i]!;
        t[i] = keep + eps;
        const up = loss(x);
        t[i] = keep - eps;
        const down = loss(x);
        t[i] = keep;
        const fd = (up - down) / (2 * eps);
        expect(Math.abs(g[i]! - fd), `d${name}[${i}]: analytic ${g[i]}, finite difference ${fd}`).toBeLessThan(1e-8 + 1e-6 * Math.abs(fd));
      }
    }
  }

  it('matches finite differences on B=1 T=3 H=2 Hkv=1 D=4', () => finiteDifferenceCheck({ B: 1, T: 3, H: 2, Hkv: 1, D: 4 }, 7));
  it('matches finite differences on B=2 T=4 H=4 Hkv=2 D=3', () => finiteDifferenceCheck({ B: 2, T: 4, H: 4, Hkv: 2, D: 3 }, 8));

  it('gives zero gradients for T = 1 except dv = dout (P = 1, dS = 0)', () => {
    const g = attentionBackwardRef([1, 2], [3, 4], [5, 6], [0.5, -0.25], { B: 1, T: 1, H: 1, Hkv: 1, D: 2 });
    expect([...g.dq]).toEqual([0, 0]);
    expect([...g.dk]).toEqual([0, 0]);
    expect([...g.dv]).toEqual([0.5, -0.25]);
  });
});
