// Byte-level BPE tokenizer (src/tokenizer): training against a hand-checked example and against a naive
// full-rescan trainer (the oracle), byte-exact round trips on fuzzed Unicode, special tokens, the HF file formats,
// and — as the independent check — transformers.js loading our tokenizer.json and producing exactly our ids.
//
// Speed (not asserted here, measured by hand): trainBpe on 3.0 MB of English prose (the .md/.txt files under
// node_modules and /usr/share/doc concatenated, split into lines), vocabSize 8192, two special tokens, on this
// 2-core machine (shared, so timings vary) in Node 20: 0.43–1.0 s per run over nine runs = 3.0–7.0 MB/s, most
// runs ≈ 5 MB/s; counting pre-tokens (the regex) is over half of it. encode of the same text: 6–8 MB/s.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { BpeTokenizer, BYTE_SYMBOLS, BYTE_TO_UNICODE, preTokenize, trainBpe } from '../../src/tokenizer/bpe.ts';
import { Rng } from '../../src/util/rng.ts';

// ------------------------------------------------------------------------------------------------ fuzzed text

const CJK = '的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生会自着去之過學習日本語한국어';
const EMOJI = ['😀', '👍🏽', '👩‍👩‍👧', '🇫🇷', '❤️', '🧪', '🦀', '🫠'];
const COMBINING = ['\u0301', '\u0300', '\u0308', '\u0327', '\u20dd', '\u05b0'];
const SPACES = [' ', '  ', '   ', '\t', '\t\t', '\n', '\r\n', '\n\n', '\u00a0', '\u3000', '\u2003', ' \n ', '\u0085', '\ufeff'];
const WORDS = ['the', 'cat', "it's", "we'll", 'Hello', 'WORLD', 'naïve', 'café', 'x86_64', '3.14', '1000000', '@#$%', '...', '--'];

function randomCodePoint(rng: Rng): string {
  for (;;) {
    const cp = rng.int(0x110000);
    if (cp < 0xd800 || cp > 0xdfff) return String.fromCodePoint(cp); // scalar values only (no lone surrogates)
  }
}

/** A seeded mix of ASCII words, whitespace runs, emoji, CJK, combining marks (also word-initial) and anything. */
function fuzzString(rng: Rng, specials: string[] = []): string {
  let s = '';
  const parts = 1 + rng.int(12);
  for (let p = 0; p < parts; p++) {
    const k = rng.int(10);
    if (k === 0) s += SPACES[rng.int(SPACES.length)]!;
    else if (k === 1) s += EMOJI[rng.int(EMOJI.length)]!;
    else if (k === 2) for (let i = 1 + rng.int(6); i > 0; i--) s += CJK[rng.int(CJK.length)]!;
    else if (k === 3) s += COMBINING[rng.int(COMBINING.length)]!;
    else if (k === 4) s += randomCodePoint(rng);
    else if (k === 5 && specials.length) s += specials[rng.int(specials.length)]!;
    else if (k === 6) s += String.fromCharCode(rng.int(128));
    else s += (rng.int(3) === 0 ? ' ' : '') + WORDS[rng.int(WORDS.length)]!;
  }
  return s;
}

function fuzzStrings(seed: number, n: number, specials: string[] = []): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => fuzzString(rng, specials));
}

