// The CPU KV-cache decode reference: a hand-computed step, the cache append, causality within a chunk, and that
// prefill + decode steps (or a prefill in chunks) reproduce the full causal attention reference bit for bit.
import { describe, expect, it } from 'vitest';
import { attentionForwardRef } from '../../src/kernels/attention/attention.ref.ts';
import { attentionDecodeRef, kvAppendRef } from '../../src/kernels/attention/decode.ref.ts';
import { Rng } from '../../src/util/rng.ts';

const randn = (rng: Rng, n: number): Float64Array => Float64Array.from({ length: n }, () => rng.normal());

describe('kvAppendRef', () => {
  it('writes the step at positions pos .. pos + S − 1 of every batch row and leaves the rest', () => {
    // B = 2, Tmax = 4, Hkv = 1, D = 2; S = 2 at pos 1.
    const dims = { B: 2, S: 2, Tmax: 4, H: 1, Hkv: 1, D: 2 };
    const cache = Array.from({ length: 16 }, () => 0);
    const x = [1, 2, 3, 4, 5, 6, 7, 8]; // (2, 2, 1, 2)
    expect([...kvAppendRef(cache, x, dims, 1)]).toEqual([0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0]);
    expect(cache.every((v) => v === 0)).toBe(true); // the input is not modified
  });

  it('rejects a step past the cache, a bad pos and wrong lengths with a clear error', () => {
    const dims = { B: 1, S: 2, Tmax: 4, H: 1, Hkv: 1, D: 2 };
    const cache = new Float64Array(8);
    expect(() => kvAppendRef(cache, new Float64Array(4), dims, 3)).toThrow(/kvAppendRef: pos \+ S = 3 \+ 2 = 5 exceeds the cache capacity Tmax = 4/);
    expect(() => kvAppendRef(cache, new Float64Array(4), dims, -1)).toThrow(/pos must be a non-negative integer, got -1/);
    expect(() => kvAppendRef(cache, new Float64Array(3), dims, 0)).toThrow(/kvAppendRef: x has 3 elements, expected 4/);
    expect(() => kvAppendRef(cache, new Float64Array(4), { ...dims, S: 5 }, 0)).toThrow(/S = 5 new tokens do not fit a cache of Tmax = 4/);
  });
});

describe('attentionDecodeRef', () => {
  it('computes a hand-checked step: one query against two cached keys', () => {
    // D = 1, scale 1, pos = 1: scores [0, ln 2] → P = [1/3, 2/3]; o = 3/3 + 2·6/3 = 5. Position 2 is never read.
    const dims = { B: 1, S: 1, Tmax: 3, H: 1, Hkv: 1, D: 1 };
    expect(attentionDecodeRef([1], [0, Math.LN2, 1e9], [3, 6, 1e9], dims, 1, 1)[0]).toBeCloseTo(5, 14);
    // Default scale 1/√D with D = 4: one key → o = v.
    expect([...attentionDecodeRef([1, 2, 3, 4], [1, 1, 1, 1], [5, 6, 7, 8], { ...dims, Tmax: 1, D: 4 }, 0)]).toEqual([5, 6, 7, 8]);
  });

  it('is causal within the new tokens: query s ignores cache positions after pos + s', () => {
    const rng = new Rng(1);
    const dims = { B: 1, S: 3, Tmax: 8, H: 2, Hkv: 1, D: 3 };
    const pos = 2;
    const q = randn(rng, 3 * 2 * 3);
    const kc = randn(rng, 8 * 3);
    const vc = randn(rng, 8 * 3);
    const a = attentionDecodeRef(q, kc, vc, dims, pos);
    const kc2 = kc.slice();
    const vc2 = vc.slice();
    for (let i = (pos + 1) * 3; i < 8 * 3; i++) { kc2[i] = 7; vc2[i] = -7; } // positions ≥ pos + 1
    const b = attentionDecodeRef(q, kc2, vc2, dims, pos);
    expect([...b.subarray(0, 2 * 3)]).toEqual([...a.subarray(0, 2 * 3)]); // s = 0 sees positions 0 .. 2 only
    expect(b[2 * 3]).not.toBe(a[2 * 3]); // s = 1 sees position 3
  });

  it('rejects bad groupings, positions past the cache and wrong lengths', () => {
    const dims = { B: 1, S: 1, Tmax: 2, H: 3, Hkv: 2, D: 1 };
    expect(() => attentionDecodeRef([1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], dims, 0)).toThrow(/H = 3 is not a multiple of Hkv = 2/);
    const ok = { ...dims, H: 2 };
    expect(() => attentionDecodeRef([1, 1], [0, 0, 0, 0], [0, 0, 0, 0], ok, 2)).toThrow(/pos \+ S = 2 \+ 1 = 3 exceeds the cache capacity Tmax = 2/);
    expect(() => attentionDecodeRef([1, 1], [0, 0, 0], [0, 0, 0, 0], ok, 0)).toThrow(/attentionDecodeRef: kcache has 3 elements, expected 4/);
    expect(() => attentionDecodeRef([1, 1], [0, 0, 0, 0], [0, 0, 0, 0], { ...ok, D: 0 }, 0)).toThrow(/D must be a positive integer, got 0/);
  });
});

