// CPU reference of RMSNorm and LayerNorm: hand values, and every backward against central finite differences
// of the reference forward in f64.
import { describe, expect, it } from 'vitest';
import { layernormBackwardRef, layernormForwardRef, rmsnormBackwardRef, rmsnormForwardRef } from '../../src/kernels/norm/norm.ref.ts';
import { Rng } from '../../src/util/rng.ts';

const H = 1e-6;

/** Central differences of L(p) = Σ dy·f(p) with respect to every element of p (p perturbed in place). */
function fdGrad(p: Float64Array, dy: ArrayLike<number>, f: () => ArrayLike<number>): Float64Array {
  const loss = () => { const y = f(); let s = 0; for (let i = 0; i < y.length; i++) s += dy[i]! * y[i]!; return s; };
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    p[i] = v + H; const lp = loss();
    p[i] = v - H; const lm = loss();
    p[i] = v;
    g[i] = (lp - lm) / (2 * H);
  }
  return g;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-6): void {
  expect(got.length).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(rtol * (scale + 1e-3));
}

const f64 = (rng: Rng, n: number, lo = -1, hi = 1) => Float64Array.from(rng.uniformArray(n, lo, hi));

describe('rmsnormForwardRef', () => {
  it('normalises [3, 4] with weight 1 to [3, 4]/sqrt(12.5 + eps)', () => {
    const { y, rstd } = rmsnormForwardRef([3, 4], [1, 1], 1, 2, 1e-5);
    const r = 1 / Math.sqrt(12.5 + 1e-5);
    expect(rstd[0]).toBeCloseTo(r, 14);
    expect(y[0]).toBeCloseTo(3 * r, 14);
    expect(y[1]).toBeCloseTo(4 * r, 14);
  });
  it('scales by weight per column and normalises each row on its own', () => {
    const { y } = rmsnormForwardRef([1, -1, 2, 2], [2, 3], 2, 2, 0);
    expect([...y]).toEqual([2, -3, 2, 3]);
  });
  it('rejects mismatched sizes', () => {
    expect(() => rmsnormForwardRef([1, 2, 3], [1], 1, 2, 0)).toThrow(/x has 3 elements, expected 2/);
  });
});

describe('rmsnormBackwardRef', () => {
  it('matches finite differences of the forward for dx and dweight', () => {
    const rng = new Rng(1);
    const [N, C, eps] = [3, 7, 1e-5];
    const x = f64(rng, N * C, -2, 2);
    const w = f64(rng, C, 0.5, 1.5);
    const dy = f64(rng, N * C);
    const { dx, dweight } = rmsnormBackwardRef(dy, x, w, N, C, eps);
    expectClose(dx, fdGrad(x, dy, () => rmsnormForwardRef(x, w, N, C, eps).y));
    expectClose(dweight, fdGrad(w, dy, () => rmsnormForwardRef(x, w, N, C, eps).y));
  });
});

describe('layernormForwardRef', () => {
  it('normalises [1, 2, 3] to [−1, 0, 1]·sqrt(3/2), then weight and bias', () => {
    const { y, mean, rstd } = layernormForwardRef([1, 2, 3], [1, 1, 2], [0, 5, 1], 1, 3, 0);
    const s = Math.sqrt(1.5);
    expect(mean[0]).toBe(2);
    expect(rstd[0]).toBeCloseTo(s, 14);
    expect(y[0]).toBeCloseTo(-s, 14);
    expect(y[1]).toBeCloseTo(5, 14);
    expect(y[2]).toBeCloseTo(2 * s + 1, 14);
  });
  it('gives zero mean and unit variance per row with unit weight and zero bias', () => {
    const rng = new Rng(2);
    const [N, C] = [2, 33];
    const { y } = layernormForwardRef(f64(rng, N * C, -1, 5), new Float64Array(C).fill(1), new Float64Array(C), N, C, 0);
    for (let n = 0; n < N; n++) {
      const row = y.subarray(n * C, (n + 1) * C);
      const m = row.reduce((a, b) => a + b, 0) / C;
      expect(Math.abs(m)).toBeLessThan(1e-12);
      expect(row.reduce((a, b) => a + (b - m) ** 2, 0) / C).toBeCloseTo(1, 12);
    }
  });
});

describe('layernormBackwardRef', () => {
  it('matches finite differences of the forward for dx, dweight and dbias', () => {
    const rng = new Rng(3);
    const [N, C, eps] = [3, 7, 1e-5];
    const x = f64(rng, N * C, -1, 3);
    const w = f64(rng, C, 0.5, 1.5);
    const b = f64(rng, C);
    const dy = f64(rng, N * C);
    const g = layernormBackwardRef(dy, x, w, N, C, eps);
    const fwd = () => layernormForwardRef(x, w, b, N, C, eps).y;
    expectClose(g.dx, fdGrad(x, dy, fwd));
    expectClose(g.dweight, fdGrad(w, dy, fwd));
    expectClose(g.dbias, fdGrad(b, dy, fwd));
  });
});