const ENGLISH = ['README.md', 'DEVELOPERS.md'].map((f) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8'));
const SPECIALS = ['<|endoftext|>', '<|pad|>', '<|im_start|>'];

// ------------------------------------------------------------------------------------------------ the oracle

/**
 * Naive BPE training: recount every pair over every word at every step. Same rules as train.ts (ids: specials,
 * then the byte symbols in GPT-2 order; max count, ties → smaller (a, b); a merge spelling an existing token reuses its id; a merge spelling a
 * special token is skipped; stop below minFrequency).
 */
function naiveTrain(texts: string[], vocabSize: number, specials: string[], minFrequency = 2): Array<[number, number]> {
  const S = specials.length;
  const tokens: string[] = [...specials, ...BYTE_SYMBOLS];
  const freq = new Map<string, number>();
  for (const t of texts) {
    let pieces = [t];
    for (const sp of specials) pieces = pieces.flatMap((p) => p.split(sp));
    for (const p of pieces) for (const w of preTokenize(p)) freq.set(w, (freq.get(w) ?? 0) + 1);
  }
  const words = [...freq].map(([w, f]) => ({ syms: [...new TextEncoder().encode(w)].map((b) => tokens.indexOf(BYTE_TO_UNICODE[b]!, S)), f }));
  const merges: Array<[number, number]> = [];
  const skipped = new Set<string>();
  while (tokens.length < vocabSize) {
    const counts = new Map<string, number>();
    for (const { syms, f } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]},${syms[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + f);
      }
    }
    let best: [number, number] | null = null, bestCount = 0;
    for (const [k, c] of counts) {
      if (skipped.has(k)) continue;
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (best === null || bestCount < minFrequency) break;
    const [a, b] = best;
    const str = tokens[a]! + tokens[b]!;
    if (specials.includes(str)) {
      skipped.add(`${a},${b}`);
      continue;
    }
    let c = tokens.indexOf(str, S);
    if (c < 0) c = tokens.push(str) - 1;
    merges.push([a, b]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(c);
          i++;
        } else out.push(w.syms[i]!);
      }
      w.syms = out;
    }
  }
  return merges;
}

const show = (tok: BpeTokenizer): string[] => tok.merges.map(([a, b]) => `${tok.idToToken(a)} ${tok.idToToken(b)}`);

// ------------------------------------------------------------------------------------------------ training

