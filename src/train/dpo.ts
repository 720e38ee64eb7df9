// Rank optimization on preference pairs (survey §Distillation: DPO, and IPO) against a frozen reference copy of
// the student. Built on the fused CE kernel: a sequence's log-probability is −Σ CE over its completion tokens,
// and the gradient of the pair loss w.r.t. the logits is the CE gradient of each completion token scaled by a
// signed per-sequence coefficient, so one loss plan serves both passes of a step:
//   pass 1 (no backward): policy log-probabilities π_c, π_r of the batch (reference ones come from the frozen model)
//   pass 2: weights = coefficient × completion mask, loss scale 1 → backward → AdamW.
//   DPO: m = (π_c − π_r) − (ref_c − ref_r), L = −log σ(β m), coef_c = β σ(−β m) / P, coef_r = −coef_c
//   IPO: h = m − 1/(2β), L = h²,                              coef_c = −2h / P,       coef_r = −coef_c
// LoRA dropout: both policy passes take the same dropoutSeed (the same masks), so the coefficients are those of the
// dropped-out forward that pass 2 differentiates (as TRL computes both from one forward); the reference takes none.
import { NO_LABEL } from '../kernels/loss/loss.ts';
import type { GpuModel, TrainBatch } from '../model/gpu-model.ts';

export interface PreferencePair {
  prompt: ArrayLike<number>;
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
}

export interface PairObjective {
  kind: 'dpo' | 'ipo';
  beta: number;
}

export interface PairStepResult {
  loss: number;
  /** Share of pairs whose policy margin m is > 0 (chosen preferred more than by the reference). */
  accuracy: number;
  meanMargin: number;
  gradNorm: number;
  skipped: boolean;
}

/** Rows 2i (prompt + chosen) and 2i+1 (prompt + rejected), right-padded to T; targets only on completion tokens. */
export function pairBatch(pairs: readonly PreferencePair[], T: number, pad = 0): { batch: TrainBatch; mask: Float32Array } {
  const B = 2 * pairs.length, N = B * T;
  const ids = new Uint32Array(N).fill(pad), labels = new Uint32Array(N).fill(NO_LABEL), mask = new Float32Array(N);
  pairs.forEach((p, i) => {
    for (const [row, completion] of [[2 * i, p.chosen], [2 * i + 1, p.rejected]] as const) {
      const seq = [...Array.from(p.prompt), ...Array.from(completion)];
      if (p.prompt.length === 0) throw new Error(`pair ${i}: empty prompt (start with at least one token)`);
      if (completion.length === 0) throw new Error(`pair ${i}: empty ${row % 2 ? 'rejected' : 'chosen'} completion`);
      if (seq.length > T + 1) throw new Error(`pair ${i}: prompt + completion is ${seq.length} tokens, more than T + 1 = ${T + 1}`);
      for (let t = 0; t < seq.length - 1; t++) {
        ids[row * T + t] = seq[t]!;
        if (t + 1 >= p.prompt.length) { labels[row * T + t] = seq[t + 1]!; mask[row * T + t] = 1; }
      }
    }
  });
  return { batch: { ids, labels, weights: mask }, mask };
}

/** Σ log p over each row's completion tokens, from a pass whose weights were the completion mask. */
export function sequenceLogprobs(rowLosses: Float32Array, B: number, T: number): Float64Array {
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[b] = out[b]! - rowLosses[2 * (b * T + t) + 1]!;
  return out;
}

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** The pair loss (mean over pairs) and the signed per-sequence coefficients of its logits gradient. */
export function pairCoefficients(pi: Float64Array, ref: Float64Array, o: PairObjective): { loss: number; coef: Float64Array; margins: Float64Array } {
  const P = pi.length / 2;
  if (!(o.beta > 0)) throw new Error(`${o.kind}: beta must be > 0, got ${o.beta}`);
  const coef = new Float64Array(2 * P), margins = new Float64Array(P);
  let loss = 0;
  for (let i = 0; i < P; i++) {
    const m = pi[2 * i]! - pi[2 * i + 1]! - (ref[2 * i]! - ref[2 * i + 1]!);
    margins[i] = m;
    let c: number;
    if (o.kind === 'dpo') {
      loss -= logSigmoid(o.beta * m) / P;
      c = (o.beta * sigmoid(-o.beta * m)) / P;
    } else {
      const h = m - 1 / (2 * o.beta);
      loss += (h * h) / P;
      c = (-2 * h) / P;
    }
    coef[2 * i] = c;
    coef[2 * i + 1] = -c;
  }
  return { loss, coef, margins };
}

/**
 * One optimizer step of DPO/IPO. `policy` and `reference` are GpuModels of the same config with B = 2·pairs,
 * objective 'none' (cross-entropy); the reference holds the frozen starting weights and is never updated.
 * Without `update` the gradients are computed (policy.grads) and no step is taken. `dropoutSeed`: the policy's LoRA
 * dropout masks for both its passes (absent: no dropout, e.g. evaluation).
 */
export async function pairStep(policy: GpuModel, reference: GpuModel, pairs: readonly PreferencePair[], o: PairObjective, update?: { lr: number; step: number }, dropoutSeed?: number): Promise<PairStepResult> {
  if (policy.B !== 2 * pairs.length) throw new Error(`${o.kind}: the policy model has B = ${policy.B}, expected 2 × ${pairs.length} pairs`);
  const { batch, mask } = pairBatch(pairs, policy.T);
  reference.setBatch(batch);
  const ref = sequenceLogprobs((await reference.run({ backward: false })).rowLosses, policy.B, policy.T);
  policy.setBatch(batch);
  const seeded = dropoutSeed === undefined ? {} : { dropoutSeed };
  const pi = sequenceLogprobs((await policy.run({ backward: false, ...seeded })).rowLosses, policy.B, policy.T);
  const { loss, coef, margins } = pairCoefficients(pi, ref, o);
  const weights = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) weights[i] = mask[i]! * coef[Math.floor(i / policy.T)]!;
  policy.setBatch({ ...batch, weights }, 1, 1);
  const r = await policy.run({ update, ...seeded });
  return {
    loss, accuracy: margins.filter((m) => m > 0).length / margins.length,
    meanMargin: margins.reduce((a, b) => a + b, 0) / margins.length, gradNorm: r.gradNorm, skipped: r.skipped,
  };
}
