// Which ggml type each tensor of a quantized GGUF gets: the tensor-type rules of llama.cpp's own quantizer
// (src/llama-quant.cpp, llama_tensor_get_type, at the version node-llama-cpp bundles), without an importance matrix,
// for the three mixes we write, so that our file is the one `llama-quantize model-f32.gguf out.gguf Q4_K_M` makes:
//
//   not quantized (kept F32): 1-D tensors (norm gains, biases), names not ending in "weight", "*_norm.weight".
//   the output matrix — output.weight, or token_embd.weight when the model is tied (no output.weight; llama.cpp
//   then quantizes token_embd as the output):
//       Q8_0 mix → Q8_0; Q4_0 and Q4_K_M → Q6_K, or Q8_0 when its rows are not a multiple of the mix's block
//       (32 for Q4_0, 256 for Q4_K_M).
//   Q4_K_M only, with use_more_bits(i, n) = i < n/8 || i ≥ 7n/8 || (i − n/8) % 3 == 2 (integer division):
//       blk.i.attn_v.weight → Q6_K when use_more_bits(i-th attn_v, number of attn_v);
//       blk.i.ffn_down.weight → Q6_K when use_more_bits(i-th ffn_down, number of ffn_down);
//   everything else: the mix's type (Q8_0, Q4_0, Q4_K).
//   Rows (GGUF dims[0]) that are not a multiple of the chosen type's block fall back as llama.cpp's
//   tensor_type_fallback does: Q4_K → Q5_0, Q6_K → Q8_0; and if the row is still not a multiple of 32 (or a 32-block
//   type did not fit), F16.
import type { GgmlType } from './gguf-format.ts';
import { BLOCK_CODECS, isBlockType } from './quant/index.ts';

export type GgufQuantMix = 'Q8_0' | 'Q4_0' | 'Q4_K_M';

/** general.file_type (llama_ftype) of each mix. */
export const QUANT_FILE_TYPE: Record<GgufQuantMix, number> = { Q4_0: 2, Q8_0: 7, Q4_K_M: 15 };
/** general.quantization_version: the block layouts of ggml's current quantization (GGML_QNT_VERSION). */
export const GGML_QUANTIZATION_VERSION = 2;

const BASE_TYPE: Record<GgufQuantMix, GgmlType> = { Q8_0: 'Q8_0', Q4_0: 'Q4_0', Q4_K_M: 'Q4_K' };

export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

function blockSize(t: GgmlType): number {
  return isBlockType(t) ? BLOCK_CODECS[t].blockSize : 1;
}

/** llama.cpp's tensor_type_fallback for a row of `cols` values. */
export function fallbackType(t: GgmlType, cols: number): GgmlType {
  if (cols % blockSize(t) === 0) return t;
  const next: GgmlType = t === 'Q4_K' ? 'Q5_0' : t === 'Q6_K' ? 'Q8_0' : t;
  return next !== t && cols % blockSize(next) === 0 ? next : 'F16';
}

/** The ggml type of every tensor (GGUF names and dims, in file order) under `mix`. */
export function quantTensorTypes(tensors: ReadonlyArray<{ name: string; dims: readonly number[] }>, mix: GgufQuantMix): GgmlType[] {
  const base = BASE_TYPE[mix];
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const nAttnV = tensors.filter((t) => /^blk\.\d+\.attn_v\.weight$/.test(t.name)).length;
  const nFfnDown = tensors.filter((t) => /^blk\.\d+\.ffn_down\.weight$/.test(t.name)).length;
  let iAttnV = 0, iFfnDown = 0;
  return tensors.map(({ name, dims }) => {
    if (dims.length < 2 || !name.endsWith('weight') || name.includes('_norm.weight')) return 'F32';
    const cols = dims[0]!;
    let type = base;
    if (name === 'output.weight' || (tied && name === 'token_embd.weight')) {
      type = mix === 'Q8_0' || cols % blockSize(base) !== 0 ? 'Q8_0' : 'Q6_K';
    } else if (/^blk\.\d+\.attn_v\.weight$/.test(name)) {
      if (mix === 'Q4_K_M' && useMoreBits(iAttnV, nAttnV)) type = 'Q6_K';
      iAttnV++;
    } else if (/^blk\.\d+\.ffn_down\.weight$/.test(name)) {
      if (mix === 'Q4_K_M' && useMoreBits(iFfnDown, nFfnDown)) type = 'Q6_K';
      iFfnDown++;
    }
    return fallbackType(type, cols);
  });
}
