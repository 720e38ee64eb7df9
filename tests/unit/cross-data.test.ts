// A run's data from a teacher whose tokenizer is not the student's (src/engine/runs/cross-data.ts, data.ts): the
// stored top-k rows of a BPE of 420 ids (each row: the sampled token and alternatives, as a remote teacher's
// top_logprobs give them, token strings in the dataset's table) turned into the rows of a student BPE of 300 ids.
// Checked: every answer token is exact, ULD or none as the text pairs them; an exact row holds the student's own
// token and the teacher's alternatives that are student tokens; a ULD row holds the teacher's whole row,
// descending; the batch's top-k input is that row at an exact position and the label at a ULD one, whose ULD input
// is the teacher's probabilities at τ; a record the rows cannot spell is left out with its reason.
import { describe, expect, it } from 'vitest';
import { alignAnswerCross } from '../../src/engine/runs/cross-data.ts';
import { buildRunData, stringToStudentId, teacherTopK } from '../../src/engine/runs/data.ts';
import { loadTokenizer, loadTokenizerFile } from '../../src/tokenizer/hf.ts';
import { unpackTopKRows } from '../../src/store/topk.ts';
import { llama2Files } from '../support/export-readers.ts';
import { familyFiles } from '../support/fuzz-text.ts';
import { uldTeacherRow } from '../../src/kernels/loss/uld.ref.ts';
import type { StoredRecord } from '../../src/store/schema.ts';
import { encodeTopK, packTopKRows } from '../../src/store/topk.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { BatchLoader } from '../../src/train/batches.ts';
import { Rng } from '../../src/util/rng.ts';

const LINES = [
  'The history of the city is the history of its people, who came from the farms to work in the mills.',
  'In the morning the farmers went out to the fields before the sun was up; they sat, sitting and waiting.',
];
const student = trainBpe(LINES, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
const teacher = trainBpe([...LINES, 'sitting sitting waiting cities the farmers the fields'], { vocabSize: 420, specialTokens: ['<|endoftext|>'] });
const ANSWERS = [' the farmers were sitting in the fields.', ' the city was waiting for the mills.', ' they sat in the sun.'];

/** The dataset's token table and each record's rows, as the feature strategy stores a remote teacher's. */
function storedRows(answers: string[], spoil = -1) {
  const vocab: string[] = [], index = new Map<string, number>();
  const idOf = (s: string) => { let i = index.get(s); if (i === undefined) { i = vocab.length; vocab.push(s); index.set(s, i); } return i; };
  const rng = new Rng(7);
  const rows = answers.map((text, r) => {
    const ids = teacher.encode(text);
    return packTopKRows(ids.map((id, j) => {
      const alts = new Set([id, 1 + rng.int(teacher.vocabSize - 1), 1 + rng.int(teacher.vocabSize - 1), 1 + rng.int(teacher.vocabSize - 1)]);
      const strings = [...new Set([...alts].map((a) => (r === spoil && j === 0 && a === id ? ' xyz' : teacher.decode([a]))))];
      const lps = strings.map((_, i) => (i === 0 ? -0.2 : -2 - i));
      return encodeTopK(Uint32Array.from(strings.map(idOf)), Float32Array.from(lps), 8);
    }));
  });
  return { vocab, rows };
}

const records = (answers: string[]): StoredRecord[] => answers.map((a, i) => ({
  id: i + 1, datasetId: 'd', key: `k${i}`, contentHash: '', provenance: {} as StoredRecord['provenance'],
  messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: a }],
}));

