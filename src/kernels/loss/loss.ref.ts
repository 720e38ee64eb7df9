// CPU reference for the fused classifier loss (classifier_loss.wgsl): plain f64 loops, forward and backward in one
// call, exactly as the kernel defines them. The oracle of the GPU tests and the plain statement of the math.
//
// Per row n of N = B·T rows over a vocabulary of V (z = student logits, y = label, w = weight):
//   s = softmax(z / τ), t = the teacher at τ (dense: softmax(zt / τ); top-k: see teacherBins)
//   KD_n = divergence(t, s) over the bins, CE_n = −log softmax(z)_y (no temperature; 0 when y = NO_LABEL)
//   losses[n] = [w·KD_n, w·CE_n]
//   dz[n, j] = lossScale · w · (kdWeight · ∂KD/∂z_j + ceWeight · ∂CE/∂z_j), all 0 when w = 0
//   ∂KD/∂z_j = (1/τ) · s_j · (g_bin(j) − Σ_b s_b g_b) with g_b = ∂KD/∂s_b,  ∂CE/∂z_j = softmax(z)_j − 1[j = y]
// Vocabulary padding (realVocab = Vr < V): the row is its first Vr columns — the loss of the padded problem is the
// loss of the (N, Vr) problem, whatever the padding columns hold, and dz is 0 on them.
import { MIN_MISSING_MASS, NO_LABEL, resolveObjective, type KdObjective, type TopKPolicy } from './loss.config.ts';

export type TeacherRef =
  | { kind: 'dense'; logits: ArrayLike<number> } // (N, V)
  | { kind: 'topk'; k: number; ids: ArrayLike<number>; logprobs: ArrayLike<number>; policy: TopKPolicy }; // (N, k) each

/** What the loss is, apart from the rows it is taken over: the teacher, the objective and the terms' weights. */
export interface ClassifierLossSettings {
  teacher?: TeacherRef;
  objective: KdObjective;
  temperature: number;
  kdWeight: number;
  ceWeight: number;
  lossScale: number;
  beta?: number;
  lambda?: number;
}

export interface ClassifierLossRefArgs extends ClassifierLossSettings {
  N: number;
  V: number;
  /** Real tokens (default V): columns realVocab..V of the logits (and dense teacher logits) are padding. */
  realVocab?: number;
  logits: ArrayLike<number>; // (N, V) student logits z
  labels?: ArrayLike<number>; // (N) u32, NO_LABEL = no CE term
  weights: ArrayLike<number>; // (N)
}

export interface ClassifierLossRefResult {
  losses: Float64Array; // (N, 2): [w·KD, w·CE]
  dz: Float64Array; // (N, V)
}

/** The teacher over the divergence's bins, and which bin each token falls in. */
export interface TeacherBins {
  t: Float64Array; // (bins)
  /** binOf[j] = bin of token j, −1 for a token inside the 'tail-bucket' rest bin. */
  binOf: Int32Array; // (V)
  /** Bin index of the rest bin ('tail-bucket' with k < V), else −1. */
  rest: number;
}

function logSoftmax(x: ArrayLike<number>, off: number, n: number, scale: number): Float64Array {
  const out = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[off + i]! * scale);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[off + i]! * scale - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = x[off + i]! * scale - lse;
  return out;
}

/**
 * Teacher distribution of row n at temperature τ.
 * dense: t = softmax(zt / τ), one bin per token.
 * top-k (ids r, logprobs lp, m = Σ exp(lp)): the k ids get t = m · softmax(lp / τ), and the missing mass 1 − m:
 *   'renormalize': dropped, t = softmax(lp / τ) on the ids and 0 elsewhere;
 *   'uniform': spread evenly over the V − k other tokens;
 *   'tail-bucket': one extra bin 'everything else' with t_rest = 1 − m (only when k < V).
 * The missing mass is floored at MIN_MISSING_MASS.
 */
