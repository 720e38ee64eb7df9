// The Hugging Face file formats for a byte-level BPE tokenizer: writing and reading `tokenizer.json` (the
// `tokenizers` library's serialization, read by transformers / transformers.js) and writing
// `tokenizer_config.json`. Reading is strict: any feature BpeTokenizer does not implement is rejected with an
// error naming the field, instead of silently encoding differently from HF.

import { BYTE_TO_UNICODE, symbolsToBytes } from './byte-level.ts';

export interface AddedTokenData {
  id: number;
  content: string;
  special: boolean;
}

/** Everything that defines a byte-level BPE tokenizer, by id (the in-memory form shared by trainer and files). */
export interface BpeModelData {
  /** id → byte-level token string (or the added token's content); holes allowed in files written by others. */
  tokens: Array<string | undefined>;
  /** Merges in rank order, as pairs of token ids. */
  merges: Array<readonly [number, number]>;
  addedTokens: AddedTokenData[];
  /** Pre-tokenizer options (ByteLevel): a space is prepended to text that does not start with one. */
  addPrefixSpace: boolean;
  /** Pre-tokenizer options (ByteLevel): split with the GPT-2 regex (else each text is one word). */
  useRegex: boolean;
  /** Model option: a word that is itself in the vocab is emitted whole, without merges. */
  ignoreMerges: boolean;
}

export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The subset of `tokenizer.json` we write (field order as HF writes it). */
export interface HfTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

function hfAddedToken(t: AddedTokenData): HfAddedToken {
  return { id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special };
}

/**
 * model → `tokenizer.json`. Merges are written as "a b" strings: byte-level tokens never contain a raw space
 * (it is "Ġ"), and every version of tokenizers / transformers.js reads this form (the [a, b] form needs ≥ 0.20).
 */
export function writeTokenizerJson(m: BpeModelData): HfTokenizerJson {
  const vocab: Record<string, number> = {};
  m.tokens.forEach((t, id) => {
    if (t !== undefined) vocab[t] = id;
  });
  const merges = m.merges.map(([a, b]) => `${m.tokens[a]} ${m.tokens[b]}`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: m.addPrefixSpace, trim_offsets: false, use_regex: m.useRegex } as const;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: m.addedTokens.map(hfAddedToken),
    normalizer: null,
    pre_tokenizer: { ...byteLevel, trim_offsets: true },
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: { ...byteLevel, trim_offsets: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: m.ignoreMerges,
      vocab,
      merges,
    },
  };
}

export interface TokenizerConfigOptions {
  bos?: string | null;
  eos?: string | null;
  pad?: string | null;
  unk?: string | null;
  modelMaxLength: number;
  chatTemplate?: string;
}

/** `tokenizer_config.json` for transformers' PreTrainedTokenizerFast; named tokens must be added tokens. */
export function writeTokenizerConfig(m: BpeModelData, o: TokenizerConfigOptions): Record<string, unknown> {
  const byContent = new Map(m.addedTokens.map((t) => [t.content, t]));
  const pick = (field: string, v: string | null | undefined): string | null => {
    if (v === undefined || v === null) return null;
    if (!byContent.has(v)) throw new Error(`tokenizerConfigJson: ${field} "${v}" is not an added/special token`);
    return v;
  };
  if (!Number.isInteger(o.modelMaxLength) || o.modelMaxLength < 1) {
    throw new Error(`tokenizerConfigJson: modelMaxLength must be a positive integer, got ${o.modelMaxLength}`);
  }
  const decoder: Record<string, Omit<HfAddedToken, 'id'>> = {};
  for (const t of m.addedTokens) {
    const { content, single_word, lstrip, rstrip, normalized, special } = hfAddedToken(t);
    decoder[String(t.id)] = { content, lstrip, normalized, rstrip, single_word, special };
  }
  const config: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: decoder,
    bos_token: pick('bos', o.bos),
    eos_token: pick('eos', o.eos),
    pad_token: pick('pad', o.pad),
    unk_token: pick('unk', o.unk),
    model_max_length: o.modelMaxLength,
    clean_up_tokenization_spaces: false, // else decode() "cleans" spaces before punctuation: no round trip
  };
  if (o.chatTemplate !== undefined) config.chat_template = o.chatTemplate;
  return config;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

