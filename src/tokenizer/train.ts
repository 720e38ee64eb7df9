// Byte-level BPE training (the algorithm of HF tokenizers' BpeTrainer, in plain TypeScript for a web worker).
//
// 1. Count pre-token frequencies (special tokens are cut out of the text first and never learned from).
// 2. Each distinct pre-token becomes a "word": its UTF-8 bytes as symbol ids, with its frequency.
// 3. Count adjacent symbol pairs over all words (weighted by frequency) and index pair → words containing it.
// 4. Repeatedly take the most frequent pair from a max-heap, merge it in the words that contain it (in place, left
//    to right) and update only the pair counts around each merge site. No rescan of the corpus per merge.
//
// Ids: special tokens 0..S-1 (in the given order), then the 256 byte symbols in GPT-2's order (BYTE_SYMBOLS: printable
// bytes first, sorted by symbol), then merged tokens in merge order.
// Tie-break (documented, deterministic): among pairs with equal count, the pair (a, b) with the smaller a, then the
// smaller b, wins — i.e. lexicographic order of the pair's token ids, the rule HF tokenizers uses too.
// A merge whose string already is a token would reuse that token's id, as HF does (a guard: with left-to-right
// merging we have not seen two pairs spell the same bytes).
// A merge that would spell a special token's content is skipped so vocab strings stay unique.
//
// Lazy heap invariant: for every live pair the heap holds an entry whose count is ≥ the pair's true count. Counts of
// existing pairs only fall during a merge, except pairs touching the merged token, which are re-pushed with their
// exact count after each merge. A popped entry whose count is stale is re-pushed with the true count.

import { AddedTokenSplitter, BYTE_RANK, BYTE_SYMBOLS, preTokenize, utf8Bytes } from './byte-level.ts';
import type { BpeModelData } from './hf-json.ts';

export type BpeTrainProgress =
  | { phase: 'count'; texts: number; chars: number; words: number }
  | { phase: 'merge'; merges: number; vocabSize: number; targetVocabSize: number };

export interface BpeTrainOptions {
  /** Total number of ids, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Get ids 0..S-1; matched whole in text, never split or merged. */
  specialTokens?: string[];
  /** A pair is only merged if it occurs at least this often (default 2). */
  minFrequency?: number;
  onProgress?: (p: BpeTrainProgress) => void;
}

/** Pair key: a·2^24 + b (exact in a double for ids < 2^24). */
const PAIR_BASE = 2 ** 24;
export const MAX_VOCAB = PAIR_BASE;

/** Max-heap of (count, pairKey): larger count first, then smaller key (= lexicographic (a, b)). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!, k = this.keys[i]!;
    this.counts[i] = this.counts[j]!;
    this.keys[i] = this.keys[j]!;
    this.counts[j] = c;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Top entry into `out` ([count, key]) and removed; false when empty. */
  pop(out: [number, number]): boolean {
    const n = this.keys.length;
    if (n === 0) return false;
    out[0] = this.counts[0]!;
    out[1] = this.keys[0]!;
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    if (n > 1) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      const m = n - 1;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < m && this.above(l, best)) best = l;
        if (r < m && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return true;
  }
}

/** Pre-token → frequency over all texts, special tokens cut out first. */
function countWords(texts: Iterable<string>, specials: string[], opts: BpeTrainOptions): Map<string, number> {
  const freq = new Map<string, number>();
  const splitter = new AddedTokenSplitter(specials.map((content, id) => ({ content, id })));
  let nTexts = 0, chars = 0;
  const addSection = (section: string): void => {
    for (const w of preTokenize(section)) freq.set(w, (freq.get(w) ?? 0) + 1);
  };
  for (const text of texts) {
    if (typeof text !== 'string') throw new TypeError(`trainBpe: texts must be strings, got ${typeof text}`);
    if (specials.length === 0) addSection(text);
    else for (const s of splitter.split(text)) if (s.id < 0) addSection(s.text);
    nTexts++;
    chars += text.length;
    opts.onProgress?.({ phase: 'count', texts: nTexts, chars, words: freq.size });
  }
  return freq;
}

function validateOptions(opts: BpeTrainOptions): { specials: string[]; minFrequency: number } {
  const specials = opts.specialTokens ?? [];
  const minFrequency = opts.minFrequency ?? 2;
  if (new Set(specials).size !== specials.length) throw new Error('trainBpe: specialTokens contains duplicates');
  if (specials.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new Error('trainBpe: specialTokens must be non-empty strings');
  }
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < specials.length + 256 || opts.vocabSize > MAX_VOCAB) {
    throw new Error(
      `trainBpe: vocabSize must be an integer in [${specials.length + 256}, ${MAX_VOCAB}] ` +
        `(special tokens + 256 bytes at least), got ${opts.vocabSize}`,
    );
  }
  if (!Number.isFinite(minFrequency) || minFrequency < 1) {
    throw new Error(`trainBpe: minFrequency must be ≥ 1, got ${minFrequency}`);
  }
  return { specials, minFrequency };
}

