// A run's data: the dataset's records and pairs as they were when the run was created (their ids are kept with the
// run, so a resumed run sees exactly the same rows), split into training and held-out parts (every Nth item held
// out), encoded in the run's format and packed into rows of T + 1 tokens. For KD from the store, each record's
// stored top-k rows are turned into the student's ids and CHECKED against the student's own tokens of the answer
// (one row per answer token, the token among its row's alternatives): records that do not line up are left out
// and counted, never trained on misaligned ids. The aligned rows form one table; packed rows carry, per token,
// the index of the row that predicts it (Example.aux), or -1 where the teacher gave none (end-of-text, chat
// closers), which teacherTopK() fills with a one-hot row on the label.
import type { PreferencePair } from '../../train/dpo.ts';
import type { ChatMessage, StoredPair, StoredRecord } from '../../store/schema.ts';
import type { DistillStore } from '../../store/store.ts';
import { unpackTopKRows } from '../../store/topk.ts';
import { datasetVocab } from '../../store/topk-table.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';
import { uldTeacherRow } from '../../kernels/loss/uld.ref.ts';
import { packRows, type Batch, type Example, type PackedRow } from '../../train/batches.ts';
import type { TeacherSignal } from '../../train/evaluate.ts';
import { alignAnswerCross, inStudentIds, type CrossAnswer } from './cross-data.ts';
import type { TokenPairing } from '../../tokenizer/cross-align.ts';
import { encodeRecord, promptIds, recordFormat, type RecordFormat } from './format.ts';
import { methodOf } from './methods.ts';
import type { RunDataStats, RunSpec } from './types.ts';

/** Every record and pair id of a dataset, in insertion order: what a run is created from. */
export async function snapshotIds(store: DistillStore, datasetId: string): Promise<{ records: number[]; pairs: number[] }> {
  const records: number[] = [], pairs: number[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await store.getRecords(datasetId, { offset, limit: 500 });
    records.push(...page.map((r) => r.id));
    if (page.length < 500) break;
  }
  for (let offset = 0; ; offset += 500) {
    const page = await store.getPairs(datasetId, { offset, limit: 500 });
    pairs.push(...page.map((p) => p.id));
    if (page.length < 500) break;
  }
  return { records, pairs };
}

/** A run's records or pairs were deleted since it was created: it cannot resume on the same data. */
export class RunDataChangedError extends Error {
  override name = 'RunDataChangedError';
}

/** The records (or pairs) with these ids, in that order; an id no longer in the dataset is an error. */
export async function readSnapshot(store: DistillStore, datasetId: string, ids: { records: number[]; pairs: number[] }): Promise<{ records: StoredRecord[]; pairs: StoredPair[] }> {
  const want = new Set(ids.records), wantPairs = new Set(ids.pairs);
  const byId = new Map<number, StoredRecord>(), pairById = new Map<number, StoredPair>();
  for (let offset = 0; byId.size < want.size; offset += 500) {
    const page = await store.getRecords(datasetId, { offset, limit: 500 });
    for (const r of page) if (want.has(r.id)) byId.set(r.id, r);
    if (page.length < 500) break;
  }
  for (let offset = 0; pairById.size < wantPairs.size; offset += 500) {
    const page = await store.getPairs(datasetId, { offset, limit: 500 });
    for (const p of page) if (wantPairs.has(p.id)) pairById.set(p.id, p);
    if (page.length < 500) break;
  }
  const missing = ids.records.filter((id) => !byId.has(id)).length + ids.pairs.filter((id) => !pairById.has(id)).length;
  if (missing > 0) {
    throw new RunDataChangedError(`${missing} of the run's records or pairs are no longer in the dataset (deleted since the run was created): a resumed run must see the same data. Start a new run on the dataset as it is now.`);
  }
  return { records: ids.records.map((id) => byId.get(id)!), pairs: ids.pairs.map((id) => pairById.get(id)!) };
}

export const isHeldOut = (i: number, every: number): boolean => every > 1 && i % every === every - 1;