describe('trainBpe', () => {
  it('learns the hand-checked merges of "aaabdaaabac"', () => {
    // pairs: aa 4, ab 2, bd/da/ba/ac 1 → "a a". Then aa·a 2 and a·b 2 tie: ids (64, 65) < (256, 64) → "a b".
    // Then aa·ab 2 → "aa ab". Everything left occurs once: stop at the default minFrequency 2.
    const tok = trainBpe(['aaabdaaabac'], { vocabSize: 300 });
    expect(show(tok)).toEqual(['a a', 'a b', 'aa ab']);
    expect(tok.vocabSize).toBe(259);
    expect(tok.tokenToId('aaab')).toBe(258);
    expect(tok.encode('aaabdaaabac').map((id) => tok.idToToken(id))).toEqual(['aaab', 'd', 'aaab', 'a', 'c']);
    // minFrequency 1: among the count-1 pairs (aaab,d) (d,aaab) (aaab,a) (a,c), the smallest ids are a, c = (64, 66).
    const tok1 = trainBpe(['aaabdaaabac'], { vocabSize: 260, minFrequency: 1 });
    expect(show(tok1)).toEqual(['a a', 'a b', 'aa ab', 'a c']);
  });

  it('puts special tokens first, then the 256 bytes, and stops at vocabSize', () => {
    const tok = trainBpe(ENGLISH, { vocabSize: 600, specialTokens: SPECIALS });
    expect(tok.vocabSize).toBe(600);
    SPECIALS.forEach((s, i) => expect(tok.tokenToId(s)).toBe(i));
    expect(tok.tokenToId('!')).toBe(SPECIALS.length); // GPT-2 order: printable bytes first …
    expect(tok.tokenToId('Ā')).toBe(SPECIALS.length + 188); // … then byte 0x00, …
    expect(tok.tokenToId('Ġ')).toBe(SPECIALS.length + 188 + 0x20); // … and the space byte 0x20
    expect(tok.specialTokens).toEqual(SPECIALS);
    // Without special tokens the byte ids are GPT-2's own (vocab.json: "!" 0, "Ġ" 220, "ÿ" 187, "Ń" 255).
    const plain = trainBpe(['x'], { vocabSize: 256 });
    expect(['!', 'Ġ', 'ÿ', 'Ń'].map((t) => plain.tokenToId(t))).toEqual([0, 220, 187, 255]);
  });

  it('matches the naive full-rescan trainer on English text', () => {
    const texts = ENGLISH.flatMap((t) => t.split('\n'));
    const fast = trainBpe(texts, { vocabSize: 700, specialTokens: ['<|endoftext|>'] });
    expect(fast.merges).toEqual(naiveTrain(texts, 700, ['<|endoftext|>']));
  });

  it('matches the naive trainer on tiny alphabets (many ties, overlapping runs like "aaaa")', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rng = new Rng(seed);
      const alphabet = ['a', 'b', 'a', 'ab', 'c', ' ', 'aa'].slice(0, 3 + (seed % 5));
      const texts = Array.from({ length: 40 }, () => {
        let s = '';
        for (let i = 0, n = 1 + rng.int(40); i < n; i++) s += alphabet[rng.int(alphabet.length)]!;
        return s;
      });
      const minFrequency = 1 + (seed % 3);
      const fast = trainBpe(texts, { vocabSize: 256 + 80, minFrequency });
      expect(fast.merges, `seed ${seed}`).toEqual(naiveTrain(texts, 256 + 80, [], minFrequency));
      expect(fast.vocabSize).toBe(256 + fast.merges.length); // no merge re-spelled a token (never seen so far)
    }
  });

  it('never learns from or spells a special token', () => {
    const texts = Array.from({ length: 50 }, () => 'ab<|s|>ab ab');
    const tok = trainBpe(texts, { vocabSize: 300, specialTokens: ['ab', '<|s|>'], minFrequency: 1 });
    expect(show(tok)).not.toContain('a b');
    expect(tok.merges).toEqual(naiveTrain(texts, 300, ['ab', '<|s|>'], 1));
    expect(tok.encode('ab<|s|>')).toEqual([0, 1]);
  });

  it('is deterministic: same input → same merges and vocab', () => {
    const texts = [...ENGLISH, ...fuzzStrings(7, 300)];
    const a = trainBpe(texts, { vocabSize: 1000, specialTokens: SPECIALS });
    const b = trainBpe(texts, { vocabSize: 1000, specialTokens: SPECIALS });
    expect(a.merges).toEqual(b.merges);
    expect(JSON.stringify(a.toJSON())).toBe(JSON.stringify(b.toJSON()));
  });

  it('reports progress and rejects bad options', () => {
    const phases = new Set<string>();
    trainBpe(ENGLISH, { vocabSize: 400, onProgress: (p) => phases.add(p.phase) });
    expect([...phases]).toEqual(['count', 'merge']);
    expect(() => trainBpe(['x'], { vocabSize: 100 })).toThrow(/vocabSize/);
    expect(() => trainBpe(['x'], { vocabSize: 300, specialTokens: ['a', 'a'] })).toThrow(/duplicates/);
    expect(() => trainBpe(['x'], { vocabSize: 300, specialTokens: [''] })).toThrow(/non-empty/);
  });
});

// ------------------------------------------------------------------------------------------------ encode / decode

