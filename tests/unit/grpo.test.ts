// The group-relative policy gradient of issue #24 (src/train/grpo.ts): group advantages (GRPO, Dr. GRPO, RLOO) by
// their definitions, and the CE weights it hands the fused loss kernel — the kernel's gradient Σ w·(softmax − onehot)
// must be the gradient of the GRPO loss (policy term through ρ = exp(l − sg(l)), k3 KL to the reference) with respect
// to the logits: checked against central differences of that loss written out on logits, at odd shapes.
import { describe, expect, it } from 'vitest';
import { groupAdvantages, policyGradientWeights } from '../../src/train/grpo.ts';
import { Rng } from '../../src/util/rng.ts';

describe('group advantages', () => {
  it('GRPO: (r − mean)/(std + 1e-4) with Bessel; Dr. GRPO: r − mean; RLOO: r − mean of the others; per group', () => {
    const r = [1, 0, 0, 3, 2, 2];
    const g = groupAdvantages(r, 3, 'grpo');
    const s1 = Math.sqrt(((1 - 1 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2);
    expect(g[0]).toBeCloseTo((1 - 1 / 3) / (s1 + 1e-4), 12);
    expect(g[1]).toBeCloseTo(-(1 / 3) / (s1 + 1e-4), 12);
    const m2 = 7 / 3, s2 = Math.sqrt(((3 - m2) ** 2 + 2 * (2 - m2) ** 2) / 2);
    expect(g[3]).toBeCloseTo((3 - m2) / (s2 + 1e-4), 12);
    expect(Array.from(groupAdvantages(r, 3, 'mean')).map((x) => +x.toFixed(12))).toEqual([2 / 3, -1 / 3, -1 / 3, 2 / 3, -1 / 3, -1 / 3].map((x) => +x.toFixed(12)));
    expect(Array.from(groupAdvantages(r, 3, 'rloo'))).toEqual([1, -0.5, -0.5, 1, -0.5, -0.5]);
    expect(Array.from(groupAdvantages([5, 5, 5, 5], 2))).toEqual([0, 0, 0, 0]); // no spread: nothing to learn
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow(/3 rewards are not whole groups of 2/);
    expect(() => groupAdvantages([1, Number.NaN], 2)).toThrow(/reward 1 is NaN/);
    expect(() => groupAdvantages([1], 1)).toThrow(/at least 2 samples/);
  });
});

describe('policy-gradient weights', () => {
  it('the CE kernel\'s gradient with these weights = central differences of the GRPO loss on the logits', () => {
    const B = 4, T = 5, V = 7, G = 2, beta = 0.3, rng = new Rng(3);
    const z0 = Float64Array.from({ length: B * T * V }, () => 2 * rng.normal());
    const labels = Uint32Array.from({ length: B * T }, () => rng.int(V));
    const lengths = [5, 2, 3, 4]; // completion tokens: the last `len` positions of each row
    const mask = Float64Array.from({ length: B * T }, (_, i) => (i % T >= T - lengths[Math.floor(i / T)]! ? 1 : 0));
    const refLogp = Float64Array.from({ length: B * T }, () => -1 - rng.next() * 2);
    const advantages = groupAdvantages([0.9, 0.1, 0.3, 0.7], G);
    const logSoftmax = (z: Float64Array, i: number) => {
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, z[i * V + v]!);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z[i * V + v]! - m);
      return z[i * V + labels[i]!]! - m - Math.log(s);
    };
    const l0 = Float64Array.from({ length: B * T }, (_, i) => logSoftmax(z0, i));
    // The loss written out on the logits, ρ = exp(l − l0) (l0 held fixed: the stop-gradient).
    const L = (z: Float64Array) => {
      let out = 0;
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (!mask[i]) continue;
        const l = logSoftmax(z, i), d = refLogp[i]! - l;
        out += (-advantages[b]! * Math.exp(l - l0[i]!) + beta * (Math.exp(d) - d - 1)) / (B * lengths[b]!);
      }
      return out;
    };
    const r = policyGradientWeights({ B, T, mask, logp: l0, refLogp, advantages, beta });
    expect(r.loss).toBeCloseTo(L(z0), 12);
    expect(Array.from(r.lengths)).toEqual(lengths);
    expect(r.kl).toBeGreaterThan(0);
    for (let i = 0; i < B * T; i++) {
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, z0[i * V + v]!);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z0[i * V + v]! - m);
      for (let v = 0; v < V; v++) {
        const p = Math.exp(z0[i * V + v]! - m) / s;
        const kernel = r.weights[i]! * (p - (v === labels[i] ? 1 : 0));
        const h = 1e-6, up = Float64Array.from(z0), dn = Float64Array.from(z0);
        up[i * V + v]! += h; dn[i * V + v]! -= h;
        const fd = (L(up) - L(dn)) / (2 * h);
        expect(Math.abs(kernel - fd), `position ${i}, logit ${v}`).toBeLessThan(1e-6 + 1e-4 * Math.abs(fd));
      }
    }
  });

  it('β = 0 leaves the policy term alone; a row without completion tokens and bad shapes are refused', () => {
    const w = policyGradientWeights({ B: 2, T: 2, mask: [1, 1, 0, 1], logp: [-1, -2, 0, -1], refLogp: [-3, -3, 0, -3], advantages: [1, -1], beta: 0 });
    expect(Array.from(w.weights)).toEqual([0.25, 0.25, 0, -0.5]);
    expect(() => policyGradientWeights({ B: 2, T: 2, mask: [1, 1, 0, 0], logp: [0, 0, 0, 0], refLogp: [0, 0, 0, 0], advantages: [1, -1], beta: 0.1 })).toThrow(/row 1 has no completion token/);
    expect(() => policyGradientWeights({ B: 2, T: 2, mask: [1, 1, 1], logp: [0, 0, 0, 0], refLogp: [0, 0, 0, 0], advantages: [1, -1], beta: 0.1 })).toThrow(/mask has 3 values, expected 4/);
    expect(() => policyGradientWeights({ B: 1, T: 1, mask: [1], logp: [0], refLogp: [0], advantages: [1], beta: -1 })).toThrow(/β must be a finite number ≥ 0/);
  });
});