/** Trains merges on texts; returns the model (vocab, merges, special tokens) for BpeTokenizer. */
export function trainBpeModel(texts: Iterable<string>, opts: BpeTrainOptions): BpeModelData {
  const { specials, minFrequency } = validateOptions(opts);
  const S = specials.length;
  const tokens: string[] = [...specials, ...BYTE_SYMBOLS];
  const idOfToken = new Map<string, number>();
  for (let i = S; i < tokens.length; i++) idOfToken.set(tokens[i]!, i);
  const specialSet = new Set(specials);
  const merges: Array<[number, number]> = [];
  const result = (): BpeModelData => ({
    tokens,
    merges,
    addedTokens: specials.map((content, id) => ({ id, content, special: true })),
    addPrefixSpace: false,
    useRegex: true,
    ignoreMerges: false,
  });

  // Words: all symbols in one Int32Array; word w occupies data[start[w] .. start[w] + len[w]).
  const wordFreq = countWords(texts, specials, opts);
  let total = 0;
  const encoded: Uint8Array[] = [];
  const freqs: number[] = [];
  for (const [w, f] of wordFreq) {
    const bytes = utf8Bytes(w);
    if (bytes.length < 2) continue; // no pairs: cannot take part in any merge
    encoded.push(bytes);
    freqs.push(f);
    total += bytes.length;
  }
  wordFreq.clear();
  const nWords = encoded.length;
  const data = new Int32Array(total);
  const start = new Int32Array(nWords);
  const len = new Int32Array(nWords);
  const freq = Float64Array.from(freqs);
  for (let w = 0, off = 0; w < nWords; w++) {
    const bytes = encoded[w]!;
    start[w] = off;
    len[w] = bytes.length;
    for (let i = 0; i < bytes.length; i++) data[off + i] = S + BYTE_RANK[bytes[i]!]!;
    off += bytes.length;
  }
  encoded.length = 0;

  // Pair counts and pair → words index (a word may be listed more than once or after losing the pair: checked on use).
  const counts = new Map<number, number>();
  const where = new Map<number, number[]>();
  const note = (key: number, w: number): void => {
    const list = where.get(key);
    if (list === undefined) where.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < nWords; w++) {
    const s = start[w]!, e = s + len[w]!, f = freq[w]!;
    for (let i = s; i + 1 < e; i++) {
      const key = data[i]! * PAIR_BASE + data[i + 1]!;
      counts.set(key, (counts.get(key) ?? 0) + f);
      note(key, w);
    }
  }
  const heap = new PairHeap();
  for (const [key, c] of counts) heap.push(c, key);

  const seen = new Int32Array(nWords).fill(-1);
  const skipped = new Set<number>(); // pairs whose merge would spell a special token
  const top: [number, number] = [0, 0];
  const touched: number[] = [];
  let step = 0;
  while (tokens.length < opts.vocabSize && heap.pop(top)) {
    const [entryCount, key] = top;
    if (skipped.has(key)) continue;
    const count = counts.get(key) ?? 0;
    if (count !== entryCount) {
      if (count > 0) heap.push(count, key);
      continue;
    }
    if (count < minFrequency) break; // the true maximum is below the threshold
    const a = Math.floor(key / PAIR_BASE), b = key - a * PAIR_BASE;
    const str = tokens[a]! + tokens[b]!;
    if (specialSet.has(str)) {
      skipped.add(key);
      continue;
    }
    let c = idOfToken.get(str);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(str);
      idOfToken.set(str, c);
    }
    merges.push([a, b]);
    const words = where.get(key) ?? [];
    where.delete(key);
    counts.delete(key);

    // Merge (a, b) → c in every word that has it, left to right, updating the neighbouring pairs' counts.
    const cBase = c * PAIR_BASE;
    const add = (k: number, f: number): void => {
      const v = (counts.get(k) ?? 0) + f;
      if (v === 0) counts.delete(k);
      else counts.set(k, v);
    };
    touched.length = 0;
    for (const w of words) {
      if (seen[w] === step) continue;
      seen[w] = step;
      const s = start[w]!, e = s + len[w]!, f = freq[w]!;
      let out = s;
      for (let r = s; r < e; ) {
        if (r + 1 < e && data[r] === a && data[r + 1] === b) {
          if (out > s) {
            const p = data[out - 1]!;
            const old = p * PAIR_BASE + a;
            if (old !== key) add(old, -f);
            const nk = p * PAIR_BASE + c;
            add(nk, f);
            note(nk, w);
            touched.push(nk);
          }
          if (r + 2 < e) {
            const q = data[r + 2]!;
            const old = b * PAIR_BASE + q;
            if (old !== key) add(old, -f);
            const nk = cBase + q;
            add(nk, f);
            note(nk, w);
            touched.push(nk);
          }
          data[out++] = c;
          r += 2;
        } else {
          data[out++] = data[r++]!;
        }
      }
      len[w] = out - s;
    }
    // Pairs touching c may have grown (c can be a reused id): push their exact counts.
    touched.sort((x, y) => x - y);
    for (let i = 0; i < touched.length; i++) {
      const k = touched[i]!;
      if (i > 0 && touched[i - 1] === k) continue;
      const v = counts.get(k) ?? 0;
      if (v > 0 && !skipped.has(k)) heap.push(v, k);
    }
    step++;
    if (step % 256 === 0) {
      opts.onProgress?.({ phase: 'merge', merges: step, vocabSize: tokens.length, targetVocabSize: opts.vocabSize });
    }
  }
  opts.onProgress?.({ phase: 'merge', merges: step, vocabSize: tokens.length, targetVocabSize: opts.vocabSize });
  return result();
}
