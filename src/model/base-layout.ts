// The frozen base of a LoRA model in fewer bytes (issue #21): the seven linear weights of every layer (q, k, v, o,
// gate, up, down: nearly all of a model's parameters past its embedding) stored as 16-bit pairs in u32 words — bf16
// as the Hub ships them, or f16 — and read by the matmul as they are (bFormat, src/kernels/matmul); the embedding,
// the untied lm_head, norm gains and biases stay f32 (the embedding gather and the classifier read f32). One slab of
// 4-byte words holds both kinds, every tensor at a 64-word (256-byte) offset, so shards (slab-shards.ts) cut it
// between tensors as they cut the f32 slab. With format 'f32' the layout is the model's own (params.ts).
import { packHalf, unpackHalf, halfWords, type HalfFormat } from '../util/half.ts';
import type { ModelConfig } from './config.ts';
import { paramLayout, SLAB_ALIGN_FLOATS } from './params.ts';

export type BaseFormat = 'f32' | HalfFormat;

/** One weight of a frozen base as it is uploaded: f32 values, or packed 16-bit words for a weight held in 16 bits. */
export interface BaseTensor {
  /** Our parameter name ('layers.3.wq'). */
  name: string;
  data: Float32Array | Uint32Array;
}

/** A frozen base: the whole f32 slab, or its tensors one at a time (never the whole model in f32 on the host). */
export type BaseSource = Float32Array | (() => Iterable<BaseTensor>);
export const BASE_FORMATS: readonly BaseFormat[] = ['f32', 'bf16', 'f16'];

/** The weights a 16-bit base stores in 16 bits. */
const HALF_WEIGHT = /^layers\.\d+\.(wq|wk|wv|wo|w_gate|w_up|w_down)$/;

export interface BaseEntry {
  name: string;
  /** Offset and length in 4-byte words. */
  offset: number;
  words: number;
  /** Elements (parameters). */
  size: number;
  /** Stored as 16-bit pairs (the base's format), else f32. */
  half?: HalfFormat;
}

export interface BaseLayout {
  format: BaseFormat;
  entries: BaseEntry[];
  byName: Map<string, BaseEntry>;
  /** Words of the slab, padding included. */
  words: number;
}

export function baseLayout(c: ModelConfig, format: BaseFormat): BaseLayout {
  if (!BASE_FORMATS.includes(format)) throw new Error(`base format must be one of ${BASE_FORMATS.join(', ')}, got '${format}'`);
  const entries: BaseEntry[] = [];
  let offset = 0;
  for (const e of paramLayout(c).entries) {
    const half = format !== 'f32' && HALF_WEIGHT.test(e.name) ? format : undefined;
    const words = half ? halfWords(e.size) : e.size;
    entries.push({ name: e.name, offset, words, size: e.size, ...(half ? { half } : {}) });
    offset += Math.ceil(words / SLAB_ALIGN_FLOATS) * SLAB_ALIGN_FLOATS;
  }
  return { format, entries, byName: new Map(entries.map((e) => [e.name, e])), words: offset };
}

/** The base slab's words for one tensor given in f32 (16-bit tensors rounded to nearest even). */
export function baseTensorWords(e: BaseEntry, values: Float32Array): Float32Array | Uint32Array {
  if (values.length !== e.size) throw new Error(`base tensor ${e.name}: ${values.length} values, expected ${e.size}`);
  return e.half ? packHalf(values, e.half) : values;
}

/** One tensor of the base back in f32, from its words. */
export function baseTensorValues(e: BaseEntry, words: Uint32Array): Float32Array {
  return e.half ? unpackHalf(words, e.size, e.half) : new Float32Array(words.buffer, words.byteOffset, e.size);
}
