// Byte-level BPE tokenizer (GPT-2 style), trained in the browser on the user's dataset and exported as HF
// `tokenizer.json` + `tokenizer_config.json`. Entry point of src/tokenizer:
//   trainBpe(texts, { vocabSize, specialTokens }) → BpeTokenizer          (train.ts does the training)
//   tok.encode(text) / tok.decode(ids)                                      (byte-exact round trip)
//   tok.toJSON(), tok.tokenizerConfigJson({...}), BpeTokenizer.fromJSON(obj) (hf-json.ts does the formats)
//
// Encoding = HF tokenizers' pipeline for this configuration: cut out added/special tokens (leftmost, longest),
// pre-tokenize each remaining piece with the GPT-2 regex, map each pre-token's UTF-8 bytes to byte symbols, then
// apply merges lowest rank first (leftmost among equal ranks), with a per-pre-token cache.
// Decoding = concatenate each id's bytes (an added token's bytes are its content's UTF-8) and decode UTF-8 once, so
// any sequence of Unicode scalar values round-trips exactly. Lone surrogates are not scalar values: like every
// UTF-8 tokenizer they come back as U+FFFD.

import { AddedTokenSplitter, BYTE_TO_UNICODE, bytesToSymbols, preTokenize, symbolsToBytes, utf8Bytes, utf8Text } from './byte-level.ts';
import {
  parseTokenizerJson,
  writeTokenizerConfig,
  writeTokenizerJson,
  type BpeModelData,
  type HfTokenizerJson,
  type TokenizerConfigOptions,
} from './hf-json.ts';
import { trainBpeModel, type BpeTrainOptions } from './train.ts';
import type { TextTokenizer } from './types.ts';

export type { BpeModelData, HfTokenizerJson, TokenizerConfigOptions } from './hf-json.ts';
export type { BpeTrainOptions, BpeTrainProgress } from './train.ts';
export { BYTE_SYMBOLS, BYTE_TO_UNICODE, GPT2_PATTERN_SOURCE, preTokenize } from './byte-level.ts';

/** Rank and position packed into one double for the encode heap: rank·2^29 + pos (rank < 2^24, pos < 2^29). */
const POS_BASE = 2 ** 29;
const PAIR_BASE = 2 ** 24;
/** Pre-token cache size; cleared when full (simple and bounded). */
const CACHE_LIMIT = 65_536;

/** Trains a byte-level BPE tokenizer on texts; see train.ts for the algorithm and the tie-break rule. */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): BpeTokenizer {
  return new BpeTokenizer(trainBpeModel(texts, opts));
}

export class BpeTokenizer implements TextTokenizer {
  readonly kind = 'bpe' as const;
  /** Our post-processor adds nothing around a text. */
  readonly prefixIds: readonly number[] = [];
  private readonly model: BpeModelData;
  private readonly idOf = new Map<string, number>();
  /** id → the bytes it decodes to (undefined for holes in a foreign vocab). */
  private readonly bytesOf: Array<Uint8Array | undefined>;
  /** byte → id of its byte symbol. */
  private readonly byteId = new Int32Array(256);
  /** pair key (a·2^24 + b) → merge rank; mergeResult[rank] = id of the merged token. */
  private readonly rankOf = new Map<number, number>();
  private readonly mergeResult: Int32Array;
  private readonly splitter: AddedTokenSplitter;
  private readonly cache = new Map<string, number[]>();
  private readonly addedIds: Set<number>;

