// CPU reference for the ULD loss (uld_loss.wgsl): Universal Logit Distillation (Boizard et al. 2024), the
// cross-tokenizer KD of issue #23, in plain f64 loops, forward and backward in one call. The oracle of the GPU tests
// and the plain statement of the math.
//
// Per row n of N (z = student logits (N, V), the first Vr columns real tokens; q = teacher (N, K); w = row weight):
//   p = softmax(z_n[0..Vr) / τ), p_(1) ≥ p_(2) ≥ … sorted descending, ties by lower column first
//   ULD_n = Σ_{i<K} |p_(i) − q_{n,i}| + Σ_{i≥K} p_(i)   (L1 between the sorted vectors, q zero-padded to Vr)
//   losses[n] = w·ULD_n
//   g[n, j] = scale · w · ∂ULD_n/∂z_j,  ∂ULD/∂z_j = (1/τ) · p_j · (g_j − Σ_m p_m g_m)
//     with g_j = sign(p_j − q_rank(j)) for the K columns of the student's top-K (sign(0) = 0), 1 for the others.
// Padding columns (Vr..V) are never read and get g = 0; a row with w = 0 is never read: loss 0, g row 0.
// The teacher row q is the teacher's own sorted distribution (uldTeacherRow): it may have fewer than K non-zero
// entries and any sum ≤ 1; its token ids do not matter, which is what lets ULD cross tokenizers.

/** Largest K of the kernel (the top-K picks live in workgroup memory): KMAX in uld_loss.wgsl. */
export const ULD_KMAX = 256;

export interface UldLossRefArgs {
  N: number; // rows, B·T
  V: number; // row width of the logits
  /** Real tokens (default V): columns realVocab..V are vocabulary padding. */
  realVocab?: number;
  K: number; // teacher entries per row
  temperature: number; // τ > 0
  logits: ArrayLike<number>; // (N, V) student logits z
  teacher: ArrayLike<number>; // (N, K) q, each row sorted descending, zero-padded
  weights: ArrayLike<number>; // (N) row weights, 0 = no ULD term
  /** The gradient's factor (the trainer's lossScale · uldWeight). */
  scale: number;
}

export interface UldLossRefResult {
  losses: Float64Array; // (N) w·ULD_n
  grad: Float64Array; // (N, V) scale·w·∂ULD/∂z
}

/** Throws `${what}: …` unless 1 ≤ K ≤ min(Vr, ULD_KMAX), Vr ≤ V and τ > 0 (finite). */
export function checkUldShape(what: string, V: number, Vr: number, K: number, tau: number): void {
  if (!(Number.isInteger(Vr) && Vr >= 1 && Vr <= V)) throw new Error(`${what}: realVocab ${Vr} must be an integer in [1, V = ${V}]`);
  if (!(Number.isInteger(K) && K >= 1)) throw new Error(`${what}: K must be a positive integer, got ${K}`);
  if (K > Vr) throw new Error(`${what}: K = ${K} is larger than the real vocabulary Vr = ${Vr}`);
  if (K > ULD_KMAX) throw new Error(`${what}: K = ${K} is over the kernel's maximum of ${ULD_KMAX}`);
  if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`${what}: temperature must be > 0, got ${tau}`);
}

/**
 * One teacher row for ULD from the teacher's top-k logprobs (any order, −∞ allowed but not all): softmax(lp / τ)
 * over the k entries, sorted descending, zero-padded to K ≥ k. The host makes this row; the kernel reads it as is.
 */
export function uldTeacherRow(logprobs: ArrayLike<number>, tau: number, K = logprobs.length): Float64Array {
  const k = logprobs.length;
  if (k > K) throw new Error(`uldTeacherRow: ${k} logprobs do not fit in K = ${K}`);
  if (!(tau > 0 && Number.isFinite(tau))) throw new Error(`uldTeacherRow: temperature must be > 0, got ${tau}`);
  const out = new Float64Array(K);
  if (k === 0) return out;
  let max = -Infinity;
  for (let r = 0; r < k; r++) max = Math.max(max, logprobs[r]! / tau);
  if (!Number.isFinite(max)) throw new Error(`uldTeacherRow: logprobs must have a finite maximum, got ${max * tau}`);
  let sum = 0;
  for (let r = 0; r < k; r++) sum += Math.exp(logprobs[r]! / tau - max);
  for (let r = 0; r < k; r++) out[r] = Math.exp(logprobs[r]! / tau - max) / sum;
  out.subarray(0, k).sort((a, b) => b - a);
  return out;
}

/** The student's columns 0..Vr sorted by p descending, ties by lower column first (the kernel's pick order). */
export function uldOrder(p: ArrayLike<number>): number[] {
  return [...Array(p.length).keys()].sort((a, b) => p[b]! - p[a]! || a - b);
}

/** ULD of one row from its real logits zr (Vr) and teacher q (K): the loss and ∂ULD/∂z (Vr). */
export function uldRowRef(zr: ArrayLike<number>, q: ArrayLike<number>, K: number, tau: number): { uld: number; dz: Float64Array } {
  const Vr = zr.length;
  let max = -Infinity;
  for (let j = 0; j < Vr; j++) max = Math.max(max, zr[j]! / tau);
  let sum = 0;
  for (let j = 0; j < Vr; j++) sum += Math.exp(zr[j]! / tau - max);
  const p = Float64Array.from(zr, (x) => Math.exp(x / tau - max) / sum);
  const order = uldOrder(p);
  const gp = new Float64Array(Vr).fill(1); // ∂ULD/∂p_j
  let uld = 0;
  for (let i = 0; i < Vr; i++) {
    const j = order[i]!;
    if (i < K) {
      uld += Math.abs(p[j]! - q[i]!);
      gp[j] = Math.sign(p[j]! - q[i]!);
    } else {
      uld += p[j]!;
    }
  }
  let G = 0;
  for (let j = 0; j < Vr; j++) G += p[j]! * gp[j]!;
  const dz = Float64Array.from(p, (pj, j) => (pj * (gp[j]! - G)) / tau);
  return { uld, dz };
}

export function uldLossRef(a: UldLossRefArgs): UldLossRefResult {
  const { N, V, K, temperature: tau } = a;
  const Vr = a.realVocab ?? V;
  checkUldShape('uldLossRef', V, Vr, K, tau);
  if (a.logits.length < N * V) throw new Error(`uldLossRef: logits has ${a.logits.length} elements, needs N·V = ${N}·${V}`);
  if (a.teacher.length < N * K) throw new Error(`uldLossRef: teacher has ${a.teacher.length} elements, needs N·K = ${N}·${K}`);
  const losses = new Float64Array(N);
  const grad = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const w = a.weights[n]!;
    if (w === 0) continue; // no ULD term: nothing read, everything 0
    const zr = Float64Array.from({ length: Vr }, (_, j) => a.logits[n * V + j]!);
    const q = Float64Array.from({ length: K }, (_, i) => a.teacher[n * K + i]!);
    const { uld, dz } = uldRowRef(zr, q, K, tau);
    losses[n] = w * uld;
    for (let j = 0; j < Vr; j++) grad[n * V + j] = a.scale * w * dz[j]!;
  }
  return { losses, grad };
}
