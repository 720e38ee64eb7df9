// Byte-level BPE building blocks shared by the trainer and the tokenizer (GPT-2 conventions):
// the byte → printable-unicode mapping, the GPT-2 pre-tokenization regex, UTF-8 helpers and the splitter that
// finds special (added) tokens in text. Plain TypeScript: runs in the page, in a web worker and in Node.

/**
 * GPT-2's byte → unicode table: the 188 printable Latin-1 bytes map to themselves, the other 68 bytes (controls,
 * space, 0x7F–0xA0, 0xAD) map to U+0100 onwards in byte order. A byte-level token string is its bytes through this.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + extra++);
  return table;
})();

/**
 * The 256 byte symbols in id order: sorted by char code, i.e. printable bytes first. This is GPT-2's vocab order
 * and the order HF's BpeTrainer gives the ByteLevel alphabet, so ties between pairs break the same way as there.
 */
export const BYTE_SYMBOLS: readonly string[] = [...BYTE_TO_UNICODE].sort();

/** byte → its index in BYTE_SYMBOLS. */
export const BYTE_RANK: Uint8Array = Uint8Array.from(BYTE_TO_UNICODE, (ch) => BYTE_SYMBOLS.indexOf(ch));

/** Inverse of BYTE_TO_UNICODE indexed by char code (0..323); -1 for chars that are not byte symbols. */
const UNICODE_TO_BYTE: Int16Array = (() => {
  const inv = new Int16Array(256 + 68).fill(-1);
  BYTE_TO_UNICODE.forEach((ch, b) => {
    inv[ch.charCodeAt(0)] = b;
  });
  return inv;
})();

/** The GPT-2 pre-tokenization pattern (same text as HF's ByteLevel pre-tokenizer with use_regex: true). */
export const GPT2_PATTERN_SOURCE =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const GPT2_PATTERN = new RegExp(GPT2_PATTERN_SOURCE, 'gu');

/** Splits text into GPT-2 pre-tokens; their concatenation is the input (the last alternative takes any rest). */
export function preTokenize(text: string): string[] {
  // String.prototype.match with a /g regex resets lastIndex itself, so the shared regex is safe (synchronous).
  return text.match(GPT2_PATTERN) ?? [];
}

const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content, not a marker to strip (the same choice as transformers.js).
const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

export function utf8Text(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Bytes → byte-level token string (the form used in vocab and merges). */
export function bytesToSymbols(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_UNICODE[bytes[i]!]!;
  return s;
}

/** Byte-level token string → bytes, or null when a char is not one of the 256 byte symbols. */
export function symbolsToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const b = code < UNICODE_TO_BYTE.length ? UNICODE_TO_BYTE[code]! : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

/** A piece of text: either ordinary text (id -1) or one occurrence of the added token with that id. */
export interface Section {
  text: string;
  id: number;
}

/**
 * Finds added (special) tokens in text, leftmost first and longest at a position (the same rule as HF tokenizers'
 * aho-corasick LeftmostLongest and transformers.js' trie), and cuts the text around them.
 */
export class AddedTokenSplitter {
  private readonly pattern: RegExp | null;
  private readonly idOf: Map<string, number>;

  constructor(tokens: ReadonlyArray<{ content: string; id: number }>) {
    this.idOf = new Map(tokens.map((t) => [t.content, t.id]));
    // Longest first, so that at one position the alternation takes the longest token.
    const contents = [...this.idOf.keys()].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.pattern = contents.length
      ? new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|'), 'g')
      : null;
  }

  split(text: string): Section[] {
    if (this.pattern === null) return text.length ? [{ text, id: -1 }] : [];
    const out: Section[] = [];
    let start = 0;
    this.pattern.lastIndex = 0;
    for (let m = this.pattern.exec(text); m !== null; m = this.pattern.exec(text)) {
      if (m.index > start) out.push({ text: text.slice(start, m.index), id: -1 });
      out.push({ text: m[0], id: this.idOf.get(m[0])! });
      start = m.index + m[0].length;
    }
    if (start < text.length) out.push({ text: text.slice(start), id: -1 });
    return out;
  }
}
