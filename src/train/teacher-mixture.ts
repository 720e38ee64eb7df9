// Token-level KD from a weighted mixture of teachers that share the student's tokenizer: the teachers' dense logits
// (each already laid out at the student's width V, src/train/vocab-align.ts) become ONE row of logits z per position
// whose tempered softmax is the mixture of theirs,
//
//     softmax(z/τ) = Σ_i w_i · softmax(z_i/τ)      (w_i ≥ 0, Σ w_i = 1)
//     z[v]        = τ · log Σ_i w_i · exp(z_i[v]/τ − lse_i) + τ · Σ_i w_i · lse_i,   lse_i = log Σ_v exp(z_i[v]/τ)
//
// so the loss kernel (src/kernels/loss/classifier_loss.wgsl), which takes the teacher's softmax(z/τ) of the logits it
// is given, trains toward the mixture without knowing there is one. The last term is a per-row constant (softmax
// does not see it): it keeps z at the teachers' scale, and one teacher of weight 1 comes back as its own logits.
// Everything is float64 and max-shifted (a log-sum-exp per teacher row, another across the teachers per column):
// no overflow, no NaN; a column no teacher gives any probability stays at PADDING (probability 0 in every softmax),
// and so do the vocabulary padding columns Vr..V. mixedProbsRef is the oracle: the mixture's probabilities, summed
// directly.

/** What a column of probability 0 gets (the GPU model's padding logit: src/model/gpu-model-types.ts). */
export const MIX_PADDING = Math.fround(-1e30);

export interface MixInput {
  /** One (N, V) row-major logits array per teacher; a teacher of weight 0 may be undefined (it is never read). */
  logits: readonly (Float32Array | undefined)[];
  /** One weight per teacher, each ≥ 0, summing to > 0 (normalised here). */
  weights: readonly number[];
  N: number;
  V: number;
  /** τ > 0 of the softmax the loss takes (1 for evaluation's KL). */
  temperature: number;
  /** Real tokens (≤ V): columns Vr..V are vocabulary padding. Default V. */
  realVocab?: number;
}

/** Normalised weights (Σ = 1), after checking each is finite and ≥ 0 and that they sum to > 0. */
export function normaliseWeights(weights: readonly number[], where = 'teacher mixture'): number[] {
  if (weights.length === 0) throw new Error(`${where}: no weights`);
  for (const [i, w] of weights.entries()) {
    if (!(Number.isFinite(w) && w >= 0)) throw new Error(`${where}: weight ${i} must be a finite number ≥ 0, got ${w}`);
  }
  const sum = weights.reduce((s, w) => s + w, 0);
  if (!(sum > 0)) throw new Error(`${where}: the weights sum to 0: give at least one teacher a weight > 0`);
  return weights.map((w) => w / sum);
}

function checkInput(x: MixInput): { w: number[]; Vr: number } {
  const { N, V, temperature: tau } = x;
  const Vr = x.realVocab ?? V;
  if (x.logits.length !== x.weights.length) throw new Error(`teacher mixture: ${x.logits.length} teachers' logits for ${x.weights.length} weights`);
  if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`teacher mixture: the temperature must be > 0, got ${tau}`);
  if (!(Number.isInteger(Vr) && Vr >= 1 && Vr <= V)) throw new Error(`teacher mixture: realVocab ${Vr} must be an integer in [1, V = ${V}]`);
  const w = normaliseWeights(x.weights);
  for (const [i, z] of x.logits.entries()) {
    if (w[i] === 0) continue;
    if (!z) throw new Error(`teacher mixture: teacher ${i} has weight ${w[i]} and no logits`);
    if (z.length !== N * V) throw new Error(`teacher mixture: teacher ${i}'s logits have ${z.length} values, expected N·V = ${N}·${V}`);
  }
  return { w, Vr };
}

