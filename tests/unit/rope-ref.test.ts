// CPU reference of RoPE: hand values in the Hugging Face rotate_half convention, invariants, the backward vs
// finite differences of the forward, and the fixed-point frequency table the kernel uses.
import { describe, expect, it } from 'vitest';
import { ropeTurnsTable } from '../../src/kernels/rope/rope.ts';
import { ropeBackwardRef, ropeForwardRef } from '../../src/kernels/rope/rope.ref.ts';
import { Rng } from '../../src/util/rng.ts';

describe('ropeForwardRef', () => {
  it('rotates the pair (x0, x1) of D = 2 by angle = pos', () => {
    const y = ropeForwardRef([1, 2, 1, 2], 1, 2, 1, 2); // t = 0: identity; t = 1: angle 1
    expect(y[0]).toBe(1);
    expect(y[1]).toBe(2);
    expect(y[2]).toBeCloseTo(Math.cos(1) - 2 * Math.sin(1), 14);
    expect(y[3]).toBeCloseTo(2 * Math.cos(1) + Math.sin(1), 14);
  });
  it('pairs j with j + D/2 (rotate_half) at inv_freq_j = θ^(−2j/D), with posOffset', () => {
    const D = 4;
    const x = [1, 2, 3, 4]; // pairs (1, 3) and (2, 4)
    const y = ropeForwardRef(x, 1, 1, 1, D, { posOffset: 5, theta: 100 });
    const a0 = 5;
    const a1 = 5 * 100 ** (-2 / 4);
    expect(y[0]).toBeCloseTo(1 * Math.cos(a0) - 3 * Math.sin(a0), 13);
    expect(y[2]).toBeCloseTo(3 * Math.cos(a0) + 1 * Math.sin(a0), 13);
    expect(y[1]).toBeCloseTo(2 * Math.cos(a1) - 4 * Math.sin(a1), 13);
    expect(y[3]).toBeCloseTo(4 * Math.cos(a1) + 2 * Math.sin(a1), 13);
  });
  it('preserves the norm of every pair, uses the same angles for every head and batch', () => {
    const rng = new Rng(1);
    const [B, T, H, D] = [2, 3, 3, 8];
    const x = Float64Array.from(rng.uniformArray(B * T * H * D));
    const y = ropeForwardRef(x, B, T, H, D);
    for (let base = 0; base < x.length; base += D) {
      for (let j = 0; j < D / 2; j++) {
        expect(Math.hypot(y[base + j]!, y[base + j + 4]!)).toBeCloseTo(Math.hypot(x[base + j]!, x[base + j + 4]!), 14);
      }
    }
    const ones = ropeForwardRef(new Float64Array(B * T * H * D).fill(1), B, T, H, D);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      expect([...ones.subarray(((b * T + 2) * H + h) * D, ((b * T + 2) * H + h + 1) * D)]).toEqual([...ones.subarray(2 * H * D, 2 * H * D + D)]);
    }
  });
  it('with posOffset equals the same positions of a longer sequence', () => {
    const rng = new Rng(2);
    const [T, H, D] = [10, 2, 6];
    const x = Float64Array.from(rng.uniformArray(T * H * D));
    const full = ropeForwardRef(x, 1, T, H, D);
    const tail = ropeForwardRef(x.subarray(7 * H * D), 1, 3, H, D, { posOffset: 7 });
    expect([...tail]).toEqual([...full.subarray(7 * H * D)]);
  });
  it('rejects odd D and mismatched sizes', () => {
    expect(() => ropeForwardRef([1, 2, 3], 1, 1, 1, 3)).toThrow(/D must be even/);
    expect(() => ropeForwardRef([1, 2, 3], 1, 1, 1, 2)).toThrow(/x has 3 elements, expected B·T·H·D = 2/);
  });
});

describe('ropeBackwardRef', () => {
  it('matches finite differences of Σ dy·forward(x)', () => {
    const rng = new Rng(3);
    const [B, T, H, D] = [1, 3, 2, 4];
    const opts = { posOffset: 11 };
    const x = Float64Array.from(rng.uniformArray(B * T * H * D));
    const dy = Float64Array.from(rng.uniformArray(B * T * H * D));
    const dx = ropeBackwardRef(dy, B, T, H, D, opts);
    const h = 1e-6;
    const loss = () => ropeForwardRef(x, B, T, H, D, opts).reduce((s, v, i) => s + v * dy[i]!, 0);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      x[i] = v + h; const lp = loss();
      x[i] = v - h; const lm = loss();
      x[i] = v;
      expect(Math.abs((lp - lm) / (2 * h) - dx[i]!)).toBeLessThan(1e-8);
    }
  });
  it('inverts the forward', () => {
    const x = Float64Array.from(new Rng(4).uniformArray(2 * 5 * 16));
    const back = ropeBackwardRef(ropeForwardRef(x, 2, 5, 1, 16, { posOffset: 3 }), 2, 5, 1, 16, { posOffset: 3 });
    back.forEach((v, i) => expect(v).toBeCloseTo(x[i]!, 14));
  });
});

describe('ropeTurnsTable', () => {
  it('holds inv_freq_j / 2π as a 64-bit fraction (hi, lo)', () => {
    const [D, theta] = [64, 10000];
    const t = ropeTurnsTable(D, theta);
    expect(t.length).toBe(256);
    for (let j = 0; j < D / 2; j++) {
      const frac = t[2 * j]! / 2 ** 32 + t[2 * j + 1]! / 2 ** 64;
      const want = theta ** ((-2 * j) / D) / (2 * Math.PI);
      expect(Math.abs(frac - want)).toBeLessThanOrEqual(want * 2 ** -52 + 2 ** -64);
    }
    expect([...t.subarray(D)].every((v) => v === 0)).toBe(true);
  });
});
