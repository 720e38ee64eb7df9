// What a GGUF export keeps of the weights: each tensor as the file stores it (F32, F16, or the quantization mix's
// block type chosen by gguf-quant.ts), read back through our dequantizers — the weights llama.cpp computes with —
// in the model's own slab layout, and the file's exact size. The Export stage measures each format's cost in quality
// by evaluating these weights on a run's held-out data (src/engine/runs/compare-formats.ts).
// Blocks run along rows and the Q/K row permutation of the GGUF only reorders whole rows, so each of our tensors is
// quantized in place, unpermuted, with the type the file gives it.
import { paramLayout } from '../model/params.ts';
import { ggufFile, type GgufDtype } from './gguf.ts';
import { ggufLayout, type GgmlType } from './gguf-format.ts';
import { f16BitsToF32, f32ToF16Bits } from '../util/half.ts';
import { toHfTensors } from './hf-names.ts';
import { BLOCK_CODECS, isBlockType } from './quant/index.ts';
import { exportView, type ExportInput } from './types.ts';

/** `data` as a tensor of `type` stores it, read back. */
export function storedValues(data: Float32Array, type: GgmlType): Float32Array {
  if (type === 'F32') return data.slice();
  if (type === 'F16') return data.map((v) => f16BitsToF32(f32ToF16Bits(v)));
  if (!isBlockType(type)) throw new Error(`storedValues: no codec for ${type}`);
  const codec = BLOCK_CODECS[type];
  return codec.dequantize(codec.quantize(data), data.length);
}

export interface StoredWeights {
  /** The parameters as the file stores them, in x.params's layout (vocabulary padding rows kept as they were). */
  params: Float32Array;
  /** Size of model.gguf in bytes. */
  bytes: number;
  /** Tensors per storage type, e.g. { F32: 5, Q4_K: 10, Q6_K: 4 }. */
  types: Record<string, number>;
}

export function storedWeights(x: ExportInput, dtype: GgufDtype): StoredWeights {
  const v = exportView(x);
  const file = ggufFile(x, { dtype });
  const hf = toHfTensors(v.config, v.params);
  // The model's tensors come first, in slab order; rope_freqs.weight (llama3 scaling) is derived from the config.
  const fileTensors = file.tensors.filter((t) => t.name !== 'rope_freqs.weight');
  if (hf.length !== fileTensors.length) throw new Error(`storedWeights: ${hf.length} tensors, the GGUF has ${fileTensors.length}`);
  const stored = v.params.slice();
  const types: Record<string, number> = {};
  hf.forEach((t, k) => {
    const type = fileTensors[k]!.type;
    types[type] = (types[type] ?? 0) + 1;
    const at = (t.data.byteOffset - v.params.byteOffset) / 4;
    stored.set(storedValues(t.data, type), at);
  });
  // Back into the padded layout when the export view dropped vocabulary padding rows.
  let params = stored;
  if (v !== x) {
    params = x.params.slice();
    const from = paramLayout(v.config), to = paramLayout(x.config);
    for (const e of from.entries) params.set(stored.subarray(e.offset, e.offset + e.size), to.byName.get(e.name)!.offset);
  }
  return { params, bytes: ggufLayout(file).totalBytes, types };
}
