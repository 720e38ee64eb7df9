// The GGML block-quantized tensor types we write, by name: ggml type code, values per block, bytes per block, our
// quantizer (byte-identical to llama.cpp's reference quantizers, tests/unit/gguf-quants.test.ts) and dequantizer
// (the CPU reference of what llama.cpp reads back). A quantized tensor's rows (GGUF dims[0]) must be a whole number
// of blocks; blocks run along each row, rows one after another.
import { dequantizeQ4_0, quantizeQ4_0, Q4_0_BLOCK, Q4_0_BYTES } from './q4_0.ts';
import { dequantizeQ4_K, quantizeQ4_K, QK_K, Q4_K_BYTES } from './q4_k.ts';
import { dequantizeQ5_0, quantizeQ5_0, Q5_0_BLOCK, Q5_0_BYTES } from './q5_0.ts';
import { dequantizeQ6_K, quantizeQ6_K, Q6_K_BYTES } from './q6_k.ts';
import { dequantizeQ8_0, quantizeQ8_0, Q8_0_BLOCK, Q8_0_BYTES } from './q8_0.ts';

export interface BlockCodec {
  /** ggml_type code in the file. */
  code: number;
  blockSize: number;
  blockBytes: number;
  quantize(x: Float32Array): Uint8Array;
  dequantize(bytes: Uint8Array, n: number): Float32Array;
}

export const BLOCK_CODECS = {
  Q4_0: { code: 2, blockSize: Q4_0_BLOCK, blockBytes: Q4_0_BYTES, quantize: quantizeQ4_0, dequantize: dequantizeQ4_0 },
  Q5_0: { code: 6, blockSize: Q5_0_BLOCK, blockBytes: Q5_0_BYTES, quantize: quantizeQ5_0, dequantize: dequantizeQ5_0 },
  Q8_0: { code: 8, blockSize: Q8_0_BLOCK, blockBytes: Q8_0_BYTES, quantize: quantizeQ8_0, dequantize: dequantizeQ8_0 },
  Q4_K: { code: 12, blockSize: QK_K, blockBytes: Q4_K_BYTES, quantize: quantizeQ4_K, dequantize: dequantizeQ4_K },
  Q6_K: { code: 14, blockSize: QK_K, blockBytes: Q6_K_BYTES, quantize: quantizeQ6_K, dequantize: dequantizeQ6_K },
} as const satisfies Record<string, BlockCodec>;

export type BlockType = keyof typeof BLOCK_CODECS;

export function isBlockType(t: string): t is BlockType {
  return Object.hasOwn(BLOCK_CODECS, t);
}
