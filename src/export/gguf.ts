// GGUF export for llama.cpp / Ollama: a trained student as one `model.gguf` (architecture "llama", F32 or F16),
// with its byte-level BPE tokenizer inside (tokenizer.ggml.model "gpt2", pre-tokenizer "gpt-2").
//
// Tensors come from toHfTensors (hf-names.ts, the one name/shape table) and are renamed by GGUF_NAME_TABLE below.
// Two layout facts:
//   - GGUF dims are innermost first: an HF [out, in] row-major matrix is written unchanged with dims [in, out].
//   - llama.cpp's llama graph applies RoPE to adjacent pairs (2i, 2i+1) (ROPE_TYPE_NORM); HF's (and our) RoPE
//     rotates (i, i + D/2). So the rows of Q and K are permuted per head, (n_head, 2, D/2) → (n_head, D/2, 2), as
//     llama.cpp's convert_hf_to_gguf.py does for Llama; Q·K scores are unchanged by it, so nothing else moves.
// Tokenizer: llama.cpp's "gpt-2" pre-tokenizer is the GPT-2 regex of src/tokenizer/byte-level.ts minus its last
// alternative `\s+`, which only ever matches what the others leave over — llama.cpp keeps unmatched text as its own
// piece, so the splits are the same (tests/unit/gguf-export.test.ts checks ids against llama.cpp itself).
// Token texts are the byte-level strings of tokenizer.json; added tokens keep their content and are CONTROL
// (special) or USER_DEFINED; embedding rows beyond the tokenizer are "[PAD<id>]" tokens of type UNUSED.
// Caveats (llama.cpp's behaviour, not the file's): a "gpt2" vocabulary gets bos = eos = 11 unless the file says
// otherwise, so a tokenizer without bos/eos tokens leaves those defaults (our trained tokenizers have <|endoftext|>);
// for "gpt-2" its whole-sequence detokenize applies GPT-2's clean_up_tokenization_spaces (" ?" → "?"), its
// per-token pieces (what generation streams) do not. Ollama's own Go engine, where it runs a llama model itself,
// maps pre names other than "default" (its GPT-2 regex) to llama 3's regex: no one name fits both.
import { toHfTensors, type NamedTensor } from './hf-names.ts';
import { encodeGguf, type GgmlType, type GgufFile, type GgufKv, type GgufTensor } from './gguf-format.ts';
import { specialTokens, type ExportFile, type ExportInput } from './types.ts';

export type GgufDtype = 'F32' | 'F16';

export interface GgufExportOptions {
  /** Storage of the matrices; 1-D tensors (norm gains) stay F32 as llama.cpp's converter keeps them. Default F32. */
  dtype?: GgufDtype;
  /** general.name; default 'distill-student'. */
  name?: string;
  /** File path in the export; default 'model.gguf'. */
  path?: string;
}

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const GGUF_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** general.file_type (llama_ftype): all F32, or mostly F16. */
const FILE_TYPE: Record<GgufDtype, number> = { F32: 0, F16: 1 };

/** The pre-tokenizer name llama.cpp maps to LLAMA_VOCAB_PRE_TYPE_GPT2 (src/llama-vocab.cpp). */
export const GGUF_PRE_TOKENIZER = 'gpt-2';

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
    // 65520 is where f16 rounding reaches infinity.
    if (dtype === 'F16' && Math.abs(v) >= 65520) {
      throw new Error(`gguf export: tensor '${t.name}' value ${v} at index ${i} overflows F16 (max 65504): export as F32`);
    }
  }
}

