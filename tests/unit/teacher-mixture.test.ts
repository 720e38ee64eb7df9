// The teacher mixture's logits (src/train/teacher-mixture.ts) against its float64 oracle: the tempered softmax of
// the mixed logits is Σ_i w_i softmax(z_i/τ) at odd shapes and temperatures, a weight of (1, 0) gives the first
// teacher back, padding and zero-probability columns stay at the padding logit, huge logits give no NaN, and bad
// weights are refused naming what is wrong.
import { describe, expect, it } from 'vitest';
import { logitsCe, MIX_PADDING, mixedProbsRef, mixTeacherLogits, normaliseWeights, type MixInput } from '../../src/train/teacher-mixture.ts';
import { Rng } from '../../src/util/rng.ts';

function randomLogits(rng: Rng, N: number, V: number, Vr: number, scale: number): Float32Array {
  const z = new Float32Array(N * V).fill(MIX_PADDING);
  for (let n = 0; n < N; n++) for (let v = 0; v < Vr; v++) z[n * V + v] = (rng.next() * 2 - 1) * scale;
  return z;
}

/** softmax(z/τ) over the first Vr columns of each row, float64. */
function tempered(z: Float32Array, N: number, V: number, Vr: number, tau: number): Float64Array {
  const out = new Float64Array(N * Vr);
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let v = 0; v < Vr; v++) max = Math.max(max, z[n * V + v]! / tau);
    let s = 0;
    for (let v = 0; v < Vr; v++) s += Math.exp(z[n * V + v]! / tau - max);
    for (let v = 0; v < Vr; v++) out[n * Vr + v] = Math.exp(z[n * V + v]! / tau - max) / s;
  }
  return out;
}

function expectClose(got: Float64Array, want: Float64Array, atol: number, rtol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= atol + rtol * Math.abs(want[i]!))) throw new Error(`${what}: [${i}] got ${got[i]} expected ${want[i]} (err ${err})`);
  }
}