describe('BpeTokenizer encode/decode', () => {
  const tok = trainBpe([...ENGLISH, ...fuzzStrings(11, 500)], { vocabSize: 1500, specialTokens: SPECIALS });

  it('round-trips 1,000 fuzzed Unicode strings byte-exactly', () => {
    for (const s of fuzzStrings(42, 1000, SPECIALS)) {
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(s);
      for (const id of ids) expect(id).toBeLessThan(tok.vocabSize);
    }
  });

  it('round-trips the awkward cases', () => {
    const cases = ['', ' ', '   x  ', '\t\ta\r\n\r\nb', '\ufeffBOM first', 'e\u0301', '\u0301lone mark', '👩‍👩‍👧🇫🇷',
      '中文没有空格的长句子'.repeat(50), ' '.repeat(5000), 'a'.repeat(3000), "it's we'LL", '\u0000\u0001\u007f'];
    for (const s of cases) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('encodes special tokens as their single ids, longest match first', () => {
    const t2 = trainBpe(ENGLISH, { vocabSize: 400, specialTokens: ['<s>', '<s><s>', '</s>'] });
    expect(t2.encode('<s><s><s>')).toEqual([1, 0]);
    const ids = t2.encode('a</s>b<s>');
    expect(ids).toContain(2);
    expect(ids[ids.length - 1]).toBe(0);
    expect(t2.decode(ids)).toBe('a</s>b<s>');
    // A partial special token is ordinary text.
    expect(t2.encode('</s')).not.toContain(2);
  });

  it('gives the same ids with a warm and a cold word cache', () => {
    const text = fuzzStrings(5, 200, SPECIALS).join(' ');
    const warm = tok.encode(text);
    expect(tok.encode(text)).toEqual(warm);
    expect(BpeTokenizer.fromJSON(tok.toJSON()).encode(text)).toEqual(warm);
  });

  it('exposes the vocabulary', () => {
    const id = tok.tokenToId('Ġthe')!;
    expect(id).toBeGreaterThan(SPECIALS.length + 255);
    expect(tok.idToToken(id)).toBe('Ġthe');
    expect(new TextDecoder().decode(tok.idToBytes(id))).toBe(' the');
    expect(tok.idToToken(tok.vocabSize)).toBeUndefined();
    expect(() => tok.decode([tok.vocabSize])).toThrow(/unknown id/);
  });
});

// ------------------------------------------------------------------------------------------------ HF formats

describe('tokenizer.json', () => {
  const tok = trainBpe([...ENGLISH, ...fuzzStrings(3, 400)], { vocabSize: 1200, specialTokens: SPECIALS });
  const json = JSON.parse(JSON.stringify(tok.toJSON())) as Record<string, any>;

  it('has the HF layout', () => {
    expect(json.model.type).toBe('BPE');
    expect(json.normalizer).toBeNull();
    expect(json.pre_tokenizer).toMatchObject({ type: 'ByteLevel', add_prefix_space: false, use_regex: true });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.post_processor).toMatchObject({ type: 'ByteLevel', trim_offsets: false });
    expect(json.added_tokens[0]).toEqual({
      id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    });
    expect(Object.keys(json.model.vocab)).toHaveLength(1200);
    expect(json.model.merges).toHaveLength(tok.merges.length);
    expect(typeof json.model.merges[0]).toBe('string');
  });

  it('toJSON → fromJSON gives identical encodings', () => {
    const back = BpeTokenizer.fromJSON(json);
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(back.merges).toEqual(tok.merges);
    for (const s of fuzzStrings(99, 300, SPECIALS)) expect(back.encode(s)).toEqual(tok.encode(s));
  });

  it('reads HF-written files: [a, b] merges, GPT-2 style options, specials outside the vocab', () => {
    const hf = structuredClone(json);
    hf.model.merges = hf.model.merges.map((m: string) => m.split(' '));
    hf.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    hf.model = { ...hf.model, dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false };
    delete hf.model.vocab['<|pad|>'];
    const back = BpeTokenizer.fromJSON(hf);
    for (const s of fuzzStrings(98, 200, SPECIALS)) expect(back.encode(s)).toEqual(tok.encode(s));
  });

  it('rejects what it does not implement, naming the field', () => {
    const bad = (edit: (j: Record<string, any>) => void): (() => BpeTokenizer) => {
      const j = structuredClone(json);
      edit(j);
      return () => BpeTokenizer.fromJSON(j);
    };
    expect(bad((j) => (j.model.type = 'WordPiece'))).toThrow(/model\.type "WordPiece"/);
    expect(bad((j) => (j.model.type = 'Unigram'))).toThrow(/model\.type/);
    expect(bad((j) => (j.normalizer = { type: 'NFC' }))).toThrow(/normalizer/);
    expect(bad((j) => (j.model.byte_fallback = true))).toThrow(/model\.byte_fallback/);
    expect(bad((j) => (j.model.dropout = 0.1))).toThrow(/model\.dropout/);
    expect(bad((j) => (j.model.end_of_word_suffix = '</w>'))).toThrow(/model\.end_of_word_suffix/);
    expect(bad((j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [] }))).toThrow(/pre_tokenizer of type "Sequence"/);
    expect(bad((j) => (j.decoder = null))).toThrow(/decoder/);
    expect(bad((j) => (j.post_processor = { type: 'TemplateProcessing' }))).toThrow(/post_processor/);
    expect(bad((j) => (j.added_tokens[0].lstrip = true))).toThrow(/added_tokens\[0\]\.lstrip/);
    expect(bad((j) => delete j.model.vocab['Ā'])).toThrow(/byte 0x00/);
    expect(bad((j) => j.model.merges.push('zz qq'))).toThrow(/model\.merges\[\d+\]/);
    expect(bad((j) => (j.truncation = { max_length: 5 }))).toThrow(/truncation/);
    expect(() => BpeTokenizer.fromJSON('nope')).toThrow(/object/);
  });

  it('writes tokenizer_config.json', () => {
    const cfg = tok.tokenizerConfigJson({
      bos: '<|im_start|>', eos: '<|endoftext|>', pad: '<|pad|>', modelMaxLength: 512, chatTemplate: '{{ messages }}',
    });
    expect(cfg).toMatchObject({
      tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<|im_start|>', eos_token: '<|endoftext|>',
      pad_token: '<|pad|>', model_max_length: 512, clean_up_tokenization_spaces: false, chat_template: '{{ messages }}',
    });
    expect((cfg.added_tokens_decoder as Record<string, unknown>)['1']).toMatchObject({ content: '<|pad|>', special: true });
    expect(() => tok.tokenizerConfigJson({ eos: '<eos>', modelMaxLength: 8 })).toThrow(/eos "<eos>"/);
  });
});

