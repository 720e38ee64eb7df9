// The order in which a pair trainer (DPO/IPO: pair-trainer.ts; reward model: reward-trainer.ts) visits its preference
// pairs: a seeded shuffle per epoch, walked by a DataCursor (epoch, position) that checkpoints keep, so a resumed run
// sees the same pairs in the same order.
import { Rng } from '../util/rng.ts';
import type { DataCursor } from './batches.ts';

export class PairOrder<P> {
  cursor: DataCursor = { epoch: 0, row: 0 };
  private order: Uint32Array = new Uint32Array(0);
  private orderEpoch = -1;

  /** `perStep` items a step: fewer items than that is refused, saying what to do. */
  constructor(readonly items: readonly P[], readonly seed: number, perStep: number) {
    if (items.length < perStep) throw new Error(`not enough preference pairs: ${items.length} for ${perStep} pairs a step; add pairs (the feedback strategy makes them) or lower the batch size`);
  }

  private orderFor(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch) {
      const o = Uint32Array.from({ length: this.items.length }, (_, i) => i);
      const rng = new Rng((this.seed * 1000003 + epoch) >>> 0);
      for (let i = o.length - 1; i > 0; i--) { const j = rng.int(i + 1); const t = o[i]!; o[i] = o[j]!; o[j] = t; }
      this.order = o;
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** The next `n` items, starting a new epoch (a new shuffle) when one runs out. */
  next(n: number): P[] {
    const out: P[] = [];
    for (let i = 0; i < n; i++) {
      if (this.cursor.row >= this.items.length) this.cursor = { epoch: this.cursor.epoch + 1, row: 0 };
      out.push(this.items[this.orderFor(this.cursor.epoch)[this.cursor.row]!]!);
      this.cursor = { ...this.cursor, row: this.cursor.row + 1 };
    }
    return out;
  }
}
