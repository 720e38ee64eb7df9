// CPU reference for the optimizer kernels: global gradient norm + clip scale + non-finite flag, and one AdamW
// step (PyTorch's torch.optim.AdamW semantics: decoupled weight decay, bias-corrected moments) over the regions
// of a parameter slab. All in f64: the oracle for the WGSL kernels and the plain statement of what they compute.

/** Largest finite f32: the GPU accumulates squares in f32, so a sum of squares above it overflows to Inf there. */
export const F32_MAX = 3.4028234663852886e38;

/** The 4 floats of the GPU 'stats' buffer, in this order. */
export interface GradStats {
  /** sqrt(Σ g²); +Inf when the flag is set. */
  norm: number;
  /** maxNorm > 0 ? min(1, maxNorm / (norm + 1e-6)) : 1 (so 0 for a flagged step with clipping on). */
  clipScale: number;
  /** 1 when some gradient is NaN/±Inf or Σ g² overflows f32, else 0. */
  nonFinite: number;
  /** Σ g²; +Inf when the flag is set. */
  sumSq: number;
}

/** Epsilon added to the norm in the clip scale (as torch.nn.utils.clip_grad_norm_). */
export const CLIP_EPS = 1e-6;

/** clipScale for a norm: maxNorm ≤ 0 disables clipping. */
export function clipScaleRef(norm: number, maxNorm: number): number {
  return maxNorm > 0 ? Math.min(1, maxNorm / (norm + CLIP_EPS)) : 1;
}

/** Global norm of the whole gradient slab (P floats) and what the trainer needs from it. */
export function gradNormRef(g: ArrayLike<number>, maxNorm: number): GradStats {
  let sumSq = 0;
  let bad = false;
  for (let i = 0; i < g.length; i++) {
    const x = g[i]!;
    if (!Number.isFinite(x)) bad = true;
    sumSq += x * x;
  }
  if (bad || !(sumSq <= F32_MAX)) return { norm: Infinity, clipScale: clipScaleRef(Infinity, maxNorm), nonFinite: 1, sumSq: Infinity };
  const norm = Math.sqrt(sumSq);
  return { norm, clipScale: clipScaleRef(norm, maxNorm), nonFinite: 0, sumSq };
}

/** A range of the slab (in floats) updated with one weight decay; norms and biases get 0. */
export interface OptimRegion {
  offset: number;
  count: number;
  weightDecay: number;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based step count t (bias corrections 1 − β^t). */
  step: number;
}

export interface AdamWState {
  p: Float64Array; // (P) parameter slab
  m: Float64Array; // (P) first moment
  v: Float64Array; // (P) second moment
}

/**
 * One AdamW step, returned as new arrays (elements outside `regions` are copied unchanged). For every element of
 * every region: g = grad·clipScale, m = β1 m + (1−β1) g, v = β2 v + (1−β2) g², m̂ = m/(1−β1^t), v̂ = v/(1−β2^t),
 * p = p − lr·(m̂/(sqrt(v̂) + eps) + wd·p). With stats.nonFinite set the step is skipped: p, m, v unchanged.
 */
export function adamwRef(state: AdamWState, grad: ArrayLike<number>, hp: AdamWHyper, regions: readonly OptimRegion[], stats: Pick<GradStats, 'clipScale' | 'nonFinite'>): AdamWState {
  const P = state.p.length;
  if (state.m.length !== P || state.v.length !== P || grad.length < P) {
    throw new Error(`adamwRef: p has ${P} elements, m ${state.m.length}, v ${state.v.length}, grad ${grad.length}`);
  }
  const out: AdamWState = { p: state.p.slice(), m: state.m.slice(), v: state.v.slice() };
  if (stats.nonFinite) return out;
  const { lr, beta1, beta2, eps, step } = hp;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (const r of regions) {
    if (r.offset < 0 || r.offset + r.count > P) throw new Error(`adamwRef: region [${r.offset}, ${r.offset + r.count}) outside the slab of ${P}`);
    for (let i = r.offset; i < r.offset + r.count; i++) {
      const g = grad[i]! * stats.clipScale;
      const m = beta1 * state.m[i]! + (1 - beta1) * g;
      const v = beta2 * state.v[i]! + (1 - beta2) * g * g;
      const mHat = m / bc1;
      const vHat = v / bc2;
      const p = state.p[i]!;
      out.m[i] = m;
      out.v[i] = v;
      out.p[i] = p - lr * (mHat / (Math.sqrt(vHat) + eps) + r.weightDecay * p);
    }
  }
  return out;
}

/** Merges adjacent regions with the same weight decay; sorts by offset; throws on overlap. Shared with the launcher. */
export function mergeRegions(regions: readonly OptimRegion[], what = 'regions'): OptimRegion[] {
  const sorted = [...regions].sort((a, b) => a.offset - b.offset);
  const out: OptimRegion[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.offset < last.offset + last.count) {
      throw new Error(`${what}: region [${r.offset}, ${r.offset + r.count}) overlaps [${last.offset}, ${last.offset + last.count})`);
    }
    if (last && r.offset === last.offset + last.count && r.weightDecay === last.weightDecay) last.count += r.count;
    else out.push({ ...r });
  }
  return out;
}
