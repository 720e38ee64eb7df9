// The optimizer's CPU reference: a hand-worked AdamW step, the constant-gradient closed form, an independent
// transcription of PyTorch's AdamW update, the global norm / clip / non-finite rules, and region merging.
import { describe, expect, it } from 'vitest';
import { adamwRef, clipScaleRef, gradNormRef, mergeRegions, type AdamWState } from '../../src/kernels/optim/optim.ref.ts';
import { optimInputs, REGIONS_1000, runOptimizerRef } from '../../src/kernels/optim/optim.check.ts';
import { Rng } from '../../src/util/rng.ts';

const state = (p: number[], m = p.map(() => 0), v = p.map(() => 0)): AdamWState =>
  ({ p: Float64Array.from(p), m: Float64Array.from(m), v: Float64Array.from(v) });
const HP = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
const noClip = { clipScale: 1, nonFinite: 0 };

/** torch.optim.AdamW's single-tensor update, transcribed op by op (torch/optim/adamw.py, non-capturable path). */
function torchAdamW(s: AdamWState, grad: ArrayLike<number>, lr: number, b1: number, b2: number, eps: number, wd: number, step: number): void {
  for (let i = 0; i < s.p.length; i++) {
    const g = grad[i]!;
    s.p[i] = s.p[i]! * (1 - lr * wd); // param.mul_(1 - lr * weight_decay)
    s.m[i] = s.m[i]! + (g - s.m[i]!) * (1 - b1); // exp_avg.lerp_(grad, 1 - beta1)
    s.v[i] = s.v[i]! * b2 + g * g * (1 - b2); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    const stepSize = lr / (1 - b1 ** step);
    const denom = Math.sqrt(s.v[i]!) / Math.sqrt(1 - b2 ** step) + eps;
    s.p[i] = s.p[i]! - stepSize * (s.m[i]! / denom); // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

describe('adamwRef', () => {
  it('matches a hand-worked first step', () => {
    // p = 1, g = 0.5, lr = 0.1, β = (0.9, 0.999), eps = 1e-8, wd = 0.01, t = 1:
    // m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025, m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25, sqrt(v̂) = 0.5,
    // m̂/(sqrt(v̂) + eps) = 0.5/0.50000001 = 0.99999998000000040, + wd·p = 1.00999998000000040,
    // p = 1 − 0.1·1.00999998000000040 = 0.89900000199999996.
    const out = adamwRef(state([1]), [0.5], { ...HP, step: 1 }, [{ offset: 0, count: 1, weightDecay: 0.01 }], noClip);
    expect(out.m[0]).toBeCloseTo(0.05, 15);
    expect(out.v[0]).toBeCloseTo(0.00025, 17);
    expect(out.p[0]).toBeCloseTo(0.89900000199999996, 15);
  });

  it('follows the constant-gradient closed form p ← p − lr·(g/(|g| + eps) + wd·p) for 10 steps', () => {
    // With a constant g, m = (1 − β1^t) g and v = (1 − β2^t) g², so m̂ = g and v̂ = g² at every t.
    const g = -0.3;
    const wd = 0.05;
    let s = state([2]);
    let p = 2;
    for (let t = 1; t <= 10; t++) {
      s = adamwRef(s, [g], { ...HP, step: t }, [{ offset: 0, count: 1, weightDecay: wd }], noClip);
      p = p - HP.lr * (g / (Math.abs(g) + HP.eps) + wd * p);
      expect(s.p[0]).toBeCloseTo(p, 13);
    }
  });

  it('agrees with an op-by-op transcription of torch.optim.AdamW over 6 steps', () => {
    const rng = new Rng(11);
    const P = 37;
    let s = state(Array.from(rng.uniformArray(P)));
    const t = state(Array.from(s.p));
    for (let step = 1; step <= 6; step++) {
      const g = rng.uniformArray(P);
      const lr = 0.01 * step;
      s = adamwRef(s, g, { lr, beta1: 0.8, beta2: 0.99, eps: 1e-6, step }, [{ offset: 0, count: P, weightDecay: 0.1 }], noClip);
      torchAdamW(t, g, lr, 0.8, 0.99, 1e-6, 0.1, step);
    }
    for (let i = 0; i < P; i++) {
      expect(s.p[i]).toBeCloseTo(t.p[i]!, 13);
      expect(s.m[i]).toBeCloseTo(t.m[i]!, 14);
      expect(s.v[i]).toBeCloseTo(t.v[i]!, 14);
    }
  });

  it('scales the gradient by clipScale', () => {
    const a = adamwRef(state([1, 1]), [0.8, -0.2], { ...HP, step: 1 }, [{ offset: 0, count: 2, weightDecay: 0 }], { clipScale: 0.25, nonFinite: 0 });
    const b = adamwRef(state([1, 1]), [0.2, -0.05], { ...HP, step: 1 }, [{ offset: 0, count: 2, weightDecay: 0 }], noClip);
    expect([...a.m]).toEqual([...b.m]);
    expect([...a.p]).toEqual([...b.p]);
  });

  it('skips the whole step when the non-finite flag is set, and touches nothing outside the regions', () => {
    const s0 = state([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]);
    const skipped = adamwRef(s0, [NaN, 1, 1, 1], { ...HP, step: 3 }, [{ offset: 0, count: 4, weightDecay: 0.1 }], { clipScale: 0, nonFinite: 1 });
    expect([...skipped.p, ...skipped.m, ...skipped.v]).toEqual([...s0.p, ...s0.m, ...s0.v]);
    expect(skipped.p).not.toBe(s0.p);
    const partial = adamwRef(s0, [1, 1, 1, 1], { ...HP, step: 3 }, [{ offset: 1, count: 2, weightDecay: 0.1 }], noClip);
    expect([partial.p[0], partial.p[3], partial.m[0], partial.v[3]]).toEqual([1, 4, 0.1, 4]);
    expect(partial.p[1]).not.toBe(2);
    expect(() => adamwRef(s0, [1, 1, 1, 1], { ...HP, step: 1 }, [{ offset: 2, count: 3, weightDecay: 0 }], noClip)).toThrow(/region \[2, 5\) outside the slab of 4/);
  });

  it('runs a multi-step check configuration with the skip and the gaps in place', () => {
    const cfg = { P: 1000, regions: REGIONS_1000, steps: 3, maxNorm: 1, seed: 1, poke: [{ step: 2, index: 5, value: Infinity }] };
    const ref = runOptimizerRef(cfg);
    expect(ref.statsPerStep.map((s) => s.nonFinite)).toEqual([0, 1, 0]);
    expect(ref.p[310]).toBe(optimInputs(cfg).p0[310]); // a gap between regions
    const oneStep = runOptimizerRef({ ...cfg, steps: 1 });
    expect(ref.p[0]).not.toBe(oneStep.p[0]); // step 3 did update after the skipped step 2
  });
});

describe('gradNormRef', () => {
  it('computes the norm, the clip scale and no flag for finite gradients', () => {
    const s = gradNormRef([3, 0, -4], 1);
    expect(s).toEqual({ norm: 5, clipScale: 1 / (5 + 1e-6), nonFinite: 0, sumSq: 25 });
    expect(gradNormRef([3, -4], 10).clipScale).toBe(1);
    expect(gradNormRef([3, -4], 0).clipScale).toBe(1);
    expect(gradNormRef([0], 1)).toEqual({ norm: 0, clipScale: 1, nonFinite: 0, sumSq: 0 });
    expect(clipScaleRef(1.999999, 2)).toBe(1);
  });

  it('flags NaN, ±Inf and sums of squares that overflow f32', () => {
    for (const bad of [NaN, Infinity, -Infinity, 1e20]) {
      expect(gradNormRef([1, bad, 2], 1)).toEqual({ norm: Infinity, clipScale: 0, nonFinite: 1, sumSq: Infinity });
      expect(gradNormRef([1, bad, 2], 0).clipScale).toBe(1);
    }
    expect(gradNormRef([1e19], 0).nonFinite).toBe(0); // 1e38 < 3.4e38
  });
});

describe('mergeRegions', () => {
  it('sorts, merges adjacent equal-decay regions and rejects overlaps', () => {
    const r = (offset: number, count: number, weightDecay: number) => ({ offset, count, weightDecay });
    expect(mergeRegions([r(128, 64, 0.1), r(0, 64, 0.1), r(64, 64, 0.1), r(192, 10, 0), r(256, 3, 0)]))
      .toEqual([r(0, 192, 0.1), r(192, 10, 0), r(256, 3, 0)]);
    expect(() => mergeRegions([r(0, 65, 0), r(64, 1, 0)], 'adamw')).toThrow(/adamw: region \[64, 65\) overlaps \[0, 65\)/);
  });
});