// ------------------------------------------------------------------------------------------------ independent check

describe('transformers.js reads our files', () => {
  const tok = trainBpe([...ENGLISH, ...fuzzStrings(21, 600)], { vocabSize: 2000, specialTokens: SPECIALS });
  const tokenizerJson = JSON.parse(JSON.stringify(tok.toJSON()));
  const config = JSON.parse(JSON.stringify(tok.tokenizerConfigJson({
    bos: '<|im_start|>', eos: '<|endoftext|>', pad: '<|pad|>', modelMaxLength: 1024,
  })));
  const hf = new PreTrainedTokenizer(tokenizerJson, config);

  it('encodes 200 fuzzed strings to exactly our ids and decodes them back', () => {
    let tokens = 0;
    for (const s of fuzzStrings(2024, 200, SPECIALS)) {
      const ours = tok.encode(s);
      expect(hf.encode(s), JSON.stringify(s)).toEqual(ours);
      tokens += ours.length;
      if (ours.length > 0) expect(hf.decode(ours)).toBe(s);
    }
    expect(tokens).toBeGreaterThan(1000);
  });

  it('agrees on the options we read from HF files: add_prefix_space, use_regex false, ignore_merges', () => {
    const variants: Array<(j: Record<string, any>) => void> = [
      (j) => (j.pre_tokenizer.add_prefix_space = true),
      (j) => (j.pre_tokenizer.use_regex = false),
      (j) => (j.model.ignore_merges = true),
    ];
    for (const edit of variants) {
      const j = structuredClone(tokenizerJson);
      edit(j);
      const ours = BpeTokenizer.fromJSON(j);
      const theirs = new PreTrainedTokenizer(j, config);
      for (const s of fuzzStrings(77, 100, SPECIALS)) expect(theirs.encode(s), `${edit} ${JSON.stringify(s)}`).toEqual(ours.encode(s));
    }
  });

  it('agrees on English text and knows the special tokens', () => {
    const text = ENGLISH.join('\n<|endoftext|>');
    expect(hf.encode(text)).toEqual(tok.encode(text));
    expect(hf.eos_token_id).toBe(0);
    expect(hf.pad_token_id).toBe(1);
    expect(hf.bos_token_id).toBe(2);
    expect(hf.decode(tok.encode(text), { skip_special_tokens: true })).toBe(ENGLISH.join('\n'));
  });
});