export function teacherBins(teacher: TeacherRef, n: number, V: number, tau: number): TeacherBins {
  const binOf = new Int32Array(V);
  if (teacher.kind === 'dense') {
    const lt = logSoftmax(teacher.logits, n * V, V, 1 / tau);
    for (let j = 0; j < V; j++) binOf[j] = j;
    return { t: lt.map(Math.exp), binOf, rest: -1 };
  }
  const { k, ids, logprobs, policy } = teacher;
  const q = logSoftmax(logprobs, n * k, k, 1 / tau).map(Math.exp);
  let m = 0;
  for (let r = 0; r < k; r++) m += Math.exp(logprobs[n * k + r]!);
  const missing = Math.max(1 - m, MIN_MISSING_MASS);
  const hasRest = policy === 'tail-bucket' && k < V;
  const t = new Float64Array(policy === 'tail-bucket' ? k + (hasRest ? 1 : 0) : V);
  if (policy === 'uniform' && k < V) t.fill(missing / (V - k));
  for (let j = 0; j < V; j++) binOf[j] = policy === 'tail-bucket' ? -1 : j;
  for (let r = 0; r < k; r++) {
    const id = ids[n * k + r]!;
    if (policy === 'tail-bucket') {
      binOf[id] = r;
      t[r] = m * q[r]!;
    } else {
      t[id] = policy === 'renormalize' ? q[r]! : m * q[r]!;
    }
  }
  if (hasRest) t[k] = missing;
  return { t, binOf, rest: hasRest ? k : -1 };
}

/** x · log(x / y) with 0 · log 0 = 0. */
const xlog = (x: number, y: number): number => (x === 0 ? 0 : x * Math.log(x / y));

/** Divergence between teacher bins t and student bins s, and g_b = ∂KD/∂s_b. */
export function divergence(obj: KdObjective, t: Float64Array, s: Float64Array, beta = 0.5, lambda = 0.1): { kd: number; g: Float64Array } {
  const g = new Float64Array(s.length);
  let kd = 0;
  for (let b = 0; b < s.length; b++) {
    const tb = t[b]!;
    const sb = s[b]!;
    switch (obj) {
      case 'none':
        break;
      case 'fkl': // KL(t‖s)
        kd += xlog(tb, sb);
        g[b] = -tb / sb;
        break;
      case 'rkl': // KL(s‖t)
        kd += xlog(sb, tb);
        g[b] = Math.log(sb) - Math.log(tb) + 1;
        break;
      case 'jsd': {
        // TRL generalized_jsd_loss: β·KL(t‖M) + (1−β)·KL(s‖M), M = β t + (1−β) s
        const M = beta * tb + (1 - beta) * sb;
        kd += beta * xlog(tb, M) + (1 - beta) * xlog(sb, M);
        g[b] = (1 - beta) * Math.log(sb / M);
        break;
      }
      case 'tvd':
        kd += 0.5 * Math.abs(tb - sb);
        g[b] = 0.5 * Math.sign(sb - tb);
        break;
      case 'skew_fkl': {
        // KL(t ‖ λ t + (1−λ) s)
        const M = lambda * tb + (1 - lambda) * sb;
        kd += xlog(tb, M);
        g[b] = (-(1 - lambda) * tb) / M;
        break;
      }
      case 'skew_rkl': {
        // KL(s ‖ λ s + (1−λ) t)
        const M = lambda * sb + (1 - lambda) * tb;
        kd += xlog(sb, M);
        g[b] = Math.log(sb / M) + 1 - (lambda * sb) / M;
        break;
      }
    }
  }
  return { kd, g };
}