  constructor(model: BpeModelData) {
    this.model = model;
    const added = new Map(model.addedTokens.map((t) => [t.id, t]));
    this.addedIds = new Set(added.keys());
    this.bytesOf = model.tokens.map((t, id) => {
      if (t === undefined) return undefined;
      const a = added.get(id);
      const bytes = a ? utf8Bytes(a.content) : symbolsToBytes(t);
      if (bytes === null) throw new Error(`BpeTokenizer: token ${id} "${t}" is not a byte-level string`);
      return bytes;
    });
    // Ordinary tokens first, then added tokens (which win if a content equals a byte-level string).
    model.tokens.forEach((t, id) => {
      if (t !== undefined && !added.has(id)) this.idOf.set(t, id);
    });
    this.byteId.fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = this.idOf.get(BYTE_TO_UNICODE[b]!);
      if (id === undefined) throw new Error(`BpeTokenizer: no token for byte 0x${b.toString(16).padStart(2, '0')}`);
      this.byteId[b] = id;
    }
    for (const t of model.addedTokens) this.idOf.set(t.content, t.id);
    this.mergeResult = new Int32Array(model.merges.length);
    model.merges.forEach(([a, b], rank) => {
      const merged = this.idOf.get(`${model.tokens[a]}${model.tokens[b]}`);
      if (merged === undefined || added.has(a) || added.has(b)) {
        throw new Error(`BpeTokenizer: merge ${rank} (${a}, ${b}) does not make an ordinary token`);
      }
      const key = a * PAIR_BASE + b;
      if (!this.rankOf.has(key)) this.rankOf.set(key, rank); // a repeated merge keeps its first (lowest) rank
      this.mergeResult[rank] = merged;
    });
    this.splitter = new AddedTokenSplitter(model.addedTokens);
  }

  /** Number of ids (highest id + 1), special tokens included. */
  get vocabSize(): number {
    return this.model.tokens.length;
  }

  /** Merges in rank order as token-id pairs. */
  get merges(): ReadonlyArray<readonly [number, number]> {
    return this.model.merges;
  }

  /** Added tokens with special: true, in id order of the file. */
  get specialTokens(): string[] {
    return this.model.addedTokens.filter((t) => t.special).map((t) => t.content);
  }

  /** Byte-level token string (as in vocab.json, e.g. "Ġthe") or an added token's content → id. */
  tokenToId(token: string): number | undefined {
    return this.idOf.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.model.tokens[id];
  }

  /** The bytes an id stands for (what decode concatenates). */
  idToBytes(id: number): Uint8Array | undefined {
    return this.bytesOf[id];
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const section of this.splitter.split(text)) {
      if (section.id >= 0) out.push(section.id);
      else this.encodeOrdinary(section.text, out);
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const bytes = this.bytesOf[ids[i]!];
      if (bytes === undefined) throw new RangeError(`BpeTokenizer.decode: unknown id ${ids[i]} at position ${i}`);
      n += bytes.length;
    }
    const all = new Uint8Array(n);
    for (let i = 0, off = 0; i < ids.length; i++) {
      const bytes = this.bytesOf[ids[i]!]!;
      all.set(bytes, off);
      off += bytes.length;
    }
    return utf8Text(all);
  }

  /** HF `tokenizer.json` object (JSON.stringify it to write the file). */
  toJSON(): HfTokenizerJson {
    return writeTokenizerJson(this.model);
  }

  /** HF `tokenizer_config.json` object; bos/eos/pad must be added tokens of this tokenizer. */
  tokenizerConfigJson(opts: TokenizerConfigOptions): Record<string, unknown> {
    return writeTokenizerConfig(this.model, opts);
  }

  /** Reads a `tokenizer.json` object (ours or HF's); throws naming the field of anything unsupported. */
  static fromJSON(json: unknown): BpeTokenizer {
    return new BpeTokenizer(parseTokenizerJson(json));
  }

  // -------------------------------------------------------------------------------------------------------------

  private encodeOrdinary(text: string, out: number[]): void {
    if (this.model.addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
    const words = this.model.useRegex ? preTokenize(text) : [text];
    for (const word of words) {
      let ids = this.cache.get(word);
      if (ids === undefined) {
        ids = this.encodeWord(word);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(word, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
  }

  /** One pre-token → ids: byte symbols, then merges lowest rank first, leftmost first among equal ranks. */
  private encodeWord(word: string): number[] {
    const bytes = utf8Bytes(word);
    const n = bytes.length;
    if (n >= POS_BASE) throw new Error(`BpeTokenizer.encode: a pre-token of ${n} bytes is too long`);
    const sym = new Int32Array(n);
    for (let i = 0; i < n; i++) sym[i] = this.byteId[bytes[i]!]!;
    if (this.model.ignoreMerges) {
      const whole = this.idOf.get(bytesToSymbols(bytes));
      if (whole !== undefined && !this.addedIds.has(whole)) return [whole];
    }
    if (n < 2) return Array.from(sym);
    // Doubly linked list over positions; a dead position has sym −1. next === n means "no next".
    const prev = new Int32Array(n), next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    const heap: number[] = []; // min-heap of rank·2^29 + pos
    const rank = (i: number, j: number): number => this.rankOf.get(sym[i]! * PAIR_BASE + sym[j]!) ?? -1;
    for (let i = 0; i + 1 < n; i++) {
      const r = rank(i, i + 1);
      if (r >= 0) heapPush(heap, r * POS_BASE + i);
    }
    while (heap.length > 0) {
      const e = heapPop(heap);
      const r = Math.floor(e / POS_BASE), i = e - r * POS_BASE;
      const j = next[i]!;
      if (sym[i]! < 0 || j >= n || rank(i, j) !== r) continue; // stale entry
      sym[i] = this.mergeResult[r]!;
      sym[j] = -1;
      const k = next[j]!;
      next[i] = k;
      if (k < n) prev[k] = i;
      const p = prev[i]!;
      if (p >= 0) {
        const rp = rank(p, i);
        if (rp >= 0) heapPush(heap, rp * POS_BASE + p);
      }
      if (k < n) {
        const rk = rank(i, k);
        if (rk >= 0) heapPush(heap, rk * POS_BASE + i);
      }
    }
    const ids: number[] = [];
    for (let i = 0; i < n; i = next[i]!) ids.push(sym[i]!);
    return ids;
  }

}

function heapPush(h: number[], v: number): void {
  h.push(v);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]! <= v) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  const n = h.length;
  if (n > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const c = l + 1 < n && h[l + 1]! < h[l]! ? l + 1 : l;
      if (h[c]! >= last) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
  return top;
}
