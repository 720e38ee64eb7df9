// GGUF export for llama.cpp / Ollama: a trained student as one `model.gguf` (architecture "llama", "qwen2" or
// "qwen3" after its family — config.ts modelFamily —, F32 or F16, or quantized as llama-quantize would: Q8_0, Q4_0,
// Q4_K_M — which tensor gets which type is gguf-quant.ts),
// with its tokenizer inside (ours: tokenizer.ggml.model "gpt2", pre-tokenizer "gpt-2"; a model family's: gguf-vocab.ts).
//
// Tensors come from toHfTensors (hf-names.ts, the one name/shape table) and are renamed by GGUF_NAME_TABLE below.
// Two layout facts:
//   - GGUF dims are innermost first: an HF [out, in] row-major matrix is written unchanged with dims [in, out].
//   - llama.cpp's llama graph applies RoPE to adjacent pairs (2i, 2i+1) (ROPE_TYPE_NORM); HF's (and our) RoPE
//     rotates (i, i + D/2). So the rows of Q and K are permuted per head, (n_head, 2, D/2) → (n_head, D/2, 2), as
//     llama.cpp's convert_hf_to_gguf.py does for Llama; Q·K scores are unchanged by it, so nothing else moves.
// Tokenizer: gguf-vocab.ts (model "gpt2" with the family's pre-tokenizer name, or SentencePiece-style "llama").
// For our byte-level BPE, llama.cpp's "gpt-2" pre-tokenizer is the GPT-2 regex of src/tokenizer/byte-level.ts minus
// its last alternative `\s+`, which only ever matches what the others leave over — llama.cpp keeps unmatched text
// as its own piece, so the splits are the same (tests/unit/gguf-export.test.ts checks ids against llama.cpp itself).
// Caveats (llama.cpp's behaviour, not the file's): a "gpt2" vocabulary gets bos = eos = 11 unless the file says
// otherwise, so a tokenizer without bos/eos tokens leaves those defaults (our trained tokenizers have <|endoftext|>);
// for "gpt-2" its whole-sequence detokenize applies GPT-2's clean_up_tokenization_spaces (" ?" → "?"), its
// per-token pieces (what generation streams) do not. Ollama's own Go engine, where it runs a llama model itself,
// maps pre names other than "default" (its GPT-2 regex) to llama 3's regex: no one name fits both.
import { toHfTensors, type NamedTensor } from './hf-names.ts';
import { modelFamily, ropeInvFreq } from '../model/config.ts';
import { encodeGguf, type GgmlType, type GgufFile, type GgufKv, type GgufTensor } from './gguf-format.ts';
import { ggufTokenizerKvs } from './gguf-vocab.ts';
import { GGML_QUANTIZATION_VERSION, QUANT_FILE_TYPE, quantTensorTypes, type GgufQuantMix } from './gguf-quant.ts';
import { exportView, type ExportFile, type ExportInput } from './types.ts';

export type GgufDtype = 'F32' | 'F16' | GgufQuantMix;
export const GGUF_DTYPES: readonly GgufDtype[] = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K_M'];

export interface GgufExportOptions {
  /**
   * Storage of the matrices; 1-D tensors (norm gains) stay F32 as llama.cpp's converter keeps them. Default F32.
   * Q8_0, Q4_0, Q4_K_M: llama.cpp's quantization mixes (per-tensor types in gguf-quant.ts).
   */
  dtype?: GgufDtype;
  /** general.name; default 'distill-student'. */
  name?: string;
  /** File path in the export; default 'model.gguf'. */
  path?: string;
}

/** general.file_type (llama_ftype): all F32, mostly F16, or the quantization mix. */
const FILE_TYPE: Record<GgufDtype, number> = { F32: 0, F16: 1, ...QUANT_FILE_TYPE };

export { GGUF_PRE_TOKENIZER, GGUF_TOKEN_TYPE, ggufTokenizerFamily } from './gguf-vocab.ts';

/**
 * HF LlamaForCausalLM name → GGUF name ({i} = layer), and which RoPE permutation the rows get: 'q' (per query
 * head) or 'k' (per key/value head).
 */
