// GGML block quantizers (src/export/quant/) against two independent implementations, on the same weights:
//   - llama.cpp itself: ggml_quantize_chunk of node-llama-cpp's libggml-base.so (what llama-quantize runs);
//   - gguf-py's gguf.quants (numpy): its quantize where it has one (Q8_0, Q4_0, Q5_0), its dequantize for all.
// Our bytes must equal llama.cpp's (and gguf-py's) byte for byte, and gguf-py's dequantization of our bytes must
// equal our dequantizer bit for bit. The weights are odd on purpose: per 32-value group a different kind — normal
// at scales 1e-4..1e2, all zeros, zeros with one outlier, exact .5 ties for Q8_0's roundf, all positive (Q4_K's
// min = 0 path), all negative, a constant, tiny values — and one whole zero row (Q6_K's empty super-block).
import { describe, expect, it } from 'vitest';
import { BLOCK_CODECS, type BlockType } from '../../src/export/quant/index.ts';
import { nearestInt, roundAway } from '../../src/export/quant/f32.ts';
import { Rng } from '../../src/util/rng.ts';
import { ggmlOracle } from '../support/ggml-quants-python.ts';

/** rows × cols odd weights (see the banner); row `zeroRow` all zero. */
export function oddWeights(rows: number, cols: number, seed: number, zeroRow = 1): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(rows * cols);
  for (let g = 0; g < x.length / 32; g++) {
    const base = g * 32;
    if (Math.floor(base / cols) === zeroRow) continue;
    const kind = rng.int(9);
    const scale = 10 ** (-4 + 6 * rng.next());
    for (let j = 0; j < 32; j++) {
      const n = rng.normal();
      x[base + j] = kind === 0 || kind === 8 ? n * scale
        : kind === 1 ? 0
          : kind === 2 ? (rng.int(4) === 0 ? 0 : n * scale)
            : kind === 3 ? (j === 0 ? 127 : rng.int(254) - 127 + 0.5) * (rng.int(2) ? 1 : 0.25)
              : kind === 4 ? Math.abs(n) * scale + scale
                : kind === 5 ? -Math.abs(n) * scale
                  : kind === 6 ? scale
                    : n * 1e-7;
    }
    if (kind === 2) x[base + rng.int(32)] = (rng.int(2) ? 50 : -50) * scale;
  }
  return x;
}

const u32 = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function firstDiff(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  const i = a.findIndex((v, k) => v !== b[k]);
  return i < 0 ? 'none' : `byte ${i}: ${a[i]} vs ${b[i]}`;
}

// Shapes: K types need rows of 256s; the 32-block types get rows of 96 (three blocks) and 288.
const CASES: Array<[BlockType, number, number]> = [
  ['Q8_0', 9, 96], ['Q8_0', 4, 288],
  ['Q4_0', 9, 96], ['Q4_0', 4, 288],
  ['Q5_0', 9, 96], ['Q5_0', 4, 288],
  ['Q4_K', 7, 512],
  ['Q6_K', 7, 512],
];

describe('GGML block quantizers vs llama.cpp and gguf-py', { timeout: 120_000 }, () => {
  const inputs = CASES.map(([type, rows, cols], i) => {
    const x = oddWeights(rows, cols, 1000 + i);
    return { type, x, cols, ours: BLOCK_CODECS[type].quantize(x) };
  });
  const results = ggmlOracle(inputs);

  it.each(CASES.map((c, i) => [...c, i] as const))('%s %i×%i: bytes equal llama.cpp ggml_quantize_chunk', (type, rows, cols, i) => {
    const { ours } = inputs[i]!, { llama } = results[i]!;
    expect(ours.length).toBe(rows * cols / BLOCK_CODECS[type].blockSize * BLOCK_CODECS[type].blockBytes);
    expect(firstDiff(ours, llama)).toBe('none');
  });

  it.each(CASES.map((c, i) => [...c, i] as const))('%s %i×%i: bytes equal gguf.quants.quantize where it quantizes', (type, _r, _c, i) => {
    const g = results[i]!.gguf;
    // gguf-py 0.19 only dequantizes K-quants (llama.cpp's bytes above are their proof); a later one that quantizes
    // them is held to the same bytes.
    if ((type === 'Q4_K' || type === 'Q6_K') && g === null) return;
    expect(g).not.toBeNull();
    expect(firstDiff(inputs[i]!.ours, g!)).toBe('none');
  });

  it.each(CASES.map((c, i) => [...c, i] as const))('%s %i×%i: our dequantizer equals gguf.quants.dequantize bit for bit', (type, _r, _c, i) => {
    const { ours, x } = inputs[i]!;
    const mine = BLOCK_CODECS[type].dequantize(ours, x.length);
    const theirs = results[i]!.deq;
    expect(theirs.length).toBe(mine.length);
    const bad = u32(mine).findIndex((v, k) => v !== u32(theirs)[k]);
    expect(bad === -1 ? 'none' : `value ${bad}: ${mine[bad]} vs ${theirs[bad]}`).toBe('none');
    // And the quantization is a quantization: every value within a fifth of its block's largest magnitude of the
    // original, plus 1e-6 for the f16 scales of the tiny groups (1e-7 values have subnormal f16 scales).
    const bs = BLOCK_CODECS[type].blockSize;
    for (let b = 0; b < x.length / bs; b++) {
      let amax = 0;
      for (let j = 0; j < bs; j++) amax = Math.max(amax, Math.abs(x[b * bs + j]!));
      for (let j = 0; j < bs; j++) expect(Math.abs(mine[b * bs + j]! - x[b * bs + j]!)).toBeLessThanOrEqual(amax * 0.2 + 1e-6);
    }
  });
});

describe('block quantizer pieces', () => {
  it('nearest_int rounds half to even, roundf half away from zero', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 3.49].map(nearestInt)).toEqual([0, 2, 2, 0, -2, 3]);
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 3.49].map(roundAway)).toEqual([1, 2, 3, -1, -3, 3]);
  });

  it('refuses a length that is not a whole number of blocks, naming the type', () => {
    expect(() => BLOCK_CODECS.Q8_0.quantize(new Float32Array(40))).toThrow(/Q8_0: 40 values are not a whole number of 32-value blocks/);
    expect(() => BLOCK_CODECS.Q4_K.quantize(new Float32Array(288))).toThrow(/Q4_K: 288 values .* 256-value blocks/);
    expect(() => BLOCK_CODECS.Q6_K.dequantize(new Uint8Array(210), 100)).toThrow(/Q6_K/);
  });
});
