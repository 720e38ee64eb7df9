// GGML Q5_0 (ggml type 6): blocks of 32 values, 22 bytes each: d (f16), qh (u32: bit j = the 5th bit of value j),
// then 16 bytes of low nibbles (byte j: value j low, value j + 16 high); value = d·(q − 16).
// Quantizer (llama.cpp quantize_row_q5_0_ref): like Q4_0 with d = max / −16, q = min(31, trunc(x/d + 16.5)).
// llama.cpp's Q4_K_M uses it for a Q4_K tensor whose rows are not a multiple of 256 (tensor_type_fallback).
import { blockCount, getF16, putF16 } from './f32.ts';
import { signedAbsMax } from './q4_0.ts';

const fr = Math.fround; // local: an imported alias is not inlined (6× slower)

export const Q5_0_BLOCK = 32;
export const Q5_0_BYTES = 22;

export function quantizeQ5_0(x: Float32Array): Uint8Array {
  const nb = blockCount('Q5_0', x.length, Q5_0_BLOCK);
  const out = new Uint8Array(nb * Q5_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * Q5_0_BLOCK, o = i * Q5_0_BYTES;
    const d = fr(signedAbsMax(x, base, Q5_0_BLOCK) / -16);
    const id = d ? fr(1 / d) : 0;
    putF16(out, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(x[base + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(fr(fr(x[base + 16 + j]! * id) + 16.5)));
      out[o + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    out[o + 2] = qh & 0xff; out[o + 3] = (qh >>> 8) & 0xff; out[o + 4] = (qh >>> 16) & 0xff; out[o + 5] = qh >>> 24;
  }
  return out;
}

export function dequantizeQ5_0(b: Uint8Array, n: number): Float32Array {
  const nb = blockCount('Q5_0', n, Q5_0_BLOCK);
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_0_BYTES, d = getF16(b, o), base = i * Q5_0_BLOCK;
    const qh = (b[o + 2]! | (b[o + 3]! << 8) | (b[o + 4]! << 16) | (b[o + 5]! << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j]!;
      y[base + j] = fr((((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d);
      y[base + 16 + j] = fr((((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d);
    }
  }
  return y;
}