/**
 * The student's id for each teacher-token string that is exactly one student token (ambiguous strings dropped). A
 * token's string is what it adds after other text — decoded after a context token and cut after the context's own
 * text —, as a teacher's token strings are: SentencePiece decoders drop the leading space of a decode's first token
 * ("▁cat" alone is "cat", after "a" it is " cat").
 */
export function stringToStudentId(tok: Pick<TextTokenizer, 'vocabSize' | 'decode' | 'encode'>): Map<string, number> {
  const out = new Map<string, number>(), dup = new Set<string>();
  const ctx = tok.encode('a'), head = tok.decode(ctx);
  for (let id = 0; id < tok.vocabSize; id++) {
    let s: string;
    try {
      s = tok.decode([...ctx, id]);
    } catch {
      continue; // a hole in a foreign vocabulary
    }
    if (!s.startsWith(head)) continue;
    s = s.slice(head.length);
    if (s === '' || s.includes('\uFFFD')) continue; // part of a UTF-8 character: not comparable as text
    if (out.has(s)) dup.add(s);
    else out.set(s, id);
  }
  for (const s of dup) out.delete(s);
  return out;
}

/** Aligned teacher rows in the student's ids: row r = ids/logprobs [r·k, (r+1)·k), `n[r]` real entries, rest padding. */
export interface TopKTable {
  k: number;
  ids: Uint32Array;
  logprobs: Float32Array;
  n: Uint8Array;
  count: number;
  /** Cross-tokenizer: 1 for a ULD row (the teacher's own logprobs, descending; no student ids), 0 for an exact one. */
  uld?: Uint8Array;
}

export interface RunData {
  rows: PackedRow[];
  evalRows: PackedRow[];
  /** Prompt tokens of the training records (on-policy sampling starts from them). */
  prompts: Uint32Array[];
  /** Prompt tokens of the held-out records (RL's evaluation answers them). */
  evalPrompts: Uint32Array[];
  pairs: PreferencePair[];
  evalPairs: PreferencePair[];
  topk?: TopKTable;
  stats: RunDataStats;
}

export interface BuildOptions {
  format: RecordFormat;
  tok: TextTokenizer;
  eos: number;
  T: number;
  heldOutEvery: number;
  /** KD from stored top-k: keep only records whose rows line up with the student's tokens; `cross`: the teacher's
   *  tokenizer is another (rows paired by text: cross-data.ts). */
  topk?: { vocab: string[]; rowsOf: (recordId: number) => Promise<Map<number, Uint8Array>>; cross?: boolean };
}

interface AlignedRows {
  ids: number[][];
  logprobs: number[][];
  /** Cross-tokenizer: the row is a ULD row (the teacher's logprobs; ids empty). */
  uld?: boolean[];
  /** Cross-tokenizer: how the answer's tokens paired (counted once the record is kept). */
  pairing?: TokenPairing;
}

/** The record's rows for its answer tokens, or why they do not line up. */
function alignAnswer(rows: ReturnType<typeof unpackTopKRows>, answer: Uint32Array, vocab: string[], toStudent: Map<string, number>): AlignedRows | string {
  if (rows.length !== answer.length) return `${rows.length} teacher rows for ${answer.length} answer tokens`;
  const out: AlignedRows = { ids: [], logprobs: [] };
  for (let j = 0; j < rows.length; j++) {
    const { ids, logprobs: lps } = inStudentIds(rows[j]!, vocab, toStudent);
    if (!ids.includes(answer[j]!)) return `answer token ${j} is not among its teacher row's alternatives (the tokenizers differ)`;
    out.ids.push(ids);
    out.logprobs.push(lps);
  }
  return out;
}

/** A cross-tokenizer answer as aligned rows (a hole where a token has no teacher row) with its pairing. */
function crossRows(a: CrossAnswer | string): AlignedRows | string {
  if (typeof a === 'string') return a;
  const out: AlignedRows = { ids: new Array(a.rows.length), logprobs: new Array(a.rows.length), uld: new Array(a.rows.length), pairing: a.pairing };
  a.rows.forEach((r, j) => { if (r) { out.ids[j] = r.ids; out.logprobs[j] = r.logprobs; out.uld![j] = r.uld; } });
  return out;
}

