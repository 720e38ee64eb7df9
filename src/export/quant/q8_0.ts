// GGML Q8_0 (ggml type 8): blocks of 32 values, 34 bytes each: d (f16 scale), then 32 int8 quants; value = d·q.
// Quantizer (llama.cpp quantize_row_q8_0_ref): d = max|x| / 127, q = roundf(x · (1/d)), half away from zero.
import { blockCount, getF16, putF16, roundAway } from './f32.ts';

const fr = Math.fround; // local: an imported alias is not inlined (6× slower)

export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = blockCount('Q8_0', x.length, Q8_0_BLOCK);
  const out = new Uint8Array(nb * Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * Q8_0_BLOCK, o = i * Q8_0_BYTES;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(out, o, d);
    for (let j = 0; j < Q8_0_BLOCK; j++) out[o + 2 + j] = roundAway(fr(x[base + j]! * id)) & 0xff;
  }
  return out;
}

export function dequantizeQ8_0(b: Uint8Array, n: number): Float32Array {
  const nb = blockCount('Q8_0', n, Q8_0_BLOCK);
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BYTES, d = getF16(b, o);
    for (let j = 0; j < Q8_0_BLOCK; j++) y[i * Q8_0_BLOCK + j] = fr(((b[o + 2 + j]! << 24) >> 24) * d);
  }
  return y;
}