export const GGUF_NAME_TABLE: ReadonlyArray<readonly [hf: string, gguf: string, rope?: 'q' | 'k']> = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.layers.{i}.input_layernorm.weight', 'blk.{i}.attn_norm.weight'],
  ['model.layers.{i}.self_attn.q_proj.weight', 'blk.{i}.attn_q.weight', 'q'],
  ['model.layers.{i}.self_attn.k_proj.weight', 'blk.{i}.attn_k.weight', 'k'],
  ['model.layers.{i}.self_attn.v_proj.weight', 'blk.{i}.attn_v.weight'],
  ['model.layers.{i}.self_attn.q_proj.bias', 'blk.{i}.attn_q.bias', 'q'], // Qwen2 (a Llama would permute them like the rows)
  ['model.layers.{i}.self_attn.k_proj.bias', 'blk.{i}.attn_k.bias', 'k'],
  ['model.layers.{i}.self_attn.v_proj.bias', 'blk.{i}.attn_v.bias'],
  ['model.layers.{i}.self_attn.q_norm.weight', 'blk.{i}.attn_q_norm.weight'], // Qwen3
  ['model.layers.{i}.self_attn.k_norm.weight', 'blk.{i}.attn_k_norm.weight'],
  ['model.layers.{i}.self_attn.o_proj.weight', 'blk.{i}.attn_output.weight'],
  ['model.layers.{i}.post_attention_layernorm.weight', 'blk.{i}.ffn_norm.weight'],
  ['model.layers.{i}.mlp.gate_proj.weight', 'blk.{i}.ffn_gate.weight'],
  ['model.layers.{i}.mlp.up_proj.weight', 'blk.{i}.ffn_up.weight'],
  ['model.layers.{i}.mlp.down_proj.weight', 'blk.{i}.ffn_down.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

const TABLE_RE = GGUF_NAME_TABLE.map(([hf, gguf, rope]) => ({
  re: new RegExp(`^${hf.replace(/\./g, '\\.').replace('{i}', '(\\d+)')}$`),
  gguf,
  rope,
}));

/** GGUF name of an HF tensor name and its RoPE permutation kind; throws for a name outside the table. */
export function ggufName(hf: string): { name: string; rope: 'q' | 'k' | undefined } {
  for (const { re, gguf, rope } of TABLE_RE) {
    const m = re.exec(hf);
    if (m) return { name: gguf.replace('{i}', m[1] ?? ''), rope };
  }
  throw new Error(`gguf: no GGUF name for tensor '${hf}'`);
}

/**
 * HF rotate_half row order → llama.cpp adjacent-pair order, per head: row h·D + 2i + s ← row h·D + s·D/2 + i
 * (i < D/2, s ∈ {0, 1}). `w` is row-major (nHead·D, cols).
 */
export function permuteRopeRows(w: Float32Array, nHead: number, headDim: number, cols: number): Float32Array {
  return ropeRows(w, nHead, headDim, cols, false);
}

/** The inverse of permuteRopeRows (GGUF → HF order). */
export function unpermuteRopeRows(w: Float32Array, nHead: number, headDim: number, cols: number): Float32Array {
  return ropeRows(w, nHead, headDim, cols, true);
}

function ropeRows(w: Float32Array, nHead: number, D: number, cols: number, inverse: boolean): Float32Array {
  if (D % 2 !== 0) throw new Error(`gguf: head dim ${D} must be even for RoPE`);
  if (w.length !== nHead * D * cols) throw new Error(`gguf: RoPE permutation of ${w.length} values, expected ${nHead}·${D}·${cols}`);
  const out = new Float32Array(w.length);
  const half = D / 2;
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const hfRow = h * D + s * half + i, ggRow = h * D + 2 * i + s;
        const [src, dst] = inverse ? [ggRow, hfRow] : [hfRow, ggRow];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensors

function checkValues(t: NamedTensor, dtype: GgmlType): void {
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i]!;
    if (!Number.isFinite(v)) throw new Error(`gguf export: tensor '${t.name}' has a non-finite value (${v}) at index ${i}`);
    // 65520 is where f16 rounding reaches infinity (block types keep f16 scales: the same bound, conservatively).
    if (dtype !== 'F32' && Math.abs(v) >= 65520) {
      throw new Error(`gguf export: tensor '${t.name}' value ${v} at index ${i} overflows ${dtype} (max 65504): export as F32`);
    }
  }
}

/**
 * llama.cpp's rope_freqs of llama3 scaling: per frequency j, the factor by which it divides θ^(−2j/D) — the plain
 * inverse frequency over the scaled one (1 for high frequencies, `factor` for low ones, smooth in between).
 */
export function ggufRopeFreqs(c: ExportInput['config']): Float32Array {
  const scaled = ropeInvFreq(c), plain = ropeInvFreq({ headDim: c.headDim, ropeTheta: c.ropeTheta });
  return Float32Array.from(scaled, (f, j) => plain[j]! / f);
}

/**
 * The model's tensors under GGUF names, in slab order — Q/K rows (and biases) permuted for llama.cpp's RoPE in the
 * llama architecture only: qwen2/qwen3 use NEOX RoPE, which rotates (i, i + D/2) like HF — then `rope_freqs.weight`
 * (F32, D/2) when the RoPE has llama3 scaling.
 */
