// CPU reference of SiLU, tanh-GELU, SwiGLU and the residual add: hand values, saturation at ±100, and every
// backward against central finite differences of the reference forward in f64.
import { describe, expect, it } from 'vitest';
import {
  gelu, geluBackwardRef, geluForwardRef, residualAddRef, sigmoid, silu, siluBackwardRef, siluForwardRef,
  swigluBackwardRef, swigluForwardRef,
} from '../../src/kernels/activation/activation.ref.ts';
import { Rng } from '../../src/util/rng.ts';

const H = 1e-6;
const fd = (f: (x: number) => number, x: number) => (f(x + H) - f(x - H)) / (2 * H);
const xs = [-8, -3.3, -1.2785, -0.5, -1e-3, 0, 1e-3, 0.7, 2, 5.5, 9];

describe('silu', () => {
  it('has hand values: silu(0) = 0, silu(1) = 1/(1 + e^−1), saturates to x and 0', () => {
    expect(silu(0)).toBe(0);
    expect(silu(1)).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    expect(silu(100)).toBe(100);
    expect(Math.abs(silu(-100))).toBeLessThan(1e-40);
    expect(sigmoid(-800)).toBe(0); // no overflow to NaN
  });
  it('backward matches finite differences', () => {
    const dy = xs.map((_, i) => 0.5 - 0.1 * i);
    const dx = siluBackwardRef(xs, dy);
    xs.forEach((x, i) => expect(dx[i]).toBeCloseTo(dy[i]! * fd(silu, x), 8));
    expect([...siluForwardRef([2, -2])]).toEqual([silu(2), silu(-2)]);
  });
});

describe('gelu (tanh approximation)', () => {
  it('has hand values: gelu(0) = 0, gelu(1) = 0.5·(1 + tanh(√(2/π)·1.044715)), saturates at ±100', () => {
    expect(gelu(0)).toBe(0);
    expect(gelu(1)).toBeCloseTo(0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715)), 15);
    expect(gelu(1)).toBeCloseTo(0.841192, 6); // GPT-2's value
    expect(gelu(100)).toBe(100);
    expect(gelu(-100)).toBe(-0);
  });
  it('backward matches finite differences', () => {
    const dy = xs.map((_, i) => 1 - 0.15 * i);
    const dx = geluBackwardRef(xs, dy);
    xs.forEach((x, i) => expect(dx[i]).toBeCloseTo(dy[i]! * fd(gelu, x), 8));
    expect(geluBackwardRef([100, -100], [1, 1])[0]).toBe(1);
    expect(geluBackwardRef([100, -100], [1, 1])[1]).toBe(0);
    expect([...geluForwardRef([0.5])]).toEqual([gelu(0.5)]);
  });
});

describe('swiglu', () => {
  it('computes silu(gate) ⊙ up', () => {
    expect([...swigluForwardRef([0, 1, -2], [5, 2, 3])]).toEqual([0, 2 * silu(1), 3 * silu(-2)]);
  });
  it('backward matches finite differences in gate and up', () => {
    const rng = new Rng(1);
    const n = 13;
    const gate = Float64Array.from(rng.uniformArray(n, -6, 6));
    const up = Float64Array.from(rng.uniformArray(n, -2, 2));
    const dh = Float64Array.from(rng.uniformArray(n));
    const { dgate, dup } = swigluBackwardRef(gate, up, dh);
    for (let i = 0; i < n; i++) {
      expect(dgate[i]).toBeCloseTo(dh[i]! * fd((g) => silu(g) * up[i]!, gate[i]!), 8);
      expect(dup[i]).toBeCloseTo(dh[i]! * fd((u) => silu(gate[i]!) * u, up[i]!), 8);
    }
  });
  it('rejects mismatched sizes', () => {
    expect(() => swigluForwardRef([1, 2], [1])).toThrow(/swigluForwardRef: up has 1 elements, gate has 2/);
  });
});

describe('residualAddRef', () => {
  it('adds element-wise', () => {
    expect([...residualAddRef([1, 2.5], [-1, 4])]).toEqual([0, 6.5]);
  });
});
