// Cross-tokenizer alignment (issue #23): which of a student's answer tokens can learn from which of a teacher's
// distributions when the two tokenize the same text differently. Both sides are reduced to where their tokens END
// in the answer text (UTF-16 offsets; −1 for a token that ends inside a character or does not spell the text);
// a student token and a teacher token that START at the same offset were predicted from the same text, so the
// teacher's distribution there is about the student's next token too:
//   exact  the two also END at the same offset: the same string, one token on both sides. KD is exact: the
//          teacher's alternatives whose strings are student tokens, in the student's ids (KL over shared strings).
//   uld    they start together but end apart (" sitting" vs " sit" + "ting"): the two distributions are over
//          different token sets; they are compared as sorted probability vectors (ULD, src/kernels/loss/uld.ts).
//   none   no teacher token starts where this student token starts (it continues a longer teacher token): no
//          teacher distribution was made from this context; the student learns its label only.
// Ends come from the tokenizers themselves: the student's by decoding (spansOf), a remote teacher's by spelling
// the answer with one candidate string of each stored top-k row (tileRows: the rows hold the sampled token's
// string but not which one was sampled).
import type { TextTokenizer } from './types.ts';

export type AlignKind = 'exact' | 'uld' | 'none';

/**
 * Where each token of `ids` ends in `text` (UTF-16 offsets, increasing), −1 where a token ends inside a character
 * or what it decodes to is not the next piece of the text; or why the tokens do not spell `text`. Tokens after
 * the text is spelled (a chat template's closing) end at −1 too. `before` (the tokens before `ids` in the record)
 * give decoding its context, so a tokenizer that drops a leading space at the start of a decode (SentencePiece)
 * decodes every piece as it sits in the record.
 */
export function spansOf(tok: Pick<TextTokenizer, 'decode'>, ids: ArrayLike<number>, text: string, before: ArrayLike<number> = []): Int32Array | string {
  const all = [...Array.from(before), ...Array.from(ids)], off = before.length;
  const ends = new Int32Array(ids.length).fill(-1);
  let s = off, pos = 0; // tokens up to s spell text[0, pos)
  for (let i = 0; i < ids.length && pos < text.length; i++) {
    const c = Math.max(0, s - 2); // two tokens of context
    const head = c < s ? tok.decode(all.slice(c, s)) : '';
    const full = tok.decode(all.slice(c, off + i + 1));
    if (!full.startsWith(head)) continue;
    const piece = full.slice(head.length);
    if (piece.length === 0 || !text.startsWith(piece, pos)) continue; // inside a character, or not this text
    pos += piece.length;
    ends[i] = pos;
    s = off + i + 1;
  }
  return pos === text.length ? ends : `its tokens spell ${JSON.stringify(text.slice(0, pos).slice(-20))} and then not ${JSON.stringify(text.slice(pos, pos + 20))}`;
}

/** Rows × characters beyond which an answer is not aligned (its reachability table would take this many bytes). */
export const TILE_MAX_CELLS = 4_000_000;

/**
 * The teacher's tokens of an answer from its stored top-k rows: for each row the candidate (index into `rows[r]`)
 * whose string continues the text, chosen so that the rows spell `text` exactly, and where each ends; or why no
 * choice spells it. A forward pass marks the offsets each row can reach (one byte per (row, offset): no recursion,
 * no worst case beyond R·L steps), then the path is read back from the end; where several spell the text, each
 * row's longest candidate is preferred (the sampled token is usually the longest that fits).
 */
export function tileRows(rows: readonly (readonly string[])[], text: string): { pick: Int32Array; ends: Int32Array } | string {
  const R = rows.length, L = text.length + 1;
  if (R * L > TILE_MAX_CELLS) return `its ${R} teacher rows over ${text.length} characters are too long to align`;
  // from[r·L + pos] = 1 + the candidate of row r − 1 that reached pos (0: unreachable); row 0 starts at offset 0.
  const from = new Int32Array((R + 1) * L);
  from[0] = 1;
  for (let r = 0; r < R; r++) {
    const order = rows[r]!.map((s, i) => [s, i] as const).sort((a, b) => b[0].length - a[0].length);
    for (let pos = 0; pos < L; pos++) {
      if (from[r * L + pos] === 0) continue;
      for (const [s, i] of order) {
        if (s.length === 0 && pos < text.length) continue; // an empty token only after the text (an end-of-text row)
        const to = pos + s.length;
        if (to < L && from[(r + 1) * L + to] === 0 && text.startsWith(s, pos)) from[(r + 1) * L + to] = i + 1;
      }
    }
  }
  if (from[R * L + text.length] === 0) return `its ${R} teacher rows cannot spell its ${text.length} characters (byte-fragment tokens, or rows for another text)`;
  const pick = new Int32Array(R), ends = new Int32Array(R);
  for (let r = R, pos = text.length; r > 0; r--) {
    const i = from[r * L + pos]! - 1;
    pick[r - 1] = i;
    ends[r - 1] = pos;
    pos -= rows[r - 1]![i]!.length;
  }
  return { pick, ends };
}

export interface TokenPairing {
  /** Per student token: the teacher token (row) it learns from, −1 for none. */
  teacherRow: Int32Array;
  kind: AlignKind[];
  exact: number;
  uld: number;
  none: number;
}

/**
 * Pairs each student token with the teacher token that starts where it starts (both sides' ends from spansOf /
 * tileRows; −1 = no boundary). A token's start is the previous token's end (0 for the first); a token after an
 * end of −1 starts at no known offset and pairs with nothing.
 */
export function pairTokens(studentEnds: Int32Array, teacherEnds: Int32Array): TokenPairing {
  const startOf = new Map<number, number>(); // teacher start offset → row
  const endOfRow = (m: number) => teacherEnds[m]!;
  for (let m = 0; m < teacherEnds.length; m++) {
    const start = m === 0 ? 0 : teacherEnds[m - 1]!;
    if (start >= 0 && endOfRow(m) > start && !startOf.has(start)) startOf.set(start, m);
  }
  const n = studentEnds.length, teacherRow = new Int32Array(n).fill(-1), kind: AlignKind[] = new Array(n).fill('none');
  let exact = 0, uld = 0;
  for (let i = 0; i < n; i++) {
    const start = i === 0 ? 0 : studentEnds[i - 1]!, end = studentEnds[i]!;
    const m = start >= 0 && end > start ? startOf.get(start) : undefined;
    if (m === undefined) continue;
    teacherRow[i] = m;
    if (endOfRow(m) === end) { kind[i] = 'exact'; exact++; } else { kind[i] = 'uld'; uld++; }
  }
  return { teacherRow, kind, exact, uld, none: n - exact - uld };
}
