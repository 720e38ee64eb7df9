// CPU reference of a reward model (issue #24: "distilled reward model training"): the student's architecture with a
// scalar head on the last token — score_b = w · hf[b, last_b], hf the final-norm output, last_b the row's last real
// token (rows are right-padded; HF's *ForSequenceClassification pools the same token: the last one that is not
// padding) — trained on preference pairs with the Bradley–Terry loss
//   L = mean_p softplus(−(s_chosen,p − s_rejected,p − margin))      (= −log σ(Δ − margin))
// In f64, forward and backward by hand; the oracle of the GPU reward objective and of the HF export's scores.
// A batch holds P pairs as 2P rows: chosen rows 0..P−1, rejected rows P..2P−1.
import { rmsnormBackwardRef } from '../kernels/norm/norm.ref.ts';
import type { ModelConfig } from './config.ts';
import { paramLayout } from './params.ts';
import { refBackward, refForward, type RefActs } from './ref-model.ts';

/** softplus(x) = log(1 + eˣ), stable for any x. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** σ(x), stable for any x. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export interface BradleyTerryResult {
  /** Mean over pairs of softplus(−(s_c − s_r − margin)). */
  loss: number;
  /** ∂loss/∂s_c per pair; ∂loss/∂s_r = −dChosen. */
  dChosen: Float64Array;
  /** Share of pairs with s_c > s_r (ties count as wrong). */
  accuracy: number;
}

/** The Bradley–Terry loss of P pairs' scores (optionally a margin each pair must be won by). */
export function bradleyTerry(chosen: ArrayLike<number>, rejected: ArrayLike<number>, margin: number | ArrayLike<number> = 0): BradleyTerryResult {
  const P = chosen.length;
  if (rejected.length !== P) throw new Error(`bradleyTerry: ${P} chosen scores but ${rejected.length} rejected`);
  if (P === 0) throw new Error('bradleyTerry: no pairs');
  const m = (p: number) => (typeof margin === 'number' ? margin : margin[p]!);
  const dChosen = new Float64Array(P);
  let loss = 0, right = 0;
  for (let p = 0; p < P; p++) {
    const d = chosen[p]! - rejected[p]! - m(p);
    loss += softplus(-d);
    dChosen[p] = -sigmoid(-d) / P; // d/dd softplus(−d) = −σ(−d)
    if (chosen[p]! > rejected[p]!) right++;
  }
  return { loss: loss / P, dChosen, accuracy: right / P };
}

/** Index of each row's last real token: lengths[b] − 1 (a row of length 0 is an error). */
function lastIndex(lengths: ArrayLike<number>, B: number, T: number): number[] {
  if (lengths.length !== B) throw new Error(`reward: ${lengths.length} lengths for ${B} rows`);
  return Array.from({ length: B }, (_, b) => {
    const n = lengths[b]!;
    if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`reward: row ${b} has length ${n}, expected 1..${T}`);
    return n - 1;
  });
}

export interface RefRewardForward {
  /** One score per row. */
  scores: Float64Array; // (B)
  acts: RefActs;
  /** The pooled final-norm rows: hf[b, last_b]. */
  pooled: Float64Array; // (B, C)
  last: number[];
}

/** Scores of B right-padded rows (ids (B, T), `lengths` real tokens each) under the head w (C). */
export function refRewardScores(config: ModelConfig, slab: ArrayLike<number>, w: ArrayLike<number>, ids: Uint32Array, B: number, T: number, lengths: ArrayLike<number>): RefRewardForward {
  const C = config.hidden;
  if (w.length !== C) throw new Error(`reward: the score head has ${w.length} values, the model is ${C} wide`);
  const last = lastIndex(lengths, B, T);
  const { acts } = refForward(config, slab, ids, B, T);
  const pooled = new Float64Array(B * C);
  const scores = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const row = (b * T + last[b]!) * C;
    let s = 0;
    for (let c = 0; c < C; c++) {
      pooled[b * C + c] = acts.hf[row + c]!;
      s += acts.hf[row + c]! * w[c]!;
    }
    scores[b] = s;
  }
  return { scores, acts, pooled, last };
}

export interface RefRewardBatch {
  /** (2P, T): P chosen rows, then their P rejected rows, right-padded. */
  ids: Uint32Array;
  T: number;
  P: number;
  /** Real tokens per row (2P). */
  lengths: ArrayLike<number>;
  /** The margin each pair must be won by (default 0). */
  margin?: number | ArrayLike<number>;
}

export interface RefRewardLossAndGrad extends BradleyTerryResult {
  scores: Float64Array; // (2P)
  /** ∂loss/∂slab (slab layout). */
  grad: Float64Array;
  /** ∂loss/∂w. */
  dw: Float64Array; // (C)
}

/** The Bradley–Terry loss of a pair batch and its gradient with respect to the model's slab and the head w. */
export function refRewardLossAndGrad(config: ModelConfig, slab: ArrayLike<number>, w: ArrayLike<number>, batch: RefRewardBatch): RefRewardLossAndGrad {
  const { P, T, ids } = batch;
  const B = 2 * P, C = config.hidden, N = B * T;
  const f = refRewardScores(config, slab, w, ids, B, T, batch.lengths);
  const bt = bradleyTerry(f.scores.subarray(0, P), f.scores.subarray(P), batch.margin ?? 0);
  // ∂L/∂score: +dChosen for a chosen row, −dChosen for its rejected row.
  const dscore = new Float64Array(B);
  for (let p = 0; p < P; p++) { dscore[p] = bt.dChosen[p]!; dscore[P + p] = -bt.dChosen[p]!; }
  const dw = new Float64Array(C);
  const dhf = new Float64Array(N * C);
  for (let b = 0; b < B; b++) {
    const row = (b * T + f.last[b]!) * C;
    for (let c = 0; c < C; c++) {
      dw[c]! += dscore[b]! * f.pooled[b * C + c]!;
      dhf[row + c] = dscore[b]! * w[c]!;
    }
  }
  // hf = rmsnorm(xFinal; final_norm): back through it here, then the layers by refBackward (no logits gradient).
  const layout = paramLayout(config);
  const norm = layout.entries.find((e) => e.name === 'final_norm')!;
  const normW = Array.from({ length: C }, (_, c) => slab[norm.offset + c]!);
  const nb = rmsnormBackwardRef(dhf, f.acts.xFinal, normW, N, C, config.rmsNormEps);
  const grad = refBackward(config, slab, f.acts, new Float64Array(N * config.vocabSize), undefined, nb.dx);
  for (let c = 0; c < C; c++) grad[norm.offset + c]! += nb.dweight[c]!;
  return { ...bt, scores: f.scores, grad, dw };
}
