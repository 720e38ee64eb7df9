// Group-relative policy gradient (issue #24's RL: GRPO, DeepSeekMath; RLOO, Ahmadian et al. 2024) as per-token
// weights of the fused CE kernel, like DPO (dpo.ts): the student samples G completions o_1..o_G of each prompt, a
// reward r_i scores each, advantages are normalised within the group, and the loss over the B = prompts·G rows is
//   L = (1/B) Σ_i (1/|o_i|) Σ_t [ −A_i · ρ_it + β · KL_it ],   ρ_it = exp(l_it − sg(l_it)) (= 1, gradient ∇l_it)
//   KL_it = exp(r_it − l_it) − (r_it − l_it) − 1   (the k3 estimator of KL(π ‖ π_ref), ≥ 0, unbiased)
// with l_it = log π(o_it | …) the policy's and r_it the frozen reference's log-probability of the sampled token
// (one update per batch of samples: the clipped ratio of PPO is 1 there, so it is left out). Its gradient is
// Σ g_it ∇l_it with g_it = (1/B)(1/|o_i|)(−A_i + β(1 − exp(r_it − l_it))); the CE kernel's gradient of Σ w·CE
// is −Σ w ∇l, so the weights are w_it = −g_it. Pure host math; the oracle and the implementation at once.

/** How advantages are normalised within a group of G samples of one prompt. */
export type AdvantageKind =
  /** GRPO: (r − mean) / (std + 1e-4), std with Bessel's correction (as TRL). */
  | 'grpo'
  /** Dr. GRPO: r − mean (no division by the group's spread). */
  | 'mean'
  /** RLOO: r_i − mean of the other G − 1 rewards. */
  | 'rloo';

export const ADVANTAGE_EPS = 1e-4;

/** Advantages of B = prompts·G rewards, groups of G consecutive rows. */
export function groupAdvantages(rewards: ArrayLike<number>, G: number, kind: AdvantageKind = 'grpo'): Float64Array {
  const B = rewards.length;
  if (!Number.isInteger(G) || G < 2) throw new Error(`advantages: a group needs at least 2 samples, got G = ${G}`);
  if (B % G !== 0) throw new Error(`advantages: ${B} rewards are not whole groups of ${G}`);
  for (let i = 0; i < B; i++) if (!Number.isFinite(rewards[i]!)) throw new Error(`advantages: reward ${i} is ${rewards[i]} (not finite)`);
  const out = new Float64Array(B);
  for (let g0 = 0; g0 < B; g0 += G) {
    let sum = 0;
    for (let j = 0; j < G; j++) sum += rewards[g0 + j]!;
    const mean = sum / G;
    let ss = 0;
    for (let j = 0; j < G; j++) ss += (rewards[g0 + j]! - mean) ** 2;
    const std = Math.sqrt(ss / (G - 1));
    for (let j = 0; j < G; j++) {
      const r = rewards[g0 + j]!;
      out[g0 + j] = kind === 'grpo' ? (r - mean) / (std + ADVANTAGE_EPS) : kind === 'mean' ? r - mean : r - (sum - r) / (G - 1);
    }
  }
  return out;
}

export interface PolicyGradientInput {
  B: number;
  T: number;
  /** 1 on each row's completion tokens (the positions whose label is a sampled token), else 0. */
  mask: ArrayLike<number>; // (B·T)
  /** The policy's log-probability of each position's label (0 where masked out). */
  logp: ArrayLike<number>; // (B·T)
  /** The frozen reference's, same positions. */
  refLogp: ArrayLike<number>; // (B·T)
  /** One advantage per row. */
  advantages: ArrayLike<number>; // (B)
  /** Weight of the KL penalty. */
  beta: number;
}

export interface PolicyGradientResult {
  /** The loss value: −mean A (0 once normalised) + β · mean KL. */
  loss: number;
  /** Mean over rows of the per-token mean k3 KL to the reference. */
  kl: number;
  /** The CE kernel's per-position weights (0 off the completion). */
  weights: Float32Array; // (B·T)
  /** Completion tokens per row. */
  lengths: Uint32Array; // (B)
}

/** The loss and the CE weights of one policy-gradient batch (see the banner). Rows without completion tokens are
 *  an error: a sample that ended at once has no token to learn from, and the caller drops it before. */
export function policyGradientWeights(x: PolicyGradientInput): PolicyGradientResult {
  const { B, T, beta } = x;
  const N = B * T;
  for (const [name, a, n] of [['mask', x.mask, N], ['logp', x.logp, N], ['refLogp', x.refLogp, N], ['advantages', x.advantages, B]] as const) {
    if (a.length !== n) throw new Error(`policy gradient: ${name} has ${a.length} values, expected ${n}`);
  }
  if (!(beta >= 0) || !Number.isFinite(beta)) throw new Error(`policy gradient: β must be a finite number ≥ 0, got ${beta}`);
  const lengths = new Uint32Array(B);
  for (let i = 0; i < N; i++) if (x.mask[i]! > 0) lengths[Math.floor(i / T)]!++;
  for (let b = 0; b < B; b++) if (lengths[b] === 0) throw new Error(`policy gradient: row ${b} has no completion token`);
  const weights = new Float32Array(N);
  let loss = 0, kl = 0;
  for (let b = 0; b < B; b++) {
    const A = x.advantages[b]!, inv = 1 / (B * lengths[b]!);
    loss -= A / B;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!(x.mask[i]! > 0)) continue;
      const d = x.refLogp[i]! - x.logp[i]!;
      const e = Math.exp(d);
      const k3 = e - d - 1;
      kl += k3 * inv;
      loss += beta * k3 * inv;
      weights[i] = -inv * (-A + beta * (1 - e)); // w = −∂L/∂l
    }
  }
  return { loss, kl, weights, lengths };
}