/** log Σ_v exp(z[off + v]/τ) over v < Vr, max-shifted; throws when the row has no finite logit. */
function rowLse(z: Float32Array, off: number, Vr: number, tau: number, teacher: number, row: number): number {
  let max = -Infinity;
  for (let v = 0; v < Vr; v++) max = Math.max(max, z[off + v]! / tau);
  if (!Number.isFinite(max)) throw new Error(`teacher mixture: teacher ${teacher}'s row ${row} has no finite logit (max ${max})`);
  let s = 0;
  for (let v = 0; v < Vr; v++) s += Math.exp(z[off + v]! / tau - max);
  return max + Math.log(s);
}

/**
 * The (N, V) logits whose softmax at τ is the weighted mixture of the teachers' softmaxes at τ (see the banner).
 * Teachers of weight 0 are skipped (their logits are not read).
 */
export function mixTeacherLogits(x: MixInput): Float32Array {
  const { N, V, temperature: tau } = x;
  const { w, Vr } = checkInput(x);
  const used = w.flatMap((wi, i) => (wi > 0 ? [i] : []));
  const K = used.length;
  const logW = used.map((i) => Math.log(w[i]!));
  const zs = used.map((i) => x.logits[i]!);
  const out = new Float32Array(N * V).fill(MIX_PADDING);
  const lse = new Float64Array(K), terms = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    const off = n * V;
    let shift = 0;
    for (let k = 0; k < K; k++) {
      lse[k] = rowLse(zs[k]!, off, Vr, tau, used[k]!, n);
      shift += w[used[k]!]! * lse[k]!;
    }
    for (let v = 0; v < Vr; v++) {
      // log(w_k · p_k[v]) per teacher, then their log-sum-exp.
      let a = -Infinity;
      for (let k = 0; k < K; k++) {
        terms[k] = logW[k]! + zs[k]![off + v]! / tau - lse[k]!;
        if (terms[k]! > a) a = terms[k]!;
      }
      if (a === -Infinity) continue; // no teacher gives this token any probability: stays at padding
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.exp(terms[k]! - a);
      out[off + v] = tau * (a + Math.log(s) + shift);
    }
  }
  return out;
}

/** Oracle: the mixture's probabilities (N, Vr) in float64, Σ_i w_i softmax(z_i/τ) summed directly (no logs). */
export function mixedProbsRef(x: MixInput): Float64Array {
  const { N, V, temperature: tau } = x;
  const { w, Vr } = checkInput(x);
  const out = new Float64Array(N * Vr);
  for (const [i, z] of x.logits.entries()) {
    if (w[i] === 0) continue;
    for (let n = 0; n < N; n++) {
      let max = -Infinity;
      for (let v = 0; v < Vr; v++) max = Math.max(max, z![n * V + v]! / tau);
      let s = 0;
      for (let v = 0; v < Vr; v++) s += Math.exp(z![n * V + v]! / tau - max);
      for (let v = 0; v < Vr; v++) out[n * Vr + v] = out[n * Vr + v]! + w[i]! * Math.exp(z![n * V + v]! / tau - max) / s;
    }
  }
  return out;
}

/**
 * Weighted mean over rows (weight > 0) of −log softmax(z)[label]: the cross-entropy of a mixture's logits at τ = 1
 * (evaluation's "the teacher's own loss" for a mixture, which has no model to run). Undefined when no row counts.
 */
export function logitsCe(z: Float32Array, labels: ArrayLike<number>, weights: ArrayLike<number>, V: number, realVocab = V): number | undefined {
  let sum = 0, count = 0;
  for (let n = 0; n < weights.length; n++) {
    const wn = weights[n]!;
    if (!(wn > 0)) continue;
    let max = -Infinity;
    for (let v = 0; v < realVocab; v++) max = Math.max(max, z[n * V + v]!);
    let s = 0;
    for (let v = 0; v < realVocab; v++) s += Math.exp(z[n * V + v]! - max);
    sum += wn * (max + Math.log(s) - z[n * V + labels[n]!]!);
    count += wn;
  }
  return count > 0 ? sum / count : undefined;
}
