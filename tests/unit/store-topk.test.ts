// The compact top-k codec: exact ids, bounded logprob error, ≤ 100 bytes per token at k = 32 up to V = 262,144,
// self-delimiting rows. Prints bytes/token, max |Δlogprob| and KL on softmax-of-Gaussian data (V = 32000, 152064).
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.ts';
import { decodeTopK, encodeTopK, f16RoundUp, f16ToNumber, packTopKRows, unpackTopKRows } from '../../src/store/topk.ts';

/** Top-k (ids, logprobs) of softmax(scale · N(0, 1)) over V, plus the row's full logsumexp. */
function gaussianTopK(rng: Rng, V: number, k: number, scale: number): { ids: Uint32Array; logprobs: Float32Array } {
  const logits = new Float64Array(V);
  let max = -Infinity;
  for (let v = 0; v < V; v++) { logits[v] = scale * rng.normal(); if (logits[v]! > max) max = logits[v]!; }
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[v]! - max);
  const lse = max + Math.log(sum);
  // Keep the k largest by insertion into a small sorted list.
  const top: number[] = [];
  for (let v = 0; v < V; v++) {
    if (top.length === k && logits[v]! <= logits[top[k - 1]!]!) continue;
    let i = top.length < k ? top.length : k - 1;
    if (top.length < k) top.push(v);
    while (i > 0 && logits[top[i - 1]!]! < logits[v]!) { top[i] = top[i - 1]!; i--; }
    top[i] = v;
  }
  // Shuffle the order: the codec must not rely on sorted input.
  for (let i = top.length - 1; i > 0; i--) { const j = rng.int(i + 1); [top[i], top[j]] = [top[j]!, top[i]!]; }
  return { ids: Uint32Array.from(top), logprobs: Float32Array.from(top, (v) => logits[v]! - lse) };
}

function klTopK(p: Float32Array, q: Float32Array): number {
  const lse = (a: Float32Array) => { const m = Math.max(...a); return m + Math.log(a.reduce((s, x) => s + Math.exp(x - m), 0)); };
  const lp = lse(p), lq = lse(q);
  let kl = 0;
  for (let i = 0; i < p.length; i++) kl += Math.exp(p[i]! - lp) * (p[i]! - lp - (q[i]! - lq));
  return kl;
}

/** Decoded logprobs aligned with the original ids. */
function align(ids: Uint32Array, dec: { ids: Uint32Array; logprobs: Float32Array }): Float32Array {
  const byId = new Map<number, number>();
  dec.ids.forEach((id, i) => byId.set(id, dec.logprobs[i]!));
  return Float32Array.from(ids, (id) => { const v = byId.get(id); if (v === undefined) throw new Error(`id ${id} lost`); return v; });
}

