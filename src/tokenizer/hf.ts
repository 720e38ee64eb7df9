// HfTokenizer: any `tokenizer.json` (+ `tokenizer_config.json`) that transformers.js reads, encoded and decoded by
// transformers.js's own tokenizer library (@huggingface/tokenizers, the code behind its PreTrainedTokenizer): the
// Split pre-tokenizers of Llama-3 and Qwen, Metaspace / SentencePiece-style BPE with byte fallback (Gemma),
// normalizers (NFC, Replace, Prepend), ignore_merges, ... — every id the same as HF `tokenizers` gives
// (tests/unit/tokenizer-foreign.test.ts fuzzes that against transformers and transformers.js). Our own BPE stays
// for training a new vocabulary; loadTokenizer picks it when it reads a file, this class otherwise.
// The files travel unchanged: sourceBytes is the tokenizer.json file it was read from (loadTokenizerFile; exports
// write those bytes), toJSON() its content, tokenizerConfigJson() its tokenizer_config.json with the fields an export
// sets (special tokens, model_max_length, chat_template).
import { Tokenizer as HfCore } from '@huggingface/tokenizers';
import { BpeTokenizer } from './bpe.ts';
import type { NamedSpecialTokens, TextTokenizer, TokenizerConfigOptions } from './types.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface HfAddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
}

/** A token field of tokenizer_config.json: a string, an AddedToken object {content}, or nothing. */
function tokenField(cfg: Record<string, unknown>, key: string): string | null {
  const v = cfg[key];
  if (typeof v === 'string' && v !== '') return v;
  if (isObject(v) && typeof v.content === 'string' && v.content !== '') return v.content;
  return null;
}

/** The template of a chat_template field: a string, or the 'default' of a list of {name, template}. */
function templateField(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const d = v.find((t) => isObject(t) && t.name === 'default');
    if (isObject(d) && typeof d.template === 'string') return d.template;
  }
  return undefined;
}

