// Single-precision arithmetic for the GGML block quantizers: llama.cpp's reference quantizers (ggml-quants.c) work
// in C `float`, and the files are only byte-identical to theirs if every operation here rounds to f32 where theirs
// does. JS numbers are doubles: one +, −, ×, ÷ or √ of two f32 values done in double and rounded once with
// Math.fround is the correctly rounded f32 result, so each operation in the quantizers is `fr(a op b)`, in C's
// order. Each file binds its own `const fr = Math.fround`: V8 did not inline an imported alias (K-quants 6× slower).
import { f16BitsToF32, f32ToF16Bits } from '../../util/half.ts';

/** llama.cpp's nearest_int: round to nearest, ties to even, by adding 1.5·2^23 in f32 (valid for |x| < 2^22). */
export function nearestInt(x: number): number {
  return Math.fround(x + 12582912) - 12582912;
}

/** C roundf: round half away from zero. */
export function roundAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** Writes f32 value `v` as an IEEE half (round to nearest even, as GGML_FP32_TO_FP16) at byte `at`. */
export function putF16(out: Uint8Array, at: number, v: number): void {
  const h = f32ToF16Bits(v);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

/** The half at byte `at`, widened exactly (GGML_FP16_TO_FP32). */
export function getF16(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

/** The block count of `n` values, checking that `n` is a whole number of blocks. */
export function blockCount(what: string, n: number, blockSize: number): number {
  if (n % blockSize !== 0) throw new Error(`${what}: ${n} values are not a whole number of ${blockSize}-value blocks`);
  return n / blockSize;
}
