// Cross-tokenizer alignment (src/tokenizer/cross-align.ts): token ends from real tokenizers (two byte-level BPEs
// of different sizes trained on different text, and the Llama-2 SentencePiece format, which drops a leading space
// when a decode starts), checked against brute-force prefix decoding; the spelling of an answer from stored top-k
// candidates (with a choice that only backtracking finds); the exact / ULD / none pairing by hand and between
// the two BPEs, where every exact pair is one string on both sides.
import { describe, expect, it } from 'vitest';
import { pairTokens, spansOf, tileRows } from '../../src/tokenizer/cross-align.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { loadTokenizerFile } from '../../src/tokenizer/hf.ts';
import type { TextTokenizer } from '../../src/tokenizer/types.ts';
import { llama2Files } from '../support/export-readers.ts';

const LINES = [
  'The history of the city is the history of its people, who came from the farms to work in the mills.',
  'In the morning the farmers went out to the fields before the sun was up; they sat, sitting and waiting.',
  'Grüße aus München: the café was open, naïve déjà vu, and the 2,048 workers were paid 3.5 dollars.',
];
const small = trainBpe(LINES, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
const large = trainBpe([...LINES, ...LINES.map((l) => l.toUpperCase()), 'sitting sitting waiting cities'], { vocabSize: 420, specialTokens: ['<|endoftext|>'] });
const llama2 = loadTokenizerFile(llama2Files().bytes);
const TEXT = ' The café was open, and they sat sitting in the mills — 🙂 until 2,048.';

/** Every end ≥ 0 is where the decoded prefix (with its context) is exactly that much of the text. */
function checkEnds(tok: TextTokenizer, before: number[], ids: number[], text: string, ends: Int32Array): void {
  const head = tok.decode(before);
  let last = 0;
  ends.forEach((e, i) => {
    if (e < 0) return;
    expect(e).toBeGreaterThan(last);
    last = e;
    expect(tok.decode([...before, ...ids.slice(0, i + 1)]).slice(head.length)).toBe(text.slice(0, e));
  });
  expect(last).toBe(text.length);
}

describe('cross-tokenizer alignment', () => {
  for (const [name, tok] of [['BPE 300', small], ['BPE 420', large], ['Llama-2 SentencePiece', llama2]] as const) {
    it(`spansOf: ${name} — ends where decoding spells the text, -1 inside characters`, () => {
      // As in a record: the answer's tokens are the tail of the whole text's (a byte token ends the prompt).
      const full = tok.encode(`Q: where?\nA:\n${TEXT}`), before = tok.encode('Q: where?\nA:\n');
      expect(full.slice(0, before.length)).toEqual(before);
      const ids = full.slice(before.length);
      const ends = spansOf(tok, ids, TEXT, before);
      if (typeof ends === 'string') throw new Error(ends);
      checkEnds(tok, before, ids, TEXT, ends);
      if (tok.kind === 'bpe') expect([...ends].filter((e) => e < 0).length).toBeGreaterThan(0); // 🙂 is 4 byte tokens
    });
  }

  it('spansOf: tokens of another text say where they stop spelling it', () => {
    const r = spansOf(small, small.encode(' The café was shut.'), TEXT);
    expect(r).toMatch(/^its tokens spell " The café was" and then not " open/);
  });

  it('tileRows: spells the text with one candidate per row, backtracking from a longest-first dead end', () => {
    const rows = [['ab', 'a', 'x'], ['bc', 'q'], ['d', 'de'], ['']];
    const t = tileRows(rows, 'abcde');
    if (typeof t === 'string') throw new Error(t);
    expect([...t.pick]).toEqual([1, 0, 1, 0]); // 'ab' leaves 'cde', which 'bc' cannot start: 'a' + 'bc' + 'de' + ''
    expect([...t.ends]).toEqual([1, 3, 5, 5]);
    expect(tileRows([['ab'], ['c']], 'abd')).toMatch(/cannot spell its 3 characters/);
    expect(tileRows([['a'], [''], ['b']], 'ab')).toMatch(/cannot spell/); // an empty token only after the text
    // Many ways to spell a long run of spaces, and a last row that spells none: no search blow-up, no recursion.
    const spaces = ' '.repeat(2400);
    const many = [...Array.from({ length: 1199 }, () => [' ', '  ', '   ']), ['x']];
    const t0 = performance.now();
    expect(tileRows(many, spaces)).toMatch(/its 1200 teacher rows cannot spell its 2400 characters/);
    expect(performance.now() - t0).toBeLessThan(5000);
    const spelled = tileRows([...Array.from({ length: 1200 }, () => [' ', '  ', '   '])], spaces);
    if (typeof spelled === 'string') throw new Error(spelled);
    expect(spelled.ends[1199]).toBe(2400);
    expect(tileRows(Array.from({ length: 3000 }, () => ['a']), 'a'.repeat(3000))).toMatch(/too long to align/);
  });

  it('pairTokens: same start and end = exact, same start only = ULD, no teacher start = none', () => {
    // text "the sitting cat": student the| sit|ting| cat, teacher the| sitting| c|at
    const p = pairTokens(Int32Array.from([3, 7, 11, 15]), Int32Array.from([3, 11, 13, 15]));
    expect([...p.teacherRow]).toEqual([0, 1, -1, 2]);
    expect(p.kind).toEqual(['exact', 'uld', 'none', 'uld']);
    expect([p.exact, p.uld, p.none]).toEqual([1, 2, 1]);
    // A student token after one that ends inside a character starts nowhere known.
    expect(pairTokens(Int32Array.from([-1, 2]), Int32Array.from([1, 2])).kind).toEqual(['none', 'none']);
  });

  it('two BPEs on the same answer: every exact pair is one string on both sides, every ULD pair starts together', () => {
    const s = small.encode(TEXT), t = large.encode(TEXT);
    const se = spansOf(small, s, TEXT), te = spansOf(large, t, TEXT);
    if (typeof se === 'string' || typeof te === 'string') throw new Error(String(se) + String(te));
    const p = pairTokens(se, te);
    expect(p.exact).toBeGreaterThan(0);
    expect(p.exact + p.uld + p.none).toBe(s.length);
    for (let i = 0; i < s.length; i++) {
      const m = p.teacherRow[i]!;
      if (p.kind[i] === 'exact') expect(small.decode([s[i]!])).toBe(large.decode([t[m]!]));
      if (p.kind[i] !== 'none') expect(i === 0 ? 0 : se[i - 1]).toBe(m === 0 ? 0 : te[m - 1]);
    }
    console.log(`BPE 300 vs BPE 420 on ${TEXT.length} characters: ${s.length} student tokens, ${p.exact} exact, ${p.uld} ULD, ${p.none} none`);
  });
});
