import { describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { uniformStruct } from '../../src/gpu/uniforms.ts';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(1).uniformArray(8);
    expect([...new Rng(1).uniformArray(8)]).toEqual([...a]);
    expect([...new Rng(2).uniformArray(8)]).not.toEqual([...a]);
  });
  it('is roughly uniform and normal', () => {
    const r = new Rng(9);
    let s = 0, s2 = 0, u = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) { const x = r.normal(); s += x; s2 += x * x; u += r.next(); }
    expect(Math.abs(s / n)).toBeLessThan(0.05);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
    expect(Math.abs(u / n - 0.5)).toBeLessThan(0.01);
  });
});

describe('compareArrays', () => {
  it('accepts within atol + rtol·|ref| and rejects outside', () => {
    const tol = { atol: 1e-3, rtol: 1e-2 };
    expect(compareArrays([1.0105], [1], tol).ok).toBe(true); // bound 0.011
    const bad = compareArrays([0, 1.02], [0, 1], tol);
    expect(bad.ok).toBe(false);
    expect(bad.failures).toBe(1);
    expect(bad.worstIndex).toBe(1);
  });
  it('treats NaN and Inf as failures', () => {
    const c = compareArrays([NaN, Infinity], [0, 0], { atol: 1, rtol: 1 });
    expect(c.failures).toBe(2);
    expect(c.nonFinite).toBe(2);
    expect(c.ok).toBe(false);
  });
  it('uses the given scale instead of |expected|', () => {
    expect(compareArrays([0.5], [0], { atol: 0, rtol: 0.1 }, [10]).ok).toBe(true);
    expect(compareArrays([0.5], [0], { atol: 0, rtol: 0.1 }).ok).toBe(false);
  });
});

describe('uniformStruct', () => {
  const P = uniformStruct('Params', { M: 'u32', scale: 'f32', off: 'i32' });
  it('generates the WGSL struct and a 16-byte-rounded layout', () => {
    expect(P.wgsl).toBe('struct Params {\n  M: u32,\n  scale: f32,\n  off: i32,\n};\n');
    expect(P.size).toBe(16);
    const v = new DataView(P.pack({ M: 7, scale: 0.5, off: -3 }));
    expect([v.getUint32(0, true), v.getFloat32(4, true), v.getInt32(8, true)]).toEqual([7, 0.5, -3]);
  });
  it('rejects values that do not fit', () => {
    expect(() => P.pack({ M: -1, scale: 0, off: 0 })).toThrow(/Params.M: -1 is not a valid u32/);
    expect(() => P.pack({ M: 1.5, scale: 0, off: 0 })).toThrow(/not a valid u32/);
  });
});
