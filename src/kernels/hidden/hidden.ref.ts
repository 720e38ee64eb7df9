// CPU reference of the hidden-state similarity loss (feature / hidden-state distillation), in f64: the oracle of
// hidden_loss.wgsl and the plain statement of what it computes. Rows n < N, compared width C (the teacher's width;
// the student's hidden has already been projected to it):
//   mse:    loss_n = (1/C)·Σ_c (p_nc − h_nc)²
//   cosine: loss_n = 1 − p_n·h_n / ((|p_n| + ε)(|h_n| + ε)),  ε = HIDDEN_COS_EPS = 1e-8, so a zero vector gives
//           cos = 0 (loss 1) instead of 0/0; the gradient's |p|-term is 0 when |p_n| = 0.
// Outputs losses[n] = w_n·loss_n and dp[n, c] = lossScale·w_n·∂loss_n/∂p_nc; a row with w_n = 0 gives exact zeros
// and its p/h are never read (masked rows may hold garbage).

export type HiddenLossKind = 'mse' | 'cosine';
export const HIDDEN_LOSS_KINDS: readonly HiddenLossKind[] = ['mse', 'cosine'];
/** Added to both norms of the cosine loss. */
export const HIDDEN_COS_EPS = 1e-8;

export interface HiddenLossRefArgs {
  N: number;
  /** The compared width (the teacher's hidden width Ct). */
  Cs: number;
  p: ArrayLike<number>; // (N, Cs) projected student hidden
  h: ArrayLike<number>; // (N, Cs) teacher hidden
  weights: ArrayLike<number>; // (N)
  kind: HiddenLossKind;
  lossScale: number;
}

export interface HiddenLossRefResult {
  losses: Float64Array; // (N) w·loss_n
  dp: Float64Array; // (N, Cs) lossScale·w·∂loss_n/∂p
}

export function checkHiddenLossArgs(what: string, a: { N: number; Cs: number; kind: string; lossScale: number }): void {
  for (const [k, v] of [['N', a.N], ['Cs', a.Cs]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (!HIDDEN_LOSS_KINDS.includes(a.kind as HiddenLossKind)) throw new Error(`${what}: kind must be 'mse' or 'cosine', got '${a.kind}'`);
  if (!Number.isFinite(a.lossScale)) throw new Error(`${what}: lossScale must be a finite number, got ${a.lossScale}`);
}

export function hiddenLossRef(a: HiddenLossRefArgs): HiddenLossRefResult {
  checkHiddenLossArgs('hiddenLossRef', a);
  const { N, Cs: C } = a;
  for (const [k, arr, n] of [['p', a.p, N * C], ['h', a.h, N * C], ['weights', a.weights, N]] as const) {
    if (arr.length !== n) throw new Error(`hiddenLossRef: ${k} has ${arr.length} elements, expected ${n} (N=${N}, Cs=${C})`);
  }
  const losses = new Float64Array(N);
  const dp = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const w = a.weights[n]!;
    if (w === 0) continue;
    const base = n * C, g = a.lossScale * w;
    if (a.kind === 'mse') {
      let s = 0;
      for (let c = 0; c < C; c++) {
        const d = a.p[base + c]! - a.h[base + c]!;
        s += d * d;
        dp[base + c] = (g * 2 * d) / C;
      }
      losses[n] = (w * s) / C;
    } else {
      let ph = 0, pp = 0, hh = 0;
      for (let c = 0; c < C; c++) {
        const x = a.p[base + c]!, y = a.h[base + c]!;
        ph += x * y; pp += x * x; hh += y * y;
      }
      const rp = Math.sqrt(pp), np = rp + HIDDEN_COS_EPS, nh = Math.sqrt(hh) + HIDDEN_COS_EPS;
      const k1 = g / (np * nh), k2 = rp > 0 ? (g * ph) / (np * np * nh * rp) : 0;
      for (let c = 0; c < C; c++) dp[base + c] = k2 * a.p[base + c]! - k1 * a.h[base + c]!;
      losses[n] = w * (1 - ph / (np * nh));
    }
  }
  return { losses, dp };
}
