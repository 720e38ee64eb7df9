// CPU reference for causal grouped-query attention, forward and backward: the oracle the WGSL kernels are tested
// against, and the plain statement of what they compute. Naive: every score of a row is formed, masked, softmaxed
// and summed, in f64. Layout (row-major): q (B, T, H, D), k and v (B, T, Hkv, D), o and dout (B, T, H, D),
// lse (B, H, T). Query head h reads kv head floor(h / (H / Hkv)) (Hugging Face's repeat_kv grouping).
//   S[t, j] = scale · q[t]·k[j] for j ≤ t (causal, diagonal included); P = softmax_j(S); o[t] = Σ_j P[t, j] v[j]
//   lse[t] = log Σ_j exp(S[t, j])

export interface AttentionDims {
  B: number;
  T: number;
  /** Query heads. */
  H: number;
  /** Key/value heads; H must be a multiple of Hkv. */
  Hkv: number;
  /** Head dimension. */
  D: number;
}

function checkDims(fn: string, dims: AttentionDims, arrays: Record<string, [ArrayLike<number>, number]>): void {
  const { B, T, H, Hkv, D } = dims;
  for (const [name, v] of Object.entries({ B, T, H, Hkv, D })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
  }
  if (H % Hkv !== 0) throw new Error(`${fn}: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  for (const [name, [a, n]] of Object.entries(arrays)) {
    if (a.length !== n) throw new Error(`${fn}: ${name} has ${a.length} elements, expected ${n}`);
  }
}

/** Index of element d of row (b, t, head) in a (B, T, heads, D) tensor. */
const at = (b: number, t: number, head: number, d: number, T: number, heads: number, D: number): number =>
  ((b * T + t) * heads + head) * D + d;

/** Softmax probabilities of row t of head h (length t + 1) and the row's log-sum-exp. */
function rowProbs(q: ArrayLike<number>, k: ArrayLike<number>, dims: AttentionDims, scale: number, b: number, h: number, t: number): { p: Float64Array; lse: number } {
  const { T, H, Hkv, D } = dims;
  const hk = Math.floor(h / (H / Hkv));
  const s = new Float64Array(t + 1);
  let max = -Infinity;
  for (let j = 0; j <= t; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[at(b, t, h, d, T, H, D)]! * k[at(b, j, hk, d, T, Hkv, D)]!;
    s[j] = scale * dot;
    max = Math.max(max, s[j]!);
  }
  let sum = 0;
  for (let j = 0; j <= t; j++) sum += (s[j] = Math.exp(s[j]! - max));
  for (let j = 0; j <= t; j++) s[j]! /= sum;
  return { p: s, lse: max + Math.log(sum) };
}

/** o (B, T, H, D) and lse (B, H, T) of causal attention. `scale` defaults to 1/√D. */
export function attentionForwardRef(
  q: ArrayLike<number>, // (B, T, H, D)
  k: ArrayLike<number>, // (B, T, Hkv, D)
  v: ArrayLike<number>, // (B, T, Hkv, D)
  dims: AttentionDims,
  scale = 1 / Math.sqrt(dims.D),
): { o: Float64Array; lse: Float64Array } {
  const { B, T, H, Hkv, D } = dims;
  checkDims('attentionForwardRef', dims, { q: [q, B * T * H * D], k: [k, B * T * Hkv * D], v: [v, B * T * Hkv * D] });
  const o = new Float64Array(B * T * H * D); // (B, T, H, D)
  const lse = new Float64Array(B * H * T); // (B, H, T)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++) {
        const { p, lse: l } = rowProbs(q, k, dims, scale, b, h, t);
        lse[(b * H + h) * T + t] = l;
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < D; d++) o[at(b, t, h, d, T, H, D)]! += p[j]! * v[at(b, j, hk, d, T, Hkv, D)]!;
        }
      }
    }
  }
  return { o, lse };
}

/**
 * Gradients of Σ dout·o with respect to q, k and v, by the chain rule written out row by row:
 *   dP[t, j] = dout[t]·v[j];  dS[t, j] = P[t, j] (dP[t, j] − Σ_i P[t, i] dP[t, i])
 *   dq[t] = scale Σ_j dS[t, j] k[j];  dk[j] += scale dS[t, j] q[t];  dv[j] += P[t, j] dout[t]
 * dk and dv sum over every query head of the kv head's group. All three are returned freshly (assigned).
 */
export function attentionBackwardRef(
  q: ArrayLike<number>, // (B, T, H, D)
  k: ArrayLike<number>, // (B, T, Hkv, D)
  v: ArrayLike<number>, // (B, T, Hkv, D)
  dout: ArrayLike<number>, // (B, T, H, D)
  dims: AttentionDims,
  scale = 1 / Math.sqrt(dims.D),
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, H, Hkv, D } = dims;
  checkDims('attentionBackwardRef', dims, {
    q: [q, B * T * H * D], k: [k, B * T * Hkv * D], v: [v, B * T * Hkv * D], dout: [dout, B * T * H * D],
  });
  const dq = new Float64Array(B * T * H * D); // (B, T, H, D)
  const dk = new Float64Array(B * T * Hkv * D); // (B, T, Hkv, D)
  const dv = new Float64Array(B * T * Hkv * D); // (B, T, Hkv, D)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++) {
        const { p } = rowProbs(q, k, dims, scale, b, h, t);
        const dp = new Float64Array(t + 1);
        let pdp = 0; // Σ_i P[t, i] dP[t, i]
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += dout[at(b, t, h, d, T, H, D)]! * v[at(b, j, hk, d, T, Hkv, D)]!;
          dp[j] = dot;
          pdp += p[j]! * dot;
        }
        for (let j = 0; j <= t; j++) {
          const ds = p[j]! * (dp[j]! - pdp);
          for (let d = 0; d < D; d++) {
            const iq = at(b, t, h, d, T, H, D);
            const ik = at(b, j, hk, d, T, Hkv, D);
            dq[iq]! += scale * ds * k[ik]!;
            dk[ik]! += scale * ds * q[iq]!;
            dv[ik]! += p[j]! * dout[iq]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