describe('mixTeacherLogits', () => {
  it('gives logits whose tempered softmax is the weighted mixture (odd shapes, unnormalised weights, several τ)', () => {
    const rng = new Rng(7);
    for (const [N, V, Vr, K, tau, scale] of [[3, 13, 11, 3, 2, 6], [5, 17, 17, 2, 0.7, 4], [1, 7, 5, 4, 1, 10]] as const) {
      const logits = Array.from({ length: K }, () => randomLogits(rng, N, V, Vr, scale));
      const weights = Array.from({ length: K }, (_, i) => i + 1.5);
      const x: MixInput = { logits, weights, N, V, temperature: tau, realVocab: Vr };
      const z = mixTeacherLogits(x);
      expectClose(tempered(z, N, V, Vr, tau), mixedProbsRef(x), 1e-7, 1e-5, `N ${N} V ${V} K ${K} τ ${tau}`);
      // Vocabulary padding stays at the padding logit.
      for (let n = 0; n < N; n++) for (let v = Vr; v < V; v++) expect(z[n * V + v]).toBe(MIX_PADDING);
      // The oracle's rows are distributions.
      const p = mixedProbsRef(x);
      for (let n = 0; n < N; n++) expect(p.subarray(n * Vr, (n + 1) * Vr).reduce((s, q) => s + q, 0)).toBeCloseTo(1, 12);
    }
  });

  it('gives the first teacher back for weights (1, 0), its second never read', () => {
    const rng = new Rng(3);
    const [N, V, Vr, tau] = [4, 19, 16, 1.7];
    const a = randomLogits(rng, N, V, Vr, 8);
    const z = mixTeacherLogits({ logits: [a, undefined], weights: [1, 0], N, V, temperature: tau, realVocab: Vr });
    for (let i = 0; i < a.length; i++) expect(Math.abs(z[i]! - a[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(a[i]!)));
    // And with the other teacher present, weight 0: the same.
    const b = randomLogits(rng, N, V, Vr, 8);
    expect(mixTeacherLogits({ logits: [a, b], weights: [1, 0], N, V, temperature: tau, realVocab: Vr })).toEqual(z);
    // Weights (0, 1): the second.
    const zb = mixTeacherLogits({ logits: [a, b], weights: [0, 3], N, V, temperature: tau, realVocab: Vr });
    expectClose(tempered(zb, N, V, Vr, tau), tempered(b, N, V, Vr, tau), 1e-7, 1e-6, 'weights (0, 1)');
  });

  it('stays finite with huge logits; a token no teacher gives any probability stays at the padding logit', () => {
    const [N, V, tau] = [2, 6, 0.5];
    const a = Float32Array.from([900, -900, 0, 450, MIX_PADDING, 1, -2e3, 1.5e3, 5, 5, MIX_PADDING, 0]);
    const b = Float32Array.from([-900, 900, 10, 0, MIX_PADDING, MIX_PADDING, 1.5e3, -2e3, 5, 5, 1, -Infinity]);
    const x: MixInput = { logits: [a, b], weights: [0.25, 0.75], N, V, temperature: tau };
    const z = mixTeacherLogits(x);
    expect(z.every((q) => !Number.isNaN(q))).toBe(true);
    expect(z[4]).toBe(MIX_PADDING); // both teachers: probability 0
    expect(Number.isFinite(z[5]!) && z[5]! > -1e4).toBe(true); // one teacher gives it probability
    expect(Number.isFinite(z[11]!) && z[11]! > -1e4).toBe(true); // -Infinity in one teacher only
    // The logits are float32: at |z| ≈ 10³ one ulp is 1e-4, so the probabilities hold to about ulp/τ of themselves.
    expectClose(tempered(z, N, V, V, tau), mixedProbsRef(x), 1e-9, 5e-4, 'huge logits');
    // Row 0: the two teachers' top tokens share the mass 1:3.
    const p = tempered(z, N, V, V, tau);
    expect(p[0]).toBeCloseTo(0.25, 4);
    expect(p[1]).toBeCloseTo(0.75, 4);
  });

  it('refuses bad weights and shapes, saying what is wrong', () => {
    const z = new Float32Array(6);
    const x = (over: Partial<MixInput>): MixInput => ({ logits: [z, z], weights: [1, 1], N: 2, V: 3, temperature: 1, ...over });
    expect(() => mixTeacherLogits(x({ weights: [1, -1] }))).toThrow(/weight 1 must be a finite number ≥ 0, got -1/);
    expect(() => mixTeacherLogits(x({ weights: [0, 0] }))).toThrow(/the weights sum to 0/);
    expect(() => mixTeacherLogits(x({ weights: [1] }))).toThrow(/2 teachers' logits for 1 weights/);
    expect(() => mixTeacherLogits(x({ temperature: 0 }))).toThrow(/temperature must be > 0/);
    expect(() => mixTeacherLogits(x({ logits: [z, new Float32Array(5)] }))).toThrow(/teacher 1's logits have 5 values, expected N·V = 2·3/);
    expect(() => mixTeacherLogits(x({ logits: [z, undefined] }))).toThrow(/teacher 1 has weight 0.5 and no logits/);
    expect(() => mixTeacherLogits(x({ logits: [z, new Float32Array(6).fill(-Infinity)] }))).toThrow(/teacher 1's row 0 has no finite logit/);
    expect(normaliseWeights([1, 3])).toEqual([0.25, 0.75]);
  });
});

describe('logitsCe', () => {
  it('is the weighted mean of −log softmax at the label over rows of weight > 0, padding ignored', () => {
    const z = Float32Array.from([1, 2, 3, MIX_PADDING, 0, 0, 0, 7, 5, 1, 1, 9]);
    const lse = (a: number[]) => Math.log(a.reduce((s, q) => s + Math.exp(q), 0));
    const want = (2 * (lse([1, 2, 3]) - 1) + 1 * (lse([5, 1, 1]) - 1)) / 3;
    expect(logitsCe(z, [0, 1, 2], [2, 0, 1], 4, 3)).toBeCloseTo(want, 6);
    expect(logitsCe(z, [0, 1, 2], [0, 0, 0], 4, 3)).toBeUndefined();
  });
});