describe('top-k codec on realistic data', () => {
  for (const [V, tokens] of [[32000, 200], [152064, 80]] as const) {
    it(`V = ${V}: exact ids, ≤ 100 bytes/token, |Δlogprob| ≤ range/510, order restored`, () => {
      const rng = new Rng(V);
      let bytes = 0, maxErr = 0, maxKl = 0, sumKl = 0, worstRatio = 0;
      const encoded: Uint8Array[] = [];
      for (let t = 0; t < tokens; t++) {
        const { ids, logprobs } = gaussianTopK(rng, V, 32, 3);
        const enc = encodeTopK(ids, logprobs, 32);
        encoded.push(enc);
        expect(enc.length).toBeLessThanOrEqual(100);
        bytes += enc.length;
        const dec = decodeTopK(enc);
        expect(dec.bytesRead).toBe(enc.length);
        expect([...dec.ids].sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
        // Decoded order is logprob-descending; it matches the true order except within ties of one step.
        for (let i = 1; i < dec.logprobs.length; i++) expect(dec.logprobs[i]!).toBeLessThanOrEqual(dec.logprobs[i - 1]!);
        const got = align(ids, dec);
        const range = Math.max(...logprobs) - Math.min(...logprobs);
        // Bound: uniform quantisation over the row's range in 255 steps, step rounded up to an f16 (≤ 2^-10
        // relative), rounding to nearest → half a step; plus f32 rounding of max and of the decoded value.
        const bound = (range / 510) * (1 + 2 ** -10) + 4e-6;
        let rowErr = 0;
        for (let i = 0; i < ids.length; i++) rowErr = Math.max(rowErr, Math.abs(got[i]! - logprobs[i]!));
        expect(rowErr).toBeLessThanOrEqual(bound);
        worstRatio = Math.max(worstRatio, rowErr / bound);
        maxErr = Math.max(maxErr, rowErr);
        const kl = klTopK(logprobs, got);
        maxKl = Math.max(maxKl, kl);
        sumKl += kl;
      }
      // The top entry is exact to f32 and ids come back exactly across concatenated rows.
      const unpacked = unpackTopKRows(packTopKRows(encoded));
      expect(unpacked.length).toBe(tokens);
      console.log(
        `topk V=${V} k=32: ${(bytes / tokens).toFixed(1)} bytes/token, max |Δlogprob| ${maxErr.toExponential(2)} ` +
          `(worst row at ${(worstRatio * 100).toFixed(0)}% of its bound), KL mean ${(sumKl / tokens).toExponential(2)} max ${maxKl.toExponential(2)} nats`,
      );
      expect(maxKl).toBeLessThan(1e-4);
    });
  }
});

describe('top-k codec limits', () => {
  it('fits 100 bytes at k = 32 for any ids below 262,144 (worst cases)', () => {
    const rng = new Rng(3);
    const sets: number[][] = [
      Array.from({ length: 32 }, (_, i) => 262143 - i), // clustered at the top
      Array.from({ length: 32 }, (_, i) => i * 8192 + 8191), // evenly spread
      Array.from({ length: 32 }, (_, i) => (i === 31 ? 262143 : i)), // one far outlier
    ];
    for (let s = 0; s < 200; s++) {
      const set = new Set<number>();
      while (set.size < 32) set.add(rng.int(262144));
      sets.push([...set]);
    }
    let worst = 0;
    for (const ids of sets) {
      const lp = Float32Array.from(ids, () => -30 * rng.next()); // wide range: accuracy is not the point here
      const enc = encodeTopK(Uint32Array.from(ids), lp, 32);
      worst = Math.max(worst, enc.length);
      expect([...decodeTopK(enc).ids].sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    }
    console.log(`topk V=262144 k=32 worst case: ${worst} bytes/token`);
    expect(worst).toBeLessThanOrEqual(100);
  });

  it('keeps the top k of longer inputs, handles one entry and equal logprobs, and rejects bad input', () => {
    const ids = Uint32Array.of(7, 3, 9, 1);
    const lp = Float32Array.of(-1, -0.5, -3, -2);
    const dec = decodeTopK(encodeTopK(ids, lp, 2));
    expect([...dec.ids]).toEqual([3, 7]);
    const one = decodeTopK(encodeTopK(Uint32Array.of(123456), Float32Array.of(-0.25), 32));
    expect([...one.ids]).toEqual([123456]);
    expect([...one.logprobs]).toEqual([-0.25]);
    const flat = decodeTopK(encodeTopK(Uint32Array.of(5, 2, 8), Float32Array.of(-1.5, -1.5, -1.5), 32));
    expect([...flat.ids]).toEqual([2, 5, 8]); // ties come back by ascending id
    expect([...flat.logprobs]).toEqual([-1.5, -1.5, -1.5]);
    expect(() => encodeTopK(Uint32Array.of(1, 1), Float32Array.of(-1, -2), 32)).toThrow(/appears twice/);
    expect(() => encodeTopK(Uint32Array.of(1), Float32Array.of(NaN), 32)).toThrow(/must be finite/);
    expect(() => encodeTopK(Uint32Array.of(1), Float32Array.of(-1, -2), 32)).toThrow(/1 ids but 2 logprobs/);
    expect(() => encodeTopK(Uint32Array.of(1), Float32Array.of(-1), 256)).toThrow(/k must be/);
    const enc = encodeTopK(Uint32Array.of(1, 200000, 3), Float32Array.of(-1, -2, -3), 32);
    expect(() => decodeTopK(enc.subarray(0, enc.length - 1))).toThrow(/truncated/);
  });

  it('rounds the f16 step up, never down', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 2000; i++) {
      const x = 2 ** (rng.next() * 40 - 24) * (1 + rng.next());
      if (x > 65504) continue;
      const y = f16ToNumber(f16RoundUp(x));
      expect(y).toBeGreaterThanOrEqual(x);
      expect(y).toBeLessThanOrEqual(x * (1 + 2 ** -10) + 2 ** -24);
    }
  });
});