export class HfTokenizer implements TextTokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly specialTokens: string[];
  readonly prefixIds: readonly number[];
  readonly namedSpecial: NamedSpecialTokens;
  readonly chatTemplate?: string;
  /** The added tokens of tokenizer.json, in file order. */
  readonly addedTokens: readonly HfAddedTokenInfo[];
  /** The tokenizer.json file `json` was parsed from, when it came from one: exports copy it byte for byte. */
  readonly sourceBytes?: Uint8Array;
  readonly #core: HfCore;
  readonly #json: Record<string, unknown>;
  readonly #config: Record<string, unknown>;

  /**
   * `json` = tokenizer.json, `config` = tokenizer_config.json (optional), `sourceBytes` = the file `json` was parsed
   * from (optional); throws naming what it cannot read.
   */
  constructor(json: unknown, config: unknown = {}, where = 'tokenizer.json', sourceBytes?: Uint8Array) {
    if (!isObject(json)) throw new Error(`${where}: must be a JSON object`);
    if (!isObject(config)) throw new Error(`${where}: tokenizer_config.json must be a JSON object`);
    if (!isObject(json.model)) throw new Error(`${where}: has no "model" object`);
    try {
      this.#core = new HfCore(json, config);
    } catch (e) {
      throw new Error(`${where}: transformers.js's tokenizer cannot read it: ${(e as Error)?.message ?? String(e)}`);
    }
    this.#json = json;
    this.#config = config;
    if (sourceBytes) this.sourceBytes = sourceBytes;
    let max = -1;
    for (const id of this.#core.get_vocab(true).values()) if (id > max) max = id;
    if (max < 0) throw new Error(`${where}: the vocabulary is empty`);
    this.vocabSize = max + 1;
    const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
    this.addedTokens = added.filter(isObject).map((t) => ({ id: Number(t.id), content: String(t.content), special: t.special === true }));
    this.specialTokens = this.addedTokens.filter((t) => t.special).map((t) => t.content);
    const named = (key: string): string | null => {
      const t = tokenField(config, key);
      return t !== null && this.tokenToId(t) !== undefined ? t : null;
    };
    this.namedSpecial = { bos: named('bos_token'), eos: named('eos_token'), pad: named('pad_token'), unk: named('unk_token') };
    const template = templateField(config.chat_template);
    if (template !== undefined) this.chatTemplate = template;
    // What the post-processor adds before a text (BOS of Llama/Gemma-style templates).
    const plain = this.#core.encode('a', { add_special_tokens: false }).ids;
    const full = this.#core.encode('a', { add_special_tokens: true }).ids;
    let at = 0;
    while (at + plain.length <= full.length && plain.some((id, i) => full[at + i] !== id)) at++;
    this.prefixIds = Object.freeze(at + plain.length <= full.length ? full.slice(0, at) : []);
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError('HfTokenizer.encode: text must be a string');
    if (text === '') return [];
    return this.#core.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.#core.id_to_token(id) === undefined) {
        throw new RangeError(`HfTokenizer.decode: unknown id ${id} at position ${i}`);
      }
    });
    if (list.length === 0) return '';
    return this.#core.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.#core.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#core.id_to_token(id);
  }

  /** The tokenizer.json it was made from (the same object: do not mutate it). */
  toJSON(): Record<string, unknown> {
    return this.#json;
  }

  /** The tokenizer_config.json it was made from (the same object: do not mutate it). */
  get config(): Readonly<Record<string, unknown>> {
    return this.#config;
  }

  /** Its tokenizer_config.json with the fields an export sets; everything else (class, flags, added tokens) kept. */
  tokenizerConfigJson(o: TokenizerConfigOptions): Record<string, unknown> {
    if (!Number.isInteger(o.modelMaxLength) || o.modelMaxLength < 1) {
      throw new Error(`tokenizerConfigJson: modelMaxLength must be a positive integer, got ${o.modelMaxLength}`);
    }
    const out: Record<string, unknown> = { ...this.#config };
    out.tokenizer_class ??= 'PreTrainedTokenizerFast';
    const fields: [string, string | null | undefined][] = [['bos_token', o.bos], ['eos_token', o.eos], ['pad_token', o.pad], ['unk_token', o.unk]];
    for (const [key, v] of fields) {
      if (v === undefined) continue;
      if (v !== null && this.tokenToId(v) === undefined) throw new Error(`tokenizerConfigJson: ${key} "${v}" is not a token of this tokenizer`);
      out[key] = v;
    }
    out.model_max_length = o.modelMaxLength;
    if (o.chatTemplate !== undefined) out.chat_template = o.chatTemplate;
    return out;
  }
}

/**
 * The tokenizer of a `tokenizer.json` (+ `tokenizer_config.json`): our BpeTokenizer when it reads the file (our own
 * exports, plain byte-level BPE), else transformers.js's (HfTokenizer, keeping `sourceBytes`, the file `json` was
 * parsed from, when given). Throws only when neither reads it.
 */
export function loadTokenizer(json: unknown, config?: unknown, where = 'tokenizer.json', sourceBytes?: Uint8Array): TextTokenizer {
  let ours: Error;
  try {
    return BpeTokenizer.fromJSON(json);
  } catch (e) {
    ours = e as Error;
  }
  try {
    return new HfTokenizer(json, config ?? {}, where, sourceBytes);
  } catch (e) {
    throw new Error(`${(e as Error).message} (our BPE reader: ${ours.message})`);
  }
}

/**
 * loadTokenizer on the bytes of a tokenizer.json file: a family's tokenizer (HfTokenizer) keeps them as its
 * sourceBytes, so every export writes the file exactly as it was read.
 */
export function loadTokenizerFile(bytes: Uint8Array, config?: unknown, where = 'tokenizer.json'): TextTokenizer {
  return loadTokenizer(parseJsonFile(bytes, where), config, where, bytes);
}

/** A JSON file's value (strict UTF-8); errors name the file (`where`). */
export function parseJsonFile(bytes: Uint8Array, where: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${where}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

/** True when two tokenizers are the same vocabulary and rules (their tokenizer.json contents are equal). */
export function sameTokenizer(a: TextTokenizer, b: TextTokenizer): boolean {
  if (a === b) return true;
  if (a.vocabSize !== b.vocabSize) return false;
  return JSON.stringify(a.toJSON()) === JSON.stringify(b.toJSON());
}