/** Encodes, splits, aligns and packs a run's records and pairs. */
export async function buildRunData(records: StoredRecord[], pairs: StoredPair[], o: BuildOptions): Promise<RunData> {
  const notes: string[] = [];
  const train: Example[] = [], held: Example[] = [];
  const prompts: Uint32Array[] = [], evalPrompts: Uint32Array[] = [];
  const toStudent = o.topk ? stringToStudentId(o.tok) : undefined;
  const table: AlignedRows = { ids: [], logprobs: [] };
  const cross = { exact: 0, uld: 0, none: 0 };
  let topkRecords = 0, topkSkipped = 0, targetTokens = 0;
  const skipReasons = new Map<string, number>();
  for (const [i, rec] of records.entries()) {
    const enc = encodeRecord(rec.messages, o.format, o.tok, o.eos);
    const heldOut = isHeldOut(i, o.heldOutEvery);
    let aux: Int32Array | undefined;
    if (o.topk) {
      const stored = await o.topk.rowsOf(rec.id);
      aux = new Int32Array(enc.tokens.length).fill(-1);
      let why: string | undefined = enc.answers.length === 0 ? 'no answer' : undefined;
      const aligned: AlignedRows[] = [];
      for (const a of enc.answers) {
        if (why) break;
        const bytes = stored.get(a.turn);
        if (!bytes) { why = 'no teacher top-k for its answer'; break; }
        const answer = enc.tokens.subarray(a.start, a.end);
        const r = o.topk.cross
          ? crossRows(alignAnswerCross(unpackTopKRows(bytes), answer, rec.messages[a.turn]!.content, o.topk.vocab, toStudent!, o.tok, enc.tokens.subarray(0, a.start)))
          : alignAnswer(unpackTopKRows(bytes), answer, o.topk.vocab, toStudent!);
        if (typeof r === 'string') why = r;
        else aligned.push(r);
      }
      if (why) {
        topkSkipped++;
        // Grouped by kind: numbers and quoted text differ from record to record.
        const kind = why.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N');
        skipReasons.set(kind, (skipReasons.get(kind) ?? 0) + 1);
        if (!heldOut) continue; // never trained on; held-out records stay (the same held-out set as any other run)
      } else {
        topkRecords++;
        for (const al of aligned) if (al.pairing) { cross.exact += al.pairing.exact; cross.uld += al.pairing.uld; cross.none += al.pairing.none; }
        enc.answers.forEach((a, n) => {
          const al = aligned[n]!;
          for (let j = a.start; j < a.end; j++) {
            const r = al.ids[j - a.start];
            if (r === undefined) continue; // cross-tokenizer: no teacher row for this token
            aux![j] = table.ids.length;
            table.ids.push(r);
            table.logprobs.push(al.logprobs[j - a.start]!);
            if (o.topk!.cross) (table.uld ??= []).push(al.uld![j - a.start]!);
          }
        });
      }
    }
    const ex: Example = { tokens: enc.tokens, learn: enc.learn, ...(aux ? { aux } : {}) };
    if (heldOut) {
      held.push(ex);
      const start = enc.answers[0]?.start ?? enc.tokens.length;
      if (start > 0) evalPrompts.push(enc.tokens.slice(0, start));
    } else {
      train.push(ex);
      targetTokens += enc.learn.reduce((s, x) => s + x, 0);
      const start = enc.answers[0]?.start ?? enc.tokens.length;
      if (start > 0) prompts.push(enc.tokens.slice(0, start));
    }
  }
  for (const [why, n] of skipReasons) notes.push(`${n} record(s) left out of KD training: ${why}`);
  const crossTotal = cross.exact + cross.uld + cross.none;
  if (crossTotal > 0) {
    const pct = (x: number) => `${Math.round((100 * x) / crossTotal)}%`;
    notes.push(`across tokenizers: ${pct(cross.exact)} of the aligned answers' tokens learn the teacher's distribution exactly (the same token on both sides), ${pct(cross.uld)} by ULD (the teacher's token starts there but differs), ${pct(cross.none)} their label only`);
  }
  const appendEos = false; // encodeRecord closes every record with end-of-text already
  const rows = packRows(train, o.T, o.eos, appendEos);
  // Held-out rows keep their last partial row: a held-out set shorter than one row still gets evaluated.
  const evalRows = packRows(held, o.T, o.eos, appendEos, true);

  const pairOut: PreferencePair[] = [], evalPairs: PreferencePair[] = [];
  let tooLong = 0;
  for (const [i, p] of pairs.entries()) {
    const enc = encodePair(p.prompt, p.chosen, p.rejected, o);
    if (!enc) { tooLong++; continue; }
    (isHeldOut(i, o.heldOutEvery) ? evalPairs : pairOut).push(enc);
  }
  if (tooLong) notes.push(`${tooLong} pair(s) left out: the prompt alone does not fit in T = ${o.T} tokens`);

  let topk: TopKTable | undefined;
  if (o.topk) {
    // Entries of a row: its ids (ULD rows: its logprobs, ids unused). A reduce, not Math.max(...): a million rows.
    const len = (r: number) => Math.max(table.ids[r]!.length, table.logprobs[r]!.length);
    const count = table.ids.length;
    let k = 1;
    for (let r = 0; r < count; r++) k = Math.max(k, len(r));
    topk = { k, ids: new Uint32Array(count * k), logprobs: new Float32Array(count * k), n: new Uint8Array(count), count, ...(table.uld ? { uld: Uint8Array.from(table.uld, Number) } : {}) };
    for (let r = 0; r < count; r++) {
      topk.n[r] = len(r);
      topk.ids.set(table.ids[r]!, r * k);
      topk.logprobs.set(table.logprobs[r]!, r * k);
    }
  }
  const sumTokens = (rs: PackedRow[]) => rs.length * o.T;
  const sumTargets = (rs: PackedRow[]) => rs.reduce((n, r) => n + r.learn.subarray(1).reduce((m, l) => m + (l ? 1 : 0), 0), 0);
  return {
    rows, evalRows, prompts, evalPrompts, pairs: pairOut, evalPairs, ...(topk ? { topk } : {}),
    stats: {
      trainRecords: train.length, heldOutRecords: held.length, trainTokens: sumTokens(rows), heldOutTokens: sumTargets(evalRows), targetTokens,
      trainPairs: pairOut.length, heldOutPairs: evalPairs.length,
      ...(o.topk ? { topkRecords, topkSkipped } : {}), ...(o.topk?.cross ? { crossTokens: cross } : {}), notes,
    },
  };
}