export function ggufTensors(input: ExportInput, dtypeOpt: GgufDtype = 'F32'): GgufTensor[] {
  const x = exportView(input);
  checkGgufFamily(x.config);
  const dtype = checkDtype(dtypeOpt);
  const c = x.config;
  const permute = modelFamily(c) === 'llama';
  const hf = toHfTensors(c, x.params);
  const named = hf.map((t) => ({ ...ggufName(t.name), dims: [...t.shape].reverse() }));
  const types: GgmlType[] = dtype === 'F32' || dtype === 'F16' ? named.map((t) => (t.dims.length >= 2 ? dtype : 'F32')) : quantTensorTypes(named, dtype);
  const out: GgufTensor[] = hf.map((t, k) => {
    const { name, rope } = named[k]!;
    const type = types[k]!;
    checkValues(t, type);
    const cols = t.shape[1] ?? 1;
    const data = !permute ? t.data
      : rope === 'q' ? permuteRopeRows(t.data, c.heads, c.headDim, cols)
        : rope === 'k' ? permuteRopeRows(t.data, c.kvHeads, c.headDim, cols)
          : t.data;
    return { name, dims: [...t.shape].reverse(), type, data };
  });
  if (c.ropeScaling) out.push({ name: 'rope_freqs.weight', dims: [c.headDim / 2], type: 'F32', data: ggufRopeFreqs(c) });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata

/** Every metadata entry of the export, in file order. */
export function ggufMetadata(input: ExportInput, opts: GgufExportOptions = {}): GgufKv[] {
  const x = exportView(input);
  checkGgufFamily(x.config);
  const dtype = checkDtype(opts.dtype);
  const c = x.config;
  const u32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'uint32', value } });
  const f32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'float32', value } });
  const str = (key: string, value: string): GgufKv => ({ key, value: { type: 'string', value } });
  const tokenizer = ggufTokenizerKvs(x);
  const arch = modelFamily(c); // general.architecture: llama, qwen2 or qwen3; the hyperparameters under its prefix
  const kvs: GgufKv[] = [
    str('general.architecture', arch),
    str('general.name', opts.name ?? 'distill-student'),
    u32('general.file_type', FILE_TYPE[dtype]),
    ...(dtype === 'F32' || dtype === 'F16' ? [] : [u32('general.quantization_version', GGML_QUANTIZATION_VERSION)]),
    u32('general.alignment', 32),
    u32(`${arch}.vocab_size`, c.vocabSize),
    u32(`${arch}.context_length`, c.maxSeqLen),
    u32(`${arch}.embedding_length`, c.hidden),
    u32(`${arch}.block_count`, c.layers),
    u32(`${arch}.feed_forward_length`, c.intermediate),
    u32(`${arch}.attention.head_count`, c.heads),
    u32(`${arch}.attention.head_count_kv`, c.kvHeads),
    f32(`${arch}.attention.layer_norm_rms_epsilon`, c.rmsNormEps),
    f32(`${arch}.rope.freq_base`, c.ropeTheta),
    u32(`${arch}.rope.dimension_count`, c.headDim),
  ];
  // llama.cpp's default head size is embedding_length / head_count: say it when ours differs.
  if (c.headDim * c.heads !== c.hidden) kvs.push(u32(`${arch}.attention.key_length`, c.headDim), u32(`${arch}.attention.value_length`, c.headDim));
  kvs.push(...tokenizer);
  // The export's template, else the tokenizer's own (as tokenizer_config.json keeps it in the HF folder).
  const template = x.chatTemplate ?? x.tokenizer.chatTemplate;
  if (template !== undefined) kvs.push(str('tokenizer.chat_template', template));
  return kvs;
}

function checkGgufFamily(c: ExportInput['config']): void {
  // llama.cpp's qwen2 sizes the q/k/v biases by embedding_length: heads·head_dim must equal it.
  if (modelFamily(c) === 'qwen2' && c.heads * c.headDim !== c.hidden) {
    throw new Error(`gguf export: llama.cpp's qwen2 needs heads·head_dim = hidden (got ${c.heads}·${c.headDim} ≠ ${c.hidden}); export it as an HF folder (safetensors)`);
  }
}

function checkDtype(d: unknown): GgufDtype {
  if (d === undefined) return 'F32';
  if (!GGUF_DTYPES.includes(d as GgufDtype)) throw new Error(`gguf export: unsupported dtype ${JSON.stringify(d)} (supported: ${GGUF_DTYPES.map((x) => `"${x}"`).join(', ')})`);
  return d as GgufDtype;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/** The GGUF file's contents (metadata + tensors) before encoding. */
export function ggufFile(x: ExportInput, opts: GgufExportOptions = {}): GgufFile {
  const dtype = checkDtype(opts.dtype);
  const kvs = ggufMetadata(x, opts);
  return { kvs, tensors: ggufTensors(x, dtype), alignment: 32 };
}

/** The bytes of `model.gguf`. */
export function buildGguf(x: ExportInput, opts: GgufExportOptions = {}): Uint8Array {
  return encodeGguf(ggufFile(x, opts));
}

/** One file, `model.gguf` (or opts.path): load it with llama.cpp (`llama-cli -m`), Ollama (`FROM ./model.gguf`). */
export function exportGguf(x: ExportInput, opts: GgufExportOptions = {}): ExportFile[] {
  return [{ path: opts.path ?? 'model.gguf', bytes: buildGguf(x, opts) }];
}