export function classifierLossRef(a: ClassifierLossRefArgs): ClassifierLossRefResult {
  const { N, V } = a;
  const Vr = a.realVocab ?? V;
  if (!(Number.isInteger(Vr) && Vr >= 1 && Vr <= V)) throw new Error(`classifierLossRef: realVocab ${Vr} must be an integer in [1, V = ${V}]`);
  if (Vr === V) return lossRef(a);
  // The padded problem is the (N, Vr) problem on the first Vr columns; dz is 0 on the padding.
  const cut = (x: ArrayLike<number>): Float64Array => {
    const out = new Float64Array(N * Vr);
    for (let n = 0; n < N; n++) for (let j = 0; j < Vr; j++) out[n * Vr + j] = x[n * V + j]!;
    return out;
  };
  if (a.logits.length < N * V) throw new Error(`classifierLossRef: logits has ${a.logits.length} elements, needs N·V = ${N}·${V}`);
  const teacher: TeacherRef | undefined = a.teacher?.kind === 'dense' ? { kind: 'dense', logits: cut(a.teacher.logits) } : a.teacher;
  const r = lossRef({ ...a, V: Vr, realVocab: Vr, logits: cut(a.logits), teacher });
  const dz = new Float64Array(N * V);
  for (let n = 0; n < N; n++) dz.set(r.dz.subarray(n * Vr, (n + 1) * Vr), n * V);
  return { losses: r.losses, dz };
}

function lossRef(a: ClassifierLossRefArgs): ClassifierLossRefResult {
  const { N, V, temperature: tau } = a;
  if (a.logits.length < N * V) throw new Error(`classifierLossRef: logits has ${a.logits.length} elements, needs N·V = ${N}·${V}`);
  const teacherKind = a.teacher?.kind ?? 'none';
  const policy = a.teacher?.kind === 'topk' ? a.teacher.policy : undefined;
  const k = a.teacher?.kind === 'topk' ? a.teacher.k : undefined;
  const obj = resolveObjective('classifierLossRef', a.objective, { beta: a.beta, lambda: a.lambda, teacher: teacherKind, policy, k, V });
  const losses = new Float64Array(N * 2);
  const dz = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const w = a.weights[n]!;
    if (w === 0) continue; // masked row: nothing read, everything 0
    const off = n * V;
    const scale = a.lossScale * w;

    // Cross-entropy at temperature 1.
    const y = a.labels ? a.labels[n]! : NO_LABEL;
    if (y !== NO_LABEL && !(Number.isInteger(y) && y >= 0 && y < V)) throw new Error(`classifierLossRef: row ${n}: label ${y} is not in [0, V = ${V})`);
    if (y !== NO_LABEL) {
      const lp = logSoftmax(a.logits, off, V, 1);
      losses[2 * n + 1] = -w * lp[y]!;
      for (let j = 0; j < V; j++) dz[off + j] = scale * a.ceWeight * (Math.exp(lp[j]!) - (j === y ? 1 : 0));
    }
    if (obj === 'none' || !a.teacher) continue;

    // KD at temperature τ over the teacher's bins.
    const s = logSoftmax(a.logits, off, V, 1 / tau).map(Math.exp); // (V)
    const { t, binOf, rest } = teacherBins(a.teacher, n, V, tau);
    const sBins = new Float64Array(t.length);
    for (let j = 0; j < V; j++) sBins[binOf[j]! >= 0 ? binOf[j]! : rest]! += s[j]!;
    const { kd, g } = divergence(obj, t, sBins, a.beta, a.lambda);
    losses[2 * n] = w * kd;
    // h_b = s_b g_b; fkl in closed form (−t_b) so that s → 0 never gives 0/0.
    let S = 0;
    for (let b = 0; b < t.length; b++) S += obj === 'fkl' ? -t[b]! : sBins[b]! * g[b]!;
    for (let j = 0; j < V; j++) {
      const b = binOf[j]! >= 0 ? binOf[j]! : rest;
      // h_j = s_j · g_bin(j); for fkl a token of the rest bin carries the fraction s_j / s_rest of that bin's −t_rest.
      const h = obj !== 'fkl' ? s[j]! * g[b]! : b === rest ? (-t[b]! * s[j]!) / sBins[b]! : -t[b]!;
      dz[off + j]! += (scale * a.kdWeight * (h - s[j]! * S)) / tau;
    }
  }
  return { losses, dz };
}