/** A pair as token ids: the prompt (rendered to ask for an answer) and each completion closed like an answer. */
function encodePair(prompt: ChatMessage[], chosen: string, rejected: string, o: BuildOptions): PreferencePair | null {
  const p = promptIds(prompt, o.format, o.tok);
  const close = (text: string) => {
    if (typeof o.format === 'object') {
      // The template's own rendering of the answer turn: its targets (content + closing), after the prompt.
      const enc = encodeRecord([...prompt, { role: 'assistant', content: text }], o.format, o.tok, o.eos);
      const first = enc.learn.indexOf(1), last = enc.learn.lastIndexOf(1);
      return first < 0 ? [o.eos] : Array.from(enc.tokens.subarray(first, last + 1));
    }
    const ids = o.format === 'chat' ? o.tok.encode(`${text}\n`) : o.tok.encode(text);
    ids.push(o.eos);
    return ids;
  };
  const budget = o.T + 1;
  if (p.length === 0 || p.length >= budget) return null;
  // Completions are cut to fit T + 1 with the prompt (both sides equally long at most).
  const c = close(chosen).slice(0, budget - p.length), r = close(rejected).slice(0, budget - p.length);
  return { prompt: p, chosen: c, rejected: r };
}

/** What a run's data is read for: its spec (dataset, method, format, holding out), snapshot and sequence length. */
export interface RunDataSource {
  spec: RunSpec;
  snapshot: { records: number[]; pairs: number[] };
  T: number;
}

/**
 * A run's data from its dataset snapshot, read once: the records and pairs in snapshot order, the tokenizer (made
 * from them at creation — a new BPE is trained on the training records — or the run's own), the stored top-k rows
 * when the method trains on them, encoded and packed.
 */