describe('cross-tokenizer run data', () => {
  it('pairs every answer token with the teacher row made from the same text: exact rows in student ids, ULD rows whole', async () => {
    const { vocab, rows } = storedRows(ANSWERS);
    const eos = student.tokenToId('<|endoftext|>')!;
    const data = await buildRunData(records(ANSWERS), [], {
      format: 'chat', tok: student, eos, T: 64, heldOutEvery: 0,
      topk: { vocab, rowsOf: async (id) => new Map([[1, rows[id - 1]!]]), cross: true },
    });
    const c = data.stats.crossTokens!;
    const answerTokens = ANSWERS.reduce((n, a) => n + student.encode(a).length, 0);
    expect(c.exact + c.uld + c.none).toBe(answerTokens);
    expect(c.exact).toBeGreaterThan(0);
    expect(c.uld).toBeGreaterThan(0);
    expect(data.stats.topkRecords).toBe(3);
    const t = data.topk!;
    expect(t.uld!.reduce((n, x) => n + x, 0)).toBe(c.uld);
    expect(t.count).toBe(c.exact + c.uld);
    // Every packed answer token with a row: exact rows hold the student's own token; ULD rows descend.
    let seenExact = 0, seenUld = 0;
    for (const row of data.rows) for (let j = 1; j < row.tokens.length; j++) {
      const a = row.aux?.[j] ?? -1;
      if (a < 0) continue;
      const n = t.n[a]!, k = t.k;
      if (t.uld![a]) {
        seenUld++;
        const lps = Array.from(t.logprobs.subarray(a * k, a * k + n));
        expect(lps).toEqual([...lps].sort((x, y) => y - x));
      } else {
        seenExact++;
        expect(Array.from(t.ids.subarray(a * k, a * k + n))).toContain(row.tokens[j]);
      }
    }
    // (The training rows drop their last partial row: not every record's tokens are packed.)
    expect(seenExact).toBeGreaterThan(0);
    expect(seenUld).toBeGreaterThan(0);

    // A batch: top-k input at exact positions, the label (mask 0) and the ULD input at ULD positions.
    const B = data.rows.length;
    const b = new BatchLoader(data.rows, B, 64, 0, { epoch: 0, row: 0 }, false).next();
    const sig = teacherTopK(b, data.rows, t, 300, 1.5);
    let checked = 0;
    for (let n = 0; n < B * 64; n++) {
      const a = data.rows[b.rows![Math.floor(n / 64)]!]!.aux?.[(n % 64) + 1] ?? -1;
      if (b.weights[n] === 0 || a < 0) continue;
      if (t.uld![a]) {
        expect(sig.uldWeights![n]).toBe(b.weights[n]);
        expect(sig.teacherMask[n]).toBe(0);
        expect(sig.teacherIds[n * t.k]).toBe(b.labels[n]);
        const q = uldTeacherRow(t.logprobs.subarray(a * t.k, a * t.k + t.n[a]!), 1.5, t.k);
        expect(Array.from(sig.teacherUld!.subarray(n * t.k, (n + 1) * t.k))).toEqual(Array.from(Float32Array.from(q)));
      } else {
        expect(sig.uldWeights![n]).toBe(0);
        expect(sig.teacherMask[n]).toBe(1);
      }
      checked++;
    }
    expect(checked).toBe(seenExact + seenUld);
  });

  it('leaves out a record whose teacher rows cannot spell its answer, saying so', async () => {
    const { vocab, rows } = storedRows(ANSWERS, 1);
    const data = await buildRunData(records(ANSWERS), [], {
      format: 'chat', tok: student, eos: student.tokenToId('<|endoftext|>')!, T: 64, heldOutEvery: 0,
      topk: { vocab, rowsOf: async (id) => new Map([[1, rows[id - 1]!]]), cross: true },
    });
    expect(data.stats.topkRecords).toBe(2);
    expect(data.stats.notes.join(' ')).toMatch(/1 record\(s\) left out of KD training: its N teacher rows cannot spell its N characters/);
  });

  it('a SentencePiece student (Llama-2 format): its strings are what its tokens add after text, so exact rows keep its own token', () => {
    const sp = loadTokenizerFile(llama2Files().bytes);
    const map = stringToStudentId(sp);
    const cat = sp.encode(' the cat').at(-1)!; // "▁cat"
    expect(map.get(' cat')).toBe(cat);
    expect(map.get('cat')).not.toBe(cat);
    const { vocab, rows } = storedRows(ANSWERS);
    let exact = 0, kept = 0;
    ANSWERS.forEach((text, r) => {
      const a = alignAnswerCross(unpackTopKRows(rows[r]!), sp.encode(text), text, vocab, map, sp);
      if (typeof a === 'string') throw new Error(a);
      exact += a.pairing.exact;
      kept += a.rows.filter((x) => x && !x.uld).length;
      a.rows.forEach((x, j) => { if (x && !x.uld) expect(x.ids).toContain(sp.encode(text)[j]); });
    });
    expect(exact).toBeGreaterThan(5);
    expect(kept).toBe(exact); // every pair counted exact keeps its row (none demoted unseen)
  });

  it('a Llama-3 student (the real tokenizer, 128 256 ids, byte-level BPE): most answer tokens pair exactly; exact rows keep its own token', () => {
    const f = familyFiles('llama3');
    const l3 = loadTokenizer(f.json, f.config, 'llama3 tokenizer.json');
    const map = stringToStudentId(l3);
    const { vocab, rows } = storedRows(ANSWERS);
    let exact = 0, uld = 0, none = 0;
    ANSWERS.forEach((text, r) => {
      const ids = l3.encode(text);
      const a = alignAnswerCross(unpackTopKRows(rows[r]!), ids, text, vocab, map, l3);
      if (typeof a === 'string') throw new Error(a);
      exact += a.pairing.exact; uld += a.pairing.uld; none += a.pairing.none;
      a.rows.forEach((x, j) => { if (x && !x.uld) expect(x.ids).toContain(ids[j]); });
      expect(a.rows.length).toBe(ids.length);
    });
    const total = ANSWERS.reduce((n, t) => n + l3.encode(t).length, 0);
    expect(exact + uld + none).toBe(total);
    // Llama-3's words are whole tokens; the small teacher BPE splits some: those pair by ULD, the rest exactly.
    expect(exact / total).toBeGreaterThan(0.5);
    expect(uld).toBeGreaterThan(0);
  });
});
