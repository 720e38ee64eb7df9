// CPU reference of the token embedding and the CPU side of its backward: hand values, the backward against
// finite differences of the forward, bucketing (grouping, order, id validation) and vocab chunking.
import { describe, expect, it } from 'vitest';
import { buildEmbeddingBuckets, checkTokenIds, embeddingChunks } from '../../src/kernels/embedding/embedding.ts';
import { embeddingBackwardRef, embeddingForwardRef } from '../../src/kernels/embedding/embedding.ref.ts';
import { Rng } from '../../src/util/rng.ts';

describe('embeddingForwardRef', () => {
  it('gathers rows of wte by token id', () => {
    const wte = [0, 1, 10, 11, 20, 21]; // V = 3, C = 2
    expect([...embeddingForwardRef([2, 0, 2], wte, 3, 2)]).toEqual([20, 21, 0, 1, 20, 21]);
  });
  it('rejects ids out of range naming the position, and a wrong table size', () => {
    expect(() => embeddingForwardRef([0, 3], [0, 1, 2], 3, 1)).toThrow(/token id 3 at position 1 is out of range \[0, 3\)/);
    expect(() => embeddingForwardRef([0], [0, 1], 3, 1)).toThrow(/wte has 2 elements, expected V·C = 3/);
  });
});

describe('embeddingBackwardRef', () => {
  it('sums the gradient rows of repeated ids', () => {
    expect([...embeddingBackwardRef([1, 1, 0], [1, 2, 3, 4, 5, 6], 3, 2)]).toEqual([5, 6, 4, 6, 0, 0]);
  });
  it('matches finite differences of Σ dx·forward(wte)', () => {
    const rng = new Rng(1);
    const [V, C] = [5, 3];
    const ids = [4, 1, 4, 4, 0, 1, 2];
    const wte = Float64Array.from(rng.uniformArray(V * C));
    const dx = Float64Array.from(rng.uniformArray(ids.length * C));
    const g = embeddingBackwardRef(ids, dx, V, C);
    const h = 1e-6;
    const loss = () => embeddingForwardRef(ids, wte, V, C).reduce((s, v, i) => s + v * dx[i]!, 0);
    for (let i = 0; i < V * C; i++) {
      const v = wte[i]!;
      wte[i] = v + h; const lp = loss();
      wte[i] = v - h; const lm = loss();
      wte[i] = v;
      expect(Math.abs((lp - lm) / (2 * h) - g[i]!)).toBeLessThan(1e-8);
    }
  });
});

describe('buildEmbeddingBuckets', () => {
  it('groups positions by token: unique ascending, positions ascending within a token', () => {
    const b = buildEmbeddingBuckets(Uint32Array.from([5, 2, 5, 0, 2, 5]), 7);
    expect([...b.unique]).toEqual([0, 2, 5]);
    expect([...b.offsets]).toEqual([0, 1, 3, 6]);
    expect([...b.positions]).toEqual([3, 1, 4, 0, 2, 5]);
  });
  it('handles an id used by every position and a single position', () => {
    const b = buildEmbeddingBuckets(new Uint32Array(9).fill(3), 4);
    expect([...b.unique]).toEqual([3]);
    expect([...b.offsets]).toEqual([0, 9]);
    expect([...b.positions]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...buildEmbeddingBuckets(Uint32Array.from([0]), 1).positions]).toEqual([0]);
  });
  it('rejects an id ≥ V naming its position', () => {
    expect(() => buildEmbeddingBuckets(Uint32Array.from([1, 2, 9]), 9)).toThrow(/token id 9 at position 2 is out of range \[0, 9\)/);
    expect(() => checkTokenIds([0, -1], 4)).toThrow(/position 1/);
  });
});

describe('embeddingChunks', () => {
  it('keeps the table whole when it fits', () => {
    expect(embeddingChunks(100, 8, 3200)).toEqual([{ v0: 0, v1: 100 }]);
  });
  it('splits into 256-byte aligned chunks under the limit', () => {
    // C = 7: 28-byte rows, aligned offsets every 64 rows; 2000 bytes hold 71 rows → 64-row chunks
    expect(embeddingChunks(130, 7, 2000)).toEqual([{ v0: 0, v1: 64 }, { v0: 64, v1: 128 }, { v0: 128, v1: 130 }]);
    const chunks = embeddingChunks(1000, 48, 10_000);
    for (const c of chunks) {
      expect((c.v0 * 48 * 4) % 256).toBe(0);
      expect((c.v1 - c.v0) * 48 * 4).toBeLessThanOrEqual(10_000);
    }
    expect(chunks.at(-1)!.v1).toBe(1000);
  });
  it('fails clearly when not even one aligned chunk fits', () => {
    expect(() => embeddingChunks(100, 7, 1000)).toThrow(/a chunk of 64 rows \(1792 bytes, for 256-byte aligned offsets\) exceeds the binding limit of 1000 bytes/);
  });
});
