// Training examples → fixed-shape batches. An example is a token sequence with a per-token "learn" flag (prompt
// tokens are context, completion tokens are targets). Examples are packed end to end into rows of T + 1 tokens
// (no padding waste; attention may see the previous example, as in most packed LM training), and a row yields
// ids = row[0..T), labels = row[1..T], weights = 1 where the label token is a target. The order is a seeded
// shuffle per epoch; the cursor (epoch, position) is all a checkpoint needs to resume the same sequence.
import { NO_LABEL } from '../kernels/loss/loss.ts';
import { Rng } from '../util/rng.ts';

export interface Example {
  tokens: Uint32Array;
  /** learn[i]: token i is a target (its prediction is trained). Absent = every token is a target. */
  learn?: Uint8Array;
  /** aux[i]: a caller's index for token i (e.g. the teacher row predicting it), -1 = none; packed alongside. */
  aux?: Int32Array;
}

/** A packed row of T + 1 tokens; `aux` only when the examples carried one. */
export interface PackedRow {
  tokens: Uint32Array;
  learn: Uint8Array;
  aux?: Int32Array;
}

export interface Batch {
  ids: Uint32Array; // (B, T)
  labels: Uint32Array; // (B, T)
  weights: Float32Array; // (B, T)
  /** Indices into the loader's rows of the batch's B rows (what per-row side data is looked up by). */
  rows?: number[];
}

export interface DataCursor {
  epoch: number;
  /** Index of the next row in this epoch's order. */
  row: number;
}

/**
 * Packs examples (in order) into rows of T + 1 tokens with the learn flags (and aux indices, when the examples
 * carry them) alongside. Each example is followed by `eos` (a target: the model learns to stop) unless
 * `appendEos` is false (examples that end with their own end token). The last partial row is dropped, unless
 * `keepPartial` (held-out data: every target counts, even of a set shorter than one row): then it is filled up
 * with `eos` tokens that are no target.
 */
export function packRows(examples: readonly Example[], T: number, eos: number, appendEos = true, keepPartial = false): PackedRow[] {
  const withAux = examples.some((e) => e.aux !== undefined);
  const rows: PackedRow[] = [];
  const fresh = () => ({ tokens: new Uint32Array(T + 1), learn: new Uint8Array(T + 1), ...(withAux ? { aux: new Int32Array(T + 1).fill(-1) } : {}) });
  let row: PackedRow = fresh(), fill = 0;
  const push = (t: number, l: number, a: number) => {
    row.tokens[fill] = t; row.learn[fill] = l;
    if (row.aux) row.aux[fill] = a;
    fill++;
    if (fill === T + 1) {
      rows.push(row);
      // The next row starts with this row's last token as context, so no target is lost at the seam.
      const last = row;
      row = fresh();
      row.tokens[0] = last.tokens[T]!; row.learn[0] = last.learn[T]!;
      if (row.aux) row.aux[0] = last.aux![T]!;
      fill = 1;
    }
  };
  for (const ex of examples) {
    for (let i = 0; i < ex.tokens.length; i++) push(ex.tokens[i]!, ex.learn ? ex.learn[i]! : 1, ex.aux ? ex.aux[i]! : -1);
    if (appendEos) push(eos, 1, -1);
  }
  if (keepPartial && row.learn.subarray(1, fill).some((l) => l !== 0)) {
    row.tokens.fill(eos, fill);
    rows.push(row);
  }
  return rows;
}

export class BatchLoader {
  private order: Uint32Array = new Uint32Array(0);
  private orderEpoch = -1;

  constructor(
    readonly rows: readonly PackedRow[],
    readonly B: number,
    readonly T: number,
    readonly seed: number,
    public cursor: DataCursor = { epoch: 0, row: 0 },
    readonly shuffle = true,
  ) {
    if (rows.length < B) throw new Error(`not enough data: ${rows.length} rows of ${T + 1} tokens for a batch of ${B}; add text or lower B/T`);
    for (const r of rows) if (r.tokens.length !== T + 1) throw new Error(`row of ${r.tokens.length} tokens, expected T + 1 = ${T + 1}`);
  }

  private orderFor(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch) {
      const o = Uint32Array.from({ length: this.rows.length }, (_, i) => i);
      const rng = new Rng((this.seed * 1000003 + epoch) >>> 0);
      if (this.shuffle) for (let i = o.length - 1; i > 0; i--) { const j = rng.int(i + 1); const t = o[i]!; o[i] = o[j]!; o[j] = t; }
      this.order = o;
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** Indices (into `rows`) of the next batch's B rows; advances the cursor (an epoch's end rolls into the next). */
  nextRows(): number[] {
    const picked: number[] = [];
    for (let b = 0; b < this.B; b++) {
      if (this.cursor.row >= this.rows.length) this.cursor = { epoch: this.cursor.epoch + 1, row: 0 };
      picked.push(this.orderFor(this.cursor.epoch)[this.cursor.row]!);
      this.cursor = { ...this.cursor, row: this.cursor.row + 1 };
    }
    return picked;
  }

  /** The next batch (the rows of nextRows()); advances the cursor. */
  next(): Batch {
    const { B, T } = this;
    const ids = new Uint32Array(B * T), labels = new Uint32Array(B * T), weights = new Float32Array(B * T);
    const picked = this.nextRows();
    for (let b = 0; b < B; b++) {
      const r = this.rows[picked[b]!]!;
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = r.tokens[t]!;
        const target = r.learn[t + 1]! !== 0;
        labels[b * T + t] = target ? r.tokens[t + 1]! : NO_LABEL;
        weights[b * T + t] = target ? 1 : 0;
      }
    }
    return { ids, labels, weights, rows: picked };
  }
}

/**
 * Deterministic batches for evaluation: rows in storage order, at most `maxBatches` batches of B rows. With
 * `padLast`, rows that do not fill a last batch still count: it is padded with rows of weight 0 (which add
 * nothing to any loss), so even fewer than B held-out rows give an evaluation.
 */
export function evalBatches(rows: readonly PackedRow[], B: number, T: number, maxBatches: number, padLast = false): Batch[] {
  const full = Math.floor(rows.length / B);
  const n = Math.min(maxBatches, padLast ? Math.ceil(rows.length / B) : full);
  if (n === 0) return [];
  const padded = n > full ? [...rows, ...Array.from({ length: n * B - rows.length }, () => ({ tokens: new Uint32Array(T + 1), learn: new Uint8Array(T + 1) }))] : rows;
  const loader = new BatchLoader(padded, B, T, 0, { epoch: 0, row: 0 }, false);
  return Array.from({ length: n }, () => {
    const b = loader.next();
    b.rows = b.rows!.map((r) => (r < rows.length ? r : 0)); // padding rows (weight 0) point at a real row
    return b;
  });
}
