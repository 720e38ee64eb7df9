// The tokenizer inside a GGUF file (llama.cpp's `tokenizer.ggml.*` keys), for the tokenizer families we export:
//   byte-level BPE → model "gpt2" with tokens, token types and merges, and the pre-tokenizer llama.cpp must apply,
//     named by what the tokenizer.json splits with:
//       ByteLevel with the GPT-2 regex (ours, GPT-2)                      → "gpt-2"
//       Split by Llama-3's regex (\p{N}{1,3}) then ByteLevel              → "llama-bpe"  (Llama-3.x)
//       Split by Qwen2's regex (single \p{N}) then ByteLevel              → "qwen2"      (Qwen2, Qwen2.5, Qwen3)
//       Digits (individual) then ByteLevel with the GPT-2 regex           → "smollm"     (SmolLM/SmolLM2; untested here)
//     llama.cpp's own converter picks the same names by hashing a test string's tokens; anything else is refused
//     instead of being written under a name that splits differently;
//   SentencePiece-style BPE (byte_fallback, "▁" for spaces: Gemma, Llama-2, Mistral) → model "llama": tokens,
//     scores and token types (BYTE for <0xXX>, UNKNOWN, CONTROL, USER_DEFINED, NORMAL). llama.cpp's SentencePiece
//     tokenizer merges the adjacent pair whose joined piece scores highest; score = −(rank of the first merge that
//     makes the piece) reproduces HF's lowest-rank-first merges. add_space_prefix from the normalizer/pre-tokenizer
//     (Prepend "▁" or Metaspace prepend: Llama-2 yes, Gemma-3 no).
// Token texts are the vocabulary strings of tokenizer.json; added tokens keep their content and are CONTROL
// (special) or USER_DEFINED (but see "▁" pieces below); embedding rows beyond the tokenizer are "[PAD<id>]" tokens of type UNUSED.
// Known llama.cpp differences (its behaviour, not the file's): it does not apply a NFC normalizer (Qwen's), so text
// that is not already NFC may split differently; its \p{L}/\p{N} classes are its own tables.
// tests/unit/gguf-tokenizers.test.ts runs fuzzed text through llama.cpp for Qwen3, Llama-3 and Gemma-3.
import type { GgufKv } from './gguf-format.ts';
import { exportView, specialTokens, type ExportInput } from './types.ts';

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const GGUF_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The pre-tokenizer name llama.cpp maps to LLAMA_VOCAB_PRE_TYPE_GPT2 (src/llama-vocab.cpp). */
export const GGUF_PRE_TOKENIZER = 'gpt-2';

const LLAMA3_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/** Split regexes (before a ByteLevel without its own regex) → llama.cpp pre-tokenizer names. */
const SPLIT_PRE: ReadonlyArray<readonly [string, string]> = [[LLAMA3_REGEX, 'llama-bpe'], [QWEN2_REGEX, 'qwen2']];

export type GgufTokenizerFamily = { model: 'gpt2'; pre: string } | { model: 'llama'; pre: 'default'; addSpacePrefix: boolean };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (why: string): never => { throw new Error(`gguf export: ${why}`); };
/** What GGUF cannot carry of a tokenizer, and the formats that carry it (they copy tokenizer.json as it is). */
export const GGUF_TOKENIZER_ALTERNATIVES = 'GGUF cannot carry this tokenizer; the safetensors, onnx and transformers.js formats carry its tokenizer.json unchanged';
const refuse = (why: string): never => fail(`${why}. ${GGUF_TOKENIZER_ALTERNATIVES}`);
const typeOf = (v: unknown): string => (isObject(v) ? String(v.type) : JSON.stringify(v));
/** A component and, for a Sequence, its parts (tokenizers calls them pretokenizers / normalizers / decoders). */
function parts(v: unknown): Json[] {
  if (!isObject(v)) return [];
  if (v.type !== 'Sequence') return [v];
  const list = v.pretokenizers ?? v.normalizers ?? v.decoders ?? [];
  return Array.isArray(list) ? list.filter(isObject) : [];
}
const str = (v: unknown): string | undefined => (isObject(v) && typeof v.String === 'string' ? v.String : undefined);