describe('prefill + decode = full causal attention', () => {
  const [B, T, H, Hkv, D] = [2, 11, 6, 2, 5];
  const rng = new Rng(3);
  const q = randn(rng, B * T * H * D); // (B, T, H, D)
  const k = randn(rng, B * T * Hkv * D); // (B, T, Hkv, D)
  const v = randn(rng, B * T * Hkv * D);
  const full = attentionForwardRef(q, k, v, { B, T, H, Hkv, D }).o;
  /** Rows [t0, t0 + S) of a (B, T, heads, D) tensor, as (B, S, heads, D). */
  const rows = (x: Float64Array, t0: number, S: number, heads: number): Float64Array => {
    const out = new Float64Array(B * S * heads * D);
    for (let b = 0; b < B; b++) out.set(x.subarray((b * T + t0) * heads * D, (b * T + t0 + S) * heads * D), b * S * heads * D);
    return out;
  };
  /** Runs the sequence through the cache in steps of the given lengths; returns o as (B, T, H, D). */
  const generate = (chunks: number[], Tmax: number): Float64Array => {
    let kc: Float64Array = new Float64Array(B * Tmax * Hkv * D).fill(Number.NaN); // never-written positions must not be read
    let vc: Float64Array = new Float64Array(B * Tmax * Hkv * D).fill(Number.NaN);
    const o = new Float64Array(B * T * H * D);
    let pos = 0;
    for (const S of chunks) {
      const dims = { B, S, Tmax, H, Hkv, D };
      kc = kvAppendRef(kc, rows(k, pos, S, Hkv), dims, pos);
      vc = kvAppendRef(vc, rows(v, pos, S, Hkv), dims, pos);
      const os = attentionDecodeRef(rows(q, pos, S, H), kc, vc, dims, pos); // (B, S, H, D)
      for (let b = 0; b < B; b++) o.set(os.subarray(b * S * H * D, (b + 1) * S * H * D), (b * T + pos) * H * D);
      pos += S;
    }
    expect(pos).toBe(T);
    return o;
  };

  it('prefill of the whole prompt (S = T) equals the full reference exactly', () => {
    expect([...generate([T], T)]).toEqual([...full]);
  });

  it('prefill S = 7, then 4 decode steps S = 1, reproduce the last rows exactly (spare cache positions)', () => {
    const o = generate([7, 1, 1, 1, 1], T + 5);
    expect([...rows(o, 7, 4, H)]).toEqual([...rows(full, 7, 4, H)]);
    expect([...o]).toEqual([...full]);
  });

  it('a prefill in uneven chunks gives the same rows', () => {
    expect([...generate([3, 5, 1, 2], T)]).toEqual([...full]);
  });
});