function fail(field: string, why: string): never {
  throw new Error(`tokenizer.json: ${field} ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  return isObject(v) && typeof v.type === 'string' ? `"${v.type}"` : JSON.stringify(v);
}

/** Checks a ByteLevel component; returns its options. */
function byteLevelOptions(field: string, v: unknown): { addPrefixSpace: boolean; useRegex: boolean } {
  if (!isObject(v) || v.type !== 'ByteLevel') fail(field, `of type ${typeOf(v)} is not supported (only "ByteLevel")`);
  const bool = (name: string, dflt: boolean): boolean => {
    const x = v[name];
    if (x === undefined || x === null) return dflt;
    if (typeof x !== 'boolean') fail(`${field}.${name}`, `must be a boolean, got ${JSON.stringify(x)}`);
    return x;
  };
  return { addPrefixSpace: bool('add_prefix_space', false), useRegex: bool('use_regex', true) };
}

function absentOrNull(obj: Record<string, unknown>, field: string, path: string): void {
  const v = obj[field];
  if (v !== undefined && v !== null) fail(path, `= ${JSON.stringify(v)} is not supported (only null)`);
}

/** `tokenizer.json` (ours or HF's) → model; throws naming the first unsupported field. */
export function parseTokenizerJson(json: unknown): BpeModelData {
  if (!isObject(json)) fail('(root)', 'must be a JSON object');
  absentOrNull(json, 'normalizer', 'normalizer');
  absentOrNull(json, 'truncation', 'truncation');
  absentOrNull(json, 'padding', 'padding');
  const pre = byteLevelOptions('pre_tokenizer', json.pre_tokenizer);
  byteLevelOptions('decoder', json.decoder);
  if (json.post_processor !== undefined && json.post_processor !== null) byteLevelOptions('post_processor', json.post_processor);

  const model = json.model;
  if (!isObject(model)) fail('model', 'must be an object');
  if (model.type !== undefined && model.type !== 'BPE') fail('model.type', `${JSON.stringify(model.type)} is not supported (only "BPE")`);
  if (model.byte_fallback === true) fail('model.byte_fallback', '= true is not supported');
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
    fail('model.dropout', `= ${JSON.stringify(model.dropout)} is not supported (only null)`);
  }
  for (const f of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    const v = model[f];
    if (v !== undefined && v !== null && v !== '') fail(`model.${f}`, `= ${JSON.stringify(v)} is not supported`);
  }
  if (model.ignore_merges !== undefined && typeof model.ignore_merges !== 'boolean') {
    fail('model.ignore_merges', 'must be a boolean');
  }

  // Vocab and added tokens → id table.
  if (!isObject(model.vocab)) fail('model.vocab', 'must be an object of token → id');
  const tokens: Array<string | undefined> = [];
  const idOf = new Map<string, number>();
  const place = (field: string, content: string, id: unknown): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 2 ** 24) fail(field, `has invalid id ${JSON.stringify(id)}`);
    const prev = tokens[id];
    if (prev !== undefined && prev !== content) fail(field, `gives id ${id} to "${content}" but it already is "${prev}"`);
    const prevId = idOf.get(content);
    if (prevId !== undefined && prevId !== id) fail(field, `gives "${content}" id ${id} but it already has id ${prevId}`);
    while (tokens.length <= id) tokens.push(undefined);
    tokens[id] = content;
    idOf.set(content, id);
  };
  for (const [content, id] of Object.entries(model.vocab)) place(`model.vocab["${content}"]`, content, id);

  const addedTokens: AddedTokenData[] = [];
  const rawAdded = json.added_tokens ?? [];
  if (!Array.isArray(rawAdded)) fail('added_tokens', 'must be an array');
  rawAdded.forEach((t: unknown, i: number) => {
    const field = `added_tokens[${i}]`;
    if (!isObject(t) || typeof t.content !== 'string' || t.content.length === 0) fail(field, 'must have a non-empty "content"');
    for (const flag of ['single_word', 'lstrip', 'rstrip']) {
      if (t[flag] === true) fail(`${field}.${flag}`, '= true is not supported');
    }
    place(field, t.content, t.id);
    addedTokens.push({ id: t.id as number, content: t.content, special: t.special === true });
  });
  const added = new Set(addedTokens.map((t) => t.id));

  // Every ordinary token must be a byte-level string, and all 256 byte symbols must exist.
  tokens.forEach((t, id) => {
    if (t !== undefined && !added.has(id) && symbolsToBytes(t) === null) {
      fail(`model.vocab["${t}"]`, `(id ${id}) is not a byte-level token (chars outside the 256 byte symbols)`);
    }
  });
  BYTE_TO_UNICODE.forEach((ch, b) => {
    if (!idOf.has(ch)) fail('model.vocab', `lacks the byte-level symbol "${ch}" for byte 0x${b.toString(16).padStart(2, '0')}`);
  });

  // Merges: "a b" strings (tokenizers < 0.20) or [a, b] pairs; both halves and their concatenation in the vocab.
  if (!Array.isArray(model.merges)) fail('model.merges', 'must be an array');
  const merges: Array<readonly [number, number]> = model.merges.map((m: unknown, i: number) => {
    const field = `model.merges[${i}]`;
    let pair: unknown[];
    if (typeof m === 'string') pair = m.split(' ');
    else if (Array.isArray(m)) pair = m;
    else fail(field, `must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
    const [a, b] = pair;
    if (pair.length !== 2 || typeof a !== 'string' || typeof b !== 'string') fail(field, `must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
    const ia = idOf.get(a), ib = idOf.get(b);
    if (ia === undefined || ib === undefined) fail(field, `${JSON.stringify(m)} uses a token that is not in model.vocab`);
    if (!idOf.has(a + b)) fail(field, `${JSON.stringify(m)} makes "${a + b}", which is not in model.vocab`);
    return [ia, ib] as const;
  });

  return {
    tokens,
    merges,
    addedTokens,
    addPrefixSpace: pre.addPrefixSpace,
    useRegex: pre.useRegex,
    ignoreMerges: model.ignore_merges === true,
  };
}
