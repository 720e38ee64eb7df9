// GGML Q4_0 (ggml type 2): blocks of 32 values, 18 bytes each: d (f16), then 16 bytes of 4-bit quants — byte j
// holds value j in its low nibble and value j + 16 in its high nibble; value = d·(q − 8).
// Quantizer (llama.cpp quantize_row_q4_0_ref): `max` is the first value of largest magnitude, d = max / −8 (so that
// value maps to q = 0 exactly), q = min(15, trunc(x/d + 8.5)).
import { blockCount, getF16, putF16 } from './f32.ts';

const fr = Math.fround; // local: an imported alias is not inlined (6× slower)

export const Q4_0_BLOCK = 32;
export const Q4_0_BYTES = 18;

/** The first value of largest magnitude in x[base, base + n) (0 when all are zero), as ggml's loops find it. */
export function signedAbsMax(x: Float32Array, base: number, n: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[base + j]!;
    if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
  }
  return max;
}

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = blockCount('Q4_0', x.length, Q4_0_BLOCK);
  const out = new Uint8Array(nb * Q4_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * Q4_0_BLOCK, o = i * Q4_0_BYTES;
    const d = fr(signedAbsMax(x, base, Q4_0_BLOCK) / -8);
    const id = d ? fr(1 / d) : 0;
    putF16(out, o, d);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[base + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[base + 16 + j]! * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

export function dequantizeQ4_0(b: Uint8Array, n: number): Float32Array {
  const nb = blockCount('Q4_0', n, Q4_0_BLOCK);
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_0_BYTES, d = getF16(b, o), base = i * Q4_0_BLOCK;
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j]!;
      y[base + j] = fr(((q & 15) - 8) * d);
      y[base + 16 + j] = fr(((q >> 4) - 8) * d);
    }
  }
  return y;
}
