// Stored top-k rows of a teacher whose tokenizer is not the student's (issue #23): each of a record's answer tokens
// gets the teacher row made from the same text before it (src/tokenizer/cross-align.ts pairs them):
//   exact  the same string on both sides: the row's alternatives that are student tokens, in student ids (the
//          ordinary top-k KD of that position, over the shared strings);
//   uld    the teacher's token starts there too but is another string: the row's logprobs, all of them (the ULD
//          term compares sorted probabilities, whatever the tokens);
//   none   no teacher row was made from this text: the student learns its label only.
// A record whose answer the teacher rows cannot spell, or whose student tokens do not spell the answer, is left out
// of KD training with the reason, like a misaligned record of same-tokenizer KD.
import type { StoredRecord } from '../../store/schema.ts';
import { unpackTopKRows, type TopKRow } from '../../store/topk.ts';
import { pairTokens, spansOf, tileRows, type TokenPairing } from '../../tokenizer/cross-align.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';

/** One answer token's teacher row: exact rows in student ids, ULD rows as the teacher's own logprobs. */
export interface CrossRow {
  uld: boolean;
  /** Student ids (exact rows; [] for ULD rows). */
  ids: number[];
  /** Their logprobs (exact), or every logprob of the teacher's row, descending (ULD). */
  logprobs: number[];
}

export interface CrossAnswer {
  /** Per answer token: its teacher row, or null (none). */
  rows: (CrossRow | null)[];
  pairing: TokenPairing;
}

/** A stored row's alternatives that are student tokens, in student ids (first occurrence of each), with their
 *  logprobs: the top-k row of a position whose teacher and student tokens are the same string. */
export function inStudentIds(r: TopKRow, vocab: readonly string[], toStudent: ReadonlyMap<string, number>): { ids: number[]; logprobs: number[] } {
  const ids: number[] = [], logprobs: number[] = [];
  for (let i = 0; i < r.ids.length; i++) {
    const id = toStudent.get(vocab[r.ids[i]!] ?? '');
    if (id !== undefined && !ids.includes(id)) { ids.push(id); logprobs.push(r.logprobs[i]!); }
  }
  return { ids, logprobs };
}

/** The student tokens' ends in `text`; SentencePiece-style tokenizers that spell an answer encoded alone with a leading
 *  space (" The" for "The") are matched against the text with that space, which belongs to their first token. */
function studentEnds(tok: Pick<TextTokenizer, 'decode'>, answer: ArrayLike<number>, text: string, before: ArrayLike<number>): Int32Array | string {
  const ends = spansOf(tok, answer, text, before);
  if (typeof ends !== 'string' || text.startsWith(' ')) return ends;
  const spaced = spansOf(tok, answer, ` ${text}`, before);
  return typeof spaced === 'string' ? ends : spaced.map((e) => (e <= 0 ? -1 : e - 1));
}

/**
 * The teacher rows of one answer (`rows`: its stored top-k, one per teacher token; `vocab`: the dataset's token
 * strings; `toStudent`: student id of each string that is exactly one student token), or why it cannot be aligned.
 */
export function alignAnswerCross(
  rows: readonly TopKRow[], answer: ArrayLike<number>, text: string, vocab: readonly string[], toStudent: ReadonlyMap<string, number>,
  tok: Pick<TextTokenizer, 'decode'>, before: ArrayLike<number> = [],
): CrossAnswer | string {
  const strings = rows.map((r) => Array.from(r.ids, (id) => vocab[id] ?? '\u0000'));
  const tiled = tileRows(strings, text);
  if (typeof tiled === 'string') return tiled;
  const ends = studentEnds(tok, answer, text, before);
  if (typeof ends === 'string') return `the student's tokens of the answer: ${ends}`;
  const pairing = pairTokens(ends, tiled.ends);
  const out: (CrossRow | null)[] = [];
  for (let j = 0; j < answer.length; j++) {
    const m = pairing.teacherRow[j]!;
    if (m < 0) { out.push(null); continue; }
    const r = rows[m]!;
    if (pairing.kind[j] === 'uld') {
      out.push({ uld: true, ids: [], logprobs: Array.from(r.logprobs).sort((a, b) => b - a) });
      continue;
    }
    const { ids, logprobs } = inStudentIds(r, vocab, toStudent);
    // The sampled token is the student's token (same string); a string the student's vocabulary holds twice maps
    // to neither: then this position learns its label only (and is counted so).
    if (!ids.includes(answer[j]!)) {
      out.push(null);
      pairing.kind[j] = 'none'; pairing.exact--; pairing.none++;
      continue;
    }
    out.push({ uld: false, ids, logprobs });
  }
  return { rows: out, pairing };
}

/** How a dataset's answer tokens pair with a student tokenizer's across tokenizers: what planning shows. */
export interface CrossShare {
  exact: number;
  uld: number;
  none: number;
  /** Answers measured, and those the rows could not be aligned with (left out of KD training). */
  answers: number;
  unaligned: number;
}

/**
 * The pairing of the answers of `records` (each answer encoded alone, as a run encodes it) with their stored rows,
 * counted; `toStudent` as stringToStudentId(tok). Planning measures the first records of a dataset with it.
 */
export async function crossShareOf(
  records: readonly StoredRecord[], rowsOf: (recordId: number) => Promise<Map<number, Uint8Array>>, vocab: readonly string[],
  toStudent: ReadonlyMap<string, number>, tok: Pick<TextTokenizer, 'decode' | 'encode'>,
): Promise<CrossShare> {
  const out: CrossShare = { exact: 0, uld: 0, none: 0, answers: 0, unaligned: 0 };
  for (const rec of records) {
    const stored = await rowsOf(rec.id);
    for (const [turn, bytes] of stored) {
      const m = rec.messages[turn];
      if (!m || m.role !== 'assistant') continue;
      out.answers++;
      const a = alignAnswerCross(unpackTopKRows(bytes), tok.encode(m.content), m.content, vocab, toStudent, tok);
      if (typeof a === 'string') { out.unaligned++; continue; }
      out.exact += a.pairing.exact; out.uld += a.pairing.uld; out.none += a.pairing.none;
    }
  }
  return out;
}