/** The model's tensors under GGUF names, in slab order, Q/K rows permuted for llama.cpp's RoPE. */
export function ggufTensors(x: ExportInput, dtypeOpt: GgufDtype = 'F32'): GgufTensor[] {
  const dtype = checkDtype(dtypeOpt);
  const c = x.config;
  return toHfTensors(c, x.params).map((t) => {
    const { name, rope } = ggufName(t.name);
    const type: GgmlType = t.shape.length >= 2 ? dtype : 'F32';
    checkValues(t, type);
    const cols = t.shape[1] ?? 1;
    const data = rope === 'q' ? permuteRopeRows(t.data, c.heads, c.headDim, cols)
      : rope === 'k' ? permuteRopeRows(t.data, c.kvHeads, c.headDim, cols)
        : t.data;
    return { name, dims: [...t.shape].reverse(), type, data };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata

interface GgufVocab {
  tokens: string[];
  types: number[];
  merges: string[];
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Token texts and types padded to the embedding's rows, and merges, from the tokenizer (via its tokenizer.json). */
function ggufVocab(x: ExportInput): GgufVocab {
  const V = x.config.vocabSize, tok = x.tokenizer;
  if (tok.vocabSize > V) {
    throw new Error(`gguf export: the tokenizer has ${tok.vocabSize} tokens, the model only ${V} embeddings`);
  }
  const json = tok.toJSON();
  const pre = json.pre_tokenizer;
  if (pre.add_prefix_space) throw new Error('gguf export: tokenizer option add_prefix_space = true cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
  if (!pre.use_regex) throw new Error('gguf export: tokenizer option use_regex = false cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
  if (json.model.ignore_merges) throw new Error('gguf export: tokenizer option ignore_merges = true cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
  const added = new Map(json.added_tokens.map((t) => [t.id, t]));
  const tokens: string[] = [];
  const types: number[] = [];
  const seen = new Map<string, number>();
  for (let id = 0; id < V; id++) {
    const t = id < tok.vocabSize ? tok.idToToken(id) : undefined;
    const a = added.get(id);
    const text = t ?? `[PAD${id}]`;
    if (LONE_SURROGATE.test(text)) throw new Error(`gguf export: token ${id} ${JSON.stringify(text)} is not valid Unicode (a lone surrogate cannot be written as UTF-8)`);
    const prev = seen.get(text);
    if (prev !== undefined) {
      // llama.cpp asserts (aborts the process) when two ids share a text: refuse here instead.
      throw new Error(`gguf export: tokens ${prev} and ${id} are both ${JSON.stringify(text)}; GGUF vocabularies need unique token texts`);
    }
    seen.set(text, id);
    tokens.push(text);
    types.push(t === undefined ? GGUF_TOKEN_TYPE.UNUSED : a ? (a.special ? GGUF_TOKEN_TYPE.CONTROL : GGUF_TOKEN_TYPE.USER_DEFINED) : GGUF_TOKEN_TYPE.NORMAL);
  }
  return { tokens, types, merges: json.model.merges };
}

/** Every metadata entry of the export, in file order. */
export function ggufMetadata(x: ExportInput, opts: GgufExportOptions = {}): GgufKv[] {
  const dtype = checkDtype(opts.dtype);
  const c = x.config;
  const u32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'uint32', value } });
  const f32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'float32', value } });
  const str = (key: string, value: string): GgufKv => ({ key, value: { type: 'string', value } });
  const vocab = ggufVocab(x);
  const s = specialTokens(x);
  const kvs: GgufKv[] = [
    str('general.architecture', 'llama'),
    str('general.name', opts.name ?? 'distill-student'),
    u32('general.file_type', FILE_TYPE[dtype]),
    u32('general.alignment', 32),
    u32('llama.vocab_size', c.vocabSize),
    u32('llama.context_length', c.maxSeqLen),
    u32('llama.embedding_length', c.hidden),
    u32('llama.block_count', c.layers),
    u32('llama.feed_forward_length', c.intermediate),
    u32('llama.attention.head_count', c.heads),
    u32('llama.attention.head_count_kv', c.kvHeads),
    f32('llama.attention.layer_norm_rms_epsilon', c.rmsNormEps),
    f32('llama.rope.freq_base', c.ropeTheta),
    u32('llama.rope.dimension_count', c.headDim),
  ];
  // llama.cpp's default head size is embedding_length / head_count: say it when ours differs.
  if (c.headDim * c.heads !== c.hidden) kvs.push(u32('llama.attention.key_length', c.headDim), u32('llama.attention.value_length', c.headDim));
  kvs.push(
    str('tokenizer.ggml.model', 'gpt2'),
    str('tokenizer.ggml.pre', GGUF_PRE_TOKENIZER),
    { key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', value: vocab.tokens } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'array', itemType: 'int32', value: vocab.types } },
    { key: 'tokenizer.ggml.merges', value: { type: 'array', itemType: 'string', value: vocab.merges } },
  );
  if (s.ids.bos !== null) kvs.push(u32('tokenizer.ggml.bos_token_id', s.ids.bos));
  if (s.ids.eos !== null) kvs.push(u32('tokenizer.ggml.eos_token_id', s.ids.eos));
  if (s.ids.pad !== null) kvs.push(u32('tokenizer.ggml.padding_token_id', s.ids.pad));
  kvs.push(
    { key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: false } },
    { key: 'tokenizer.ggml.add_eos_token', value: { type: 'bool', value: false } },
  );
  if (x.chatTemplate !== undefined) kvs.push(str('tokenizer.chat_template', x.chatTemplate));
  return kvs;
}

function checkDtype(d: unknown): GgufDtype {
  if (d === undefined) return 'F32';
  if (d !== 'F32' && d !== 'F16') throw new Error(`gguf export: unsupported dtype ${JSON.stringify(d)} (supported: "F32", "F16")`);
  return d;
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
