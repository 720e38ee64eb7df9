// Weight quantization of the ONNX exports (onnx-quant.ts), with the CPU dequantizers that say what the runtime
// computes with. Both quantize an HF (N, K) = (out, in) matrix along K, symmetric, and run in f32 like the GGML ones.
//   int8 per output row (q8, DequantizeLinear with axis 0): scale_n = max_k |w| / 127, q = roundf(w · (1/scale)),
//     w ≈ q · scale. The ONNX standard op (opset 13+), which onnxruntime-web runs on every backend.
//   4-bit blocks of 32 along K (q4, com.microsoft MatMulNBits, bits 4, block_size 32, no zero_points input → zero
//     point 8): scale = m / −8 with m the block's first value of largest magnitude (as GGML's Q4_0, in f32 instead
//     of f16), q = min(15, trunc(w/scale + 8.5)), w ≈ (q − 8) · scale. B is (N, K/32, 16): byte i of a block holds
//     element 2i in its low nibble and 2i + 1 in its high nibble (MatMulNBits packs low-first along K).
import { roundAway } from './f32.ts';
import { signedAbsMax } from './q4_0.ts';

const fr = Math.fround;
export const NBITS_BLOCK = 32;

export interface Int8Rows { q: Int8Array; scales: Float32Array }

export function quantizeInt8Rows(w: Float32Array, N: number, K: number): Int8Rows {
  if (w.length !== N * K) throw new Error(`int8 rows: ${w.length} values are not ${N}×${K}`);
  const q = new Int8Array(N * K), scales = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(w[n * K + k]!));
    const d = fr(amax / 127), id = d ? fr(1 / d) : 0;
    scales[n] = d;
    for (let k = 0; k < K; k++) q[n * K + k] = roundAway(fr(w[n * K + k]! * id));
  }
  return { q, scales };
}

export function dequantizeInt8Rows({ q, scales }: Int8Rows, N: number, K: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w[n * K + k] = fr(q[n * K + k]! * scales[n]!);
  return w;
}

export interface NBits4 { b: Uint8Array; scales: Float32Array }

export function quantizeNBits4(w: Float32Array, N: number, K: number): NBits4 {
  if (w.length !== N * K) throw new Error(`MatMulNBits: ${w.length} values are not ${N}×${K}`);
  if (K % NBITS_BLOCK !== 0) throw new Error(`MatMulNBits: K = ${K} is not a multiple of the block size ${NBITS_BLOCK}`);
  const nb = K / NBITS_BLOCK;
  const b = new Uint8Array(N * nb * 16), scales = new Float32Array(N * nb);
  for (let blk = 0; blk < N * nb; blk++) {
    const base = blk * NBITS_BLOCK;
    const d = fr(signedAbsMax(w, base, NBITS_BLOCK) / -8), id = d ? fr(1 / d) : 0;
    scales[blk] = d;
    for (let i = 0; i < 16; i++) {
      const lo = Math.min(15, Math.trunc(fr(fr(w[base + 2 * i]! * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(fr(fr(w[base + 2 * i + 1]! * id) + 8.5)));
      b[blk * 16 + i] = lo | (hi << 4);
    }
  }
  return { b, scales };
}

export function dequantizeNBits4({ b, scales }: NBits4, N: number, K: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let blk = 0; blk < (N * K) / NBITS_BLOCK; blk++) {
    const d = scales[blk]!;
    for (let i = 0; i < 16; i++) {
      const v = b[blk * 16 + i]!;
      w[blk * NBITS_BLOCK + 2 * i] = fr(((v & 15) - 8) * d);
      w[blk * NBITS_BLOCK + 2 * i + 1] = fr(((v >> 4) - 8) * d);
    }
  }
  return w;
}