export async function loadRunData(
  store: DistillStore, src: RunDataSource,
  tokenizer: (records: StoredRecord[], pairs: StoredPair[]) => { tok: TextTokenizer; eos: number },
): Promise<RunData & { tok: TextTokenizer; eos: number }> {
  const { records, pairs } = await readSnapshot(store, src.spec.datasetId, src.snapshot);
  const { tok, eos } = tokenizer(records, pairs);
  const cross = 'kdSource' in src.spec && src.spec.kdSource === 'cross-topk';
  const topk = methodOf(src.spec).teacherInput(src.spec) === 'topk' ? { ...await storeTopK(store, src.spec.datasetId), cross } : undefined;
  const data = await buildRunData(records, pairs, { format: recordFormat(src.spec), tok, eos, T: src.T, heldOutEvery: src.spec.heldOutEvery, ...(topk ? { topk } : {}) });
  return { ...data, tok, eos };
}

/** Where a run's top-k rows come from in the store: the dataset's token table and each record's rows by turn. */
export async function storeTopK(store: DistillStore, datasetId: string): Promise<NonNullable<BuildOptions['topk']>> {
  const vocab = await datasetVocab(store, datasetId);
  if (vocab.length === 0) throw new Error('this dataset has no teacher top-k rows (make them with the feature strategy, whose teacher returns log-probabilities), or choose dense logits from a local teacher');
  return {
    vocab,
    rowsOf: async (recordId) => new Map((await store.getTopKOfRecord(recordId)).map((e) => [e.turn, e.rows])),
  };
}

/**
 * The top-k teacher input of a batch: for each position, the aligned row predicting its label, or a one-hot row
 * on the label where the teacher gave none (its mask is 0 there). Padding slots get distinct unused ids with the
 * uniform share of the row's missing mass, so every divergence stays finite. Cross-tokenizer tables also give the
 * ULD input: at a ULD row's position the teacher's probabilities at τ, descending (uldTeacherRow), with weight 1;
 * its top-k input is the one-hot label row (mask 0), as where the teacher gave nothing.
 */
export function teacherTopK(batch: Batch, rows: readonly PackedRow[], table: TopKTable, V: number, tau = 1): TeacherSignal & { teacherIds: Uint32Array; teacherLogprobs: Float32Array; teacherMask: Float32Array } {
  const { k } = table;
  const N = batch.ids.length, T = N / batch.rows!.length;
  const ids = new Uint32Array(N * k), lps = new Float32Array(N * k), mask = new Float32Array(N);
  const uld = table.uld ? { probs: new Float32Array(N * k), weights: new Float32Array(N) } : undefined;
  const used = new Set<number>();
  for (let n = 0; n < N; n++) {
    const o = n * k;
    used.clear();
    let filled = 0, mass = 0;
    const label = batch.labels[n]!;
    if (batch.weights[n]! > 0) {
      const row = rows[batch.rows![Math.floor(n / T)]!]!;
      const a = row.aux?.[(n % T) + 1] ?? -1;
      if (a >= 0 && uld && table.uld![a]) {
        uld.weights[n] = batch.weights[n]!;
        uld.probs.set(uldTeacherRow(table.logprobs.subarray(a * k, a * k + table.n[a]!), tau, k), o);
      }
      if (a >= 0 && !uld?.weights[n]) {
        mask[n] = 1;
        for (let i = 0; i < table.n[a]!; i++) {
          ids[o + i] = table.ids[a * k + i]!;
          lps[o + i] = table.logprobs[a * k + i]!;
          used.add(ids[o + i]!);
          mass += Math.exp(lps[o + i]!);
        }
        filled = table.n[a]!;
      } else {
        ids[o] = label;
        lps[o] = 0;
        used.add(label);
        mass = 1;
        filled = 1;
      }
    }
    const share = Math.log(Math.max(1 - mass, 1e-12) / Math.max(1, V - filled));
    for (let id = 0, i = filled; i < k; id++) {
      if (used.has(id)) continue;
      ids[o + i] = id;
      lps[o + i] = share;
      i++;
    }
  }
  return { teacherIds: ids, teacherLogprobs: lps, teacherMask: mask, ...(uld ? { teacherUld: uld.probs, uldWeights: uld.weights } : {}) };
}