/** Which GGUF tokenizer a tokenizer.json is; throws naming what llama.cpp cannot express. */
export function ggufTokenizerFamily(json: Json): GgufTokenizerFamily {
  const model = isObject(json.model) ? json.model : refuse('tokenizer.json has no model');
  if (model.type !== undefined && model.type !== 'BPE') refuse(`tokenizer model ${JSON.stringify(model.type)} has no GGUF form here (only BPE)`);
  const decoders = parts(json.decoder);
  const pres = parts(json.pre_tokenizer);
  const norms = parts(json.normalizer);
  if (decoders.some((d) => d.type === 'ByteLevel')) {
    for (const n of norms) if (n.type !== 'NFC') refuse(`normalizer ${typeOf(n)} cannot be expressed in a GGUF "gpt2" vocabulary`);
    const byteLevel = pres.find((p) => p.type === 'ByteLevel') ?? refuse(`pre_tokenizer ${typeOf(json.pre_tokenizer)} has no ByteLevel step`);
    if (byteLevel.add_prefix_space === true) refuse('tokenizer option add_prefix_space = true cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
    const rest = pres.filter((p) => p !== byteLevel);
    if (rest.length === 0) {
      if (byteLevel.use_regex === false) refuse('tokenizer option use_regex = false cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
      if (model.ignore_merges === true) refuse('tokenizer option ignore_merges = true cannot be expressed with the GGUF "gpt-2" pre-tokenizer');
      return { model: 'gpt2', pre: GGUF_PRE_TOKENIZER };
    }
    const [first] = rest;
    if (rest.length === 1 && first!.type === 'Digits' && first!.individual_digits === true && byteLevel.use_regex !== false) return { model: 'gpt2', pre: 'smollm' };
    if (rest.length === 1 && first!.type === 'Split' && byteLevel.use_regex === false && first!.behavior === 'Isolated' && first!.invert !== true) {
      const regex = isObject(first!.pattern) ? first!.pattern.Regex : undefined;
      const hit = SPLIT_PRE.find(([r]) => r === regex);
      if (hit) return { model: 'gpt2', pre: hit[1] };
      refuse(`the pre-tokenizer's Split regex ${JSON.stringify(regex)} is not one llama.cpp has a name for (known: Llama-3's, Qwen2's)`);
    }
    return refuse(`pre_tokenizer ${JSON.stringify(pres.map((p) => p.type))} has no llama.cpp name`);
  }
  const spaceToMeta = (n: Json) => n.type === 'Replace' && str(n.pattern) === ' ' && n.content === '\u2581';
  const sentencePiece = model.byte_fallback === true || decoders.some((d) => d.type === 'ByteFallback' || d.type === 'Metaspace');
  if (sentencePiece) {
    let addSpacePrefix = false;
    for (const n of norms) {
      if (n.type === 'Prepend' && n.prepend === '\u2581') addSpacePrefix = true;
      else if (!spaceToMeta(n)) refuse(`normalizer ${typeOf(n)} cannot be expressed in a GGUF SentencePiece ("llama") vocabulary`);
    }
    for (const p of pres) {
      if (p.type === 'Metaspace') {
        if (p.replacement !== undefined && p.replacement !== '\u2581') refuse('a Metaspace pre-tokenizer with another replacement than "▁" has no GGUF form');
        if (p.prepend_scheme !== 'never' && p.add_prefix_space !== false) addSpacePrefix = true;
      } else if (!(p.type === 'Split' && str(p.pattern) === ' ' && norms.some(spaceToMeta))) {
        // (Gemma's Split on " " runs after the normalizer turned every space into "▁": it never splits.)
        refuse(`pre_tokenizer ${typeOf(p)} cannot be expressed in a GGUF SentencePiece ("llama") vocabulary`);
      }
    }
    return { model: 'llama', pre: 'default', addSpacePrefix };
  }
  return refuse(`tokenizer.json (decoder ${typeOf(json.decoder)}) is neither byte-level nor SentencePiece-style BPE: no GGUF tokenizer for it`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Merges as "a b" strings (byte-level and SentencePiece pieces never hold a raw space). */
function mergeStrings(model: Json): string[] {
  const merges = Array.isArray(model.merges) ? model.merges : [];
  return merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      if (m[0].includes(' ') || m[1].includes(' ')) refuse(`merge ${i} ${JSON.stringify(m)} holds a space: GGUF merges are "a b" strings`);
      return `${m[0]} ${m[1]}`;
    }
    return refuse(`merge ${i} is ${JSON.stringify(m)}, not "a b" or [a, b]`);
  });
}

/** Every tokenizer.ggml.* entry of the export except the chat template, for `x.config.vocabSize` rows. */
export function ggufTokenizerKvs(x: ExportInput): GgufKv[] {
  const V = x.config.vocabSize, tok = x.tokenizer;
  if (tok.vocabSize > V) fail(`the tokenizer has ${tok.vocabSize} tokens, the model only ${V} embeddings`);
  const json = tok.toJSON() as Json;
  const family = ggufTokenizerFamily(json);
  const model = json.model as Json;
  const addedList = Array.isArray(json.added_tokens) ? json.added_tokens.filter(isObject) : [];
  const added = new Map(addedList.map((t) => [Number(t.id), t]));
  const unk = family.model === 'llama' && typeof model.unk_token === 'string' ? tok.tokenToId(model.unk_token) : undefined;
  const merges = mergeStrings(model);
  // SentencePiece scores: −(rank of the first merge making the piece); pieces no merge makes score lowest.
  let scores: number[] | undefined;
  if (family.model === 'llama') {
    const rank = new Map<string, number>();
    merges.forEach((m, r) => {
      const piece = m.replace(' ', '');
      if (!rank.has(piece)) rank.set(piece, r);
    });
    scores = [];
    for (let id = 0; id < V; id++) {
      const t = id < tok.vocabSize ? tok.idToToken(id) : undefined;
      const r = t === undefined ? undefined : rank.get(t);
      scores.push(r === undefined ? -1e9 : -r);
    }
  }
  const tokens: string[] = [], types: number[] = [];
  const seen = new Map<string, number>();
  for (let id = 0; id < V; id++) {
    const t = id < tok.vocabSize ? tok.idToToken(id) : undefined;
    const a = added.get(id);
    const text = t ?? `[PAD${id}]`;
    if (LONE_SURROGATE.test(text)) refuse(`token ${id} ${JSON.stringify(text)} is not valid Unicode (a lone surrogate cannot be written as UTF-8)`);
    const prev = seen.get(text);
    // llama.cpp asserts (aborts the process) when two ids share a text: refuse here instead.
    if (prev !== undefined) refuse(`tokens ${prev} and ${id} are both ${JSON.stringify(text)}; GGUF vocabularies need unique token texts`);
    seen.set(text, id);
    tokens.push(text);
    // (An added SentencePiece piece of "▁"s — Gemma's whitespace runs — is NORMAL: llama.cpp turns "▁" back into
    // spaces only for NORMAL tokens, and the piece is one its merges make anyway.)
    types.push(t === undefined ? GGUF_TOKEN_TYPE.UNUSED
      : a && a.special === true ? GGUF_TOKEN_TYPE.CONTROL
        : a && !(family.model === 'llama' && text.includes('\u2581')) ? GGUF_TOKEN_TYPE.USER_DEFINED
        : id === unk ? GGUF_TOKEN_TYPE.UNKNOWN
          : family.model === 'llama' && /^<0x[0-9A-F]{2}>$/.test(text) ? GGUF_TOKEN_TYPE.BYTE
            : GGUF_TOKEN_TYPE.NORMAL);
  }
  const u32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'uint32', value } });
  const bool = (key: string, value: boolean): GgufKv => ({ key, value: { type: 'bool', value } });
  const kvs: GgufKv[] = [
    { key: 'tokenizer.ggml.model', value: { type: 'string', value: family.model } },
    { key: 'tokenizer.ggml.pre', value: { type: 'string', value: family.pre } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', value: tokens } },
  ];
  if (scores) kvs.push({ key: 'tokenizer.ggml.scores', value: { type: 'array', itemType: 'float32', value: scores } });
  kvs.push({ key: 'tokenizer.ggml.token_type', value: { type: 'array', itemType: 'int32', value: types } });
  if (family.model === 'gpt2') kvs.push({ key: 'tokenizer.ggml.merges', value: { type: 'array', itemType: 'string', value: merges } });
  const s = specialTokens(x);
  if (s.ids.bos !== null) kvs.push(u32('tokenizer.ggml.bos_token_id', s.ids.bos));
  if (s.ids.eos !== null) kvs.push(u32('tokenizer.ggml.eos_token_id', s.ids.eos));
  if (unk !== undefined) kvs.push(u32('tokenizer.ggml.unknown_token_id', unk));
  if (s.ids.pad !== null) kvs.push(u32('tokenizer.ggml.padding_token_id', s.ids.pad));
  // BOS exactly when the tokenizer's post-processor puts it before a text (Llama/Gemma), as HF's encode does.
  kvs.push(bool('tokenizer.ggml.add_bos_token', ggufAddsBos(x)), bool('tokenizer.ggml.add_eos_token', false));
  if (family.model === 'llama') kvs.push(bool('tokenizer.ggml.add_space_prefix', family.addSpacePrefix));
  return kvs;
}

/** tokenizer.ggml.add_bos_token: a BOS exactly when the tokenizer's post-processor puts it before a text (Llama/Gemma),
 *  as HF's encode does — so llama.cpp (and Ollama) add it to every prompt themselves. */
export function ggufAddsBos(input: ExportInput): boolean {
  const x = exportView(input);
  const bos = specialTokens(x).ids.bos;
  return bos !== null && x.tokenizer.prefixIds[0] === bos;
}
