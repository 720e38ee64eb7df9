// The student's CPU reference (src/model/ref-model.ts): every parameter gradient against central finite differences
// of the loss (CE only, forward KL with a dense teacher mixed with CE, a top-k teacher), tied and untied embeddings;
// causality; the logits of a 1-layer model against a straight-line implementation written here with no shared
// helpers; initParams' determinism, order and statistics; input validation.
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.config.ts';
import type { TeacherRef } from '../../src/kernels/loss/loss.ref.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward, refLoss, refLossAndGrad, type RefBatch } from '../../src/model/ref-model.ts';
import { Rng } from '../../src/util/rng.ts';

const TINY = { vocabSize: 23, hidden: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 4, intermediate: 24, maxSeqLen: 8, ropeTheta: 100 };
const [B, T] = [2, 5];
const N = B * T;

const tinyConfig = (tieEmbeddings: boolean, over: Record<string, unknown> = {}): ModelConfig =>
  makeConfig({ ...TINY, tieEmbeddings, initStd: 0.35, ...over });

/** A test slab in f64: initParams at a large initStd (so every path is non-linear), norm gains 1 ± 0.3. */
function testSlab(c: ModelConfig, seed: number): Float64Array {
  const slab = Float64Array.from(initParams(c, seed));
  const rng = new Rng(seed + 1000);
  for (const e of paramLayout(c).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.6 * (rng.next() - 0.5);
  }
  return slab;
}

function randomIds(rng: Rng, n: number, V: number): Uint32Array {
  return Uint32Array.from({ length: n }, () => rng.int(V));
}

/** A batch with varied weights, one masked row (weight 0) and one row without a label. */
function makeBatch(c: ModelConfig, seed: number, over: Partial<RefBatch> = {}): RefBatch {
  const rng = new Rng(seed);
  const V = c.vocabSize;
  const ids = randomIds(rng, N, V);
  const labels = Uint32Array.from({ length: N }, () => rng.int(V));
  labels[3] = NO_LABEL;
  const weights = Float64Array.from({ length: N }, () => 0.5 + rng.next());
  weights[7] = 0;
  return { ids, B, T, labels, weights, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1, ...over };
}

function denseTeacher(seed: number, V: number): TeacherRef {
  const rng = new Rng(seed);
  return { kind: 'dense', logits: Float64Array.from({ length: N * V }, () => 3 * rng.normal()) };
}

/** Top-k (k = 5) of a random teacher: its largest probabilities' ids and true log-probabilities (mass m < 1). */
function topkTeacher(seed: number, V: number, k = 5): TeacherRef {
  const rng = new Rng(seed);
  const ids = new Uint32Array(N * k);
  const logprobs = new Float64Array(N * k);
  for (let n = 0; n < N; n++) {
    const z = Array.from({ length: V }, () => 2 * rng.normal());
    const max = Math.max(...z);
    const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
    const order = z.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0]);
    for (let r = 0; r < k; r++) {
      ids[n * k + r] = order[r]![1];
      logprobs[n * k + r] = order[r]![0] - lse;
    }
  }
  return { kind: 'topk', k, ids, logprobs, policy: 'tail-bucket' };
}

const EPS = 1e-6;

/**
 * Checks grad against central differences of refLoss at the given slab coordinates:
 * |grad − fd| ≤ 1e-8·(1 + max|fd|) + 1e-6·|fd| (the correct gradient reaches at most ≈ 0.2 of that bound).
 */
function checkFd(c: ModelConfig, slab: Float64Array, batch: RefBatch, grad: Float64Array, coords: number[]): void {
  const fds = coords.map((i) => {
    const v = slab[i]!;
    slab[i] = v + EPS;
    const lp = refLoss(c, slab, batch).loss;
    slab[i] = v - EPS;
    const lm = refLoss(c, slab, batch).loss;
    slab[i] = v;
    return (lp - lm) / (2 * EPS);
  });
  const scale = Math.max(...fds.map(Math.abs));
  const bad: string[] = [];
  coords.forEach((i, j) => {
    const fd = fds[j]!;
    const tol = 1e-8 * (1 + scale) + 1e-6 * Math.abs(fd);
    const ratio = Math.abs(grad[i]! - fd) / tol;
    if (!(ratio <= 1) && bad.length < 5) bad.push(`slab[${i}] (${nameOf(c, i)}): grad ${grad[i]} vs fd ${fd}`);
  });
  expect(bad, bad.join('\n')).toEqual([]);
}

function nameOf(c: ModelConfig, i: number): string {
  const e = paramLayout(c).entries.find((x) => i >= x.offset && i < x.offset + x.size);
  return e ? `${e.name}[${i - e.offset}]` : 'padding';
}

/** Every parameter coordinate, or `per` random coordinates from every tensor (always its first and last). */
function coordinates(c: ModelConfig, seed: number, per?: number): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  for (const e of paramLayout(c).entries) {
    if (per === undefined || per >= e.size) {
      for (let i = 0; i < e.size; i++) out.push(e.offset + i);
    } else {
      out.push(e.offset, e.offset + e.size - 1);
      for (let j = 2; j < per; j++) out.push(e.offset + rng.int(e.size));
    }
  }
  return out;
}

function expectPaddingZero(c: ModelConfig, grad: Float64Array): void {
  const layout = paramLayout(c);
  let inside = 0;
  for (const e of layout.entries) for (let i = 0; i < e.size; i++) inside += grad[e.offset + i] !== 0 ? 1 : 0;
  let nonzero = 0;
  for (const g of grad) nonzero += g !== 0 ? 1 : 0;
  expect(nonzero).toBe(inside);
}

/** The family switches of config.ts at tiny shapes (Qwen3's H·D ≠ C; llama3 scaling with every frequency regime). */
const FAMILIES: [string, Record<string, unknown>][] = [
  ['Qwen2 (q/k/v biases)', { attentionBias: true }],
  ['Qwen3 (q/k norms, H·D = 24 ≠ C = 16)', { qkNorm: true, headDim: 6 }],
  ['Llama-3 (llama3 RoPE scaling)', { ropeTheta: 5000, headDim: 8, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 } }],
];

/** testSlab with the biases random too (they start at 0). */
function familySlab(c: ModelConfig, seed: number): Float64Array {
  const slab = testSlab(c, seed);
  const rng = new Rng(seed + 2000);
  for (const e of paramLayout(c).entries) if (e.init === 'zeros') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 0.5 * rng.normal();
  return slab;
}

describe('refLossAndGrad of the family switches against finite differences', () => {
  it.each(FAMILIES)('%s: every parameter (CE, untied)', (_, over) => {
    const c = tinyConfig(false, over);
    const slab = familySlab(c, 31);
    const batch = makeBatch(c, 32, { lossScale: 2 });
    const r = refLossAndGrad(c, slab, batch);
    expectPaddingZero(c, r.grad);
    checkFd(c, slab, batch, r.grad, coordinates(c, 33));
  }, 60_000);

  it('each switch changes the logits (the reference does not ignore it)', () => {
    const ids = randomIds(new Rng(5), N, TINY.vocabSize);
    for (const [name, over] of FAMILIES) {
      const c = tinyConfig(true, over);
      const slab = familySlab(c, 41);
      const plain = makeConfig({ ...c, attentionBias: false, qkNorm: false, ropeScaling: undefined });
      // The same Llama tensors without the switch's parameters (biases / q-k norm gains) or scaling.
      const from = paramLayout(c), to = paramLayout(plain);
      const plainSlab = new Float64Array(to.slabFloats);
      for (const e of to.entries) plainSlab.set(slab.subarray(from.byName.get(e.name)!.offset, from.byName.get(e.name)!.offset + e.size), e.offset);
      const a = refForward(c, slab, ids, B, T).logits, b = refForward(plain, plainSlab, ids, B, T).logits;
      const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
      expect(diff, name).toBeGreaterThan(1e-3);
    }
  });
});

describe('refLossAndGrad against finite differences of the loss', () => {
  for (const tied of [true, false]) {
    const tag = tied ? 'tied' : 'untied';

    it(`CE only, every parameter (${tag})`, () => {
      const c = tinyConfig(tied);
      const slab = testSlab(c, 11);
      const batch = makeBatch(c, 12, { lossScale: 3 });
      const r = refLossAndGrad(c, slab, batch);
      expect(r.lossTerms.kd).toBe(0);
      expect(r.loss).toBeCloseTo(3 * r.lossTerms.ce, 12);
      expect(r.grad.length).toBe(paramLayout(c).slabFloats);
      expectPaddingZero(c, r.grad);
      checkFd(c, slab, batch, r.grad, coordinates(c, 13));
    }, 60_000); // ≈ 4.5 s: two forwards per coordinate, ≈ 4,000 coordinates

    it(`forward KL with a dense teacher at τ = 2, mixed with CE, ≥ 24 coordinates of every tensor (${tag})`, () => {
      const c = tinyConfig(tied);
      const slab = testSlab(c, 21);
      const teacher = denseTeacher(23, c.vocabSize);
      const batch = makeBatch(c, 22, { teacher, objective: 'fkl', temperature: 2, kdWeight: 0.7, ceWeight: 0.4, lossScale: 2 });
      const r = refLossAndGrad(c, slab, batch);
      expect(r.lossTerms.kd).toBeGreaterThan(0);
      expect(r.loss).toBeCloseTo(2 * (0.7 * r.lossTerms.kd + 0.4 * r.lossTerms.ce), 12);
      checkFd(c, slab, batch, r.grad, coordinates(c, 24, 24));
    }, 60_000);

    it(`reverse KL with a top-k (k = 5, tail-bucket) teacher, ≥ 24 coordinates of every tensor (${tag})`, () => {
      const c = tinyConfig(tied);
      const slab = testSlab(c, 31);
      const teacher = topkTeacher(33, c.vocabSize);
      const batch = makeBatch(c, 32, { teacher, objective: 'rkl', temperature: 1.5, kdWeight: 1, ceWeight: 0.25, lossScale: 1 });
      const r = refLossAndGrad(c, slab, batch);
      expect(r.lossTerms.kd).toBeGreaterThan(0);
      checkFd(c, slab, batch, r.grad, coordinates(c, 34, 24));
    }, 60_000);
  }

  it('tied wte gradient = untied wte gradient + lm_head gradient when lm_head holds the same values', () => {
    const ct = tinyConfig(true);
    const cu = tinyConfig(false);
    const lt = paramLayout(ct);
    const lu = paramLayout(cu);
    const slabT = testSlab(ct, 41);
    const slabU = new Float64Array(lu.slabFloats);
    slabU.set(slabT.subarray(0, lt.slabFloats));
    const wte = lu.byName.get('wte')!;
    const lm = lu.byName.get('lm_head')!;
    slabU.set(slabT.subarray(wte.offset, wte.offset + wte.size), lm.offset);
    const batchT = makeBatch(ct, 42);
    const rt = refLossAndGrad(ct, slabT, batchT);
    const ru = refLossAndGrad(cu, slabU, batchT);
    expect(ru.loss).toBeCloseTo(rt.loss, 12);
    for (let i = 0; i < wte.size; i++) {
      expect(rt.grad[wte.offset + i]).toBeCloseTo(ru.grad[wte.offset + i]! + ru.grad[lm.offset + i]!, 12);
    }
  });

  it('masked rows (weight 0) contribute nothing: changing their label or teacher leaves loss and grad unchanged', () => {
    const c = tinyConfig(false);
    const slab = testSlab(c, 51);
    const teacher = denseTeacher(53, c.vocabSize);
    const batch = makeBatch(c, 52, { teacher, objective: 'fkl', kdWeight: 1, ceWeight: 1 });
    const r1 = refLossAndGrad(c, slab, batch);
    const labels = Uint32Array.from(batch.labels);
    labels[7] = (labels[7]! + 1) % c.vocabSize;
    const tl = Float64Array.from((teacher as { logits: ArrayLike<number> }).logits);
    for (let j = 0; j < c.vocabSize; j++) tl[7 * c.vocabSize + j] = 5 * Math.sin(j);
    const r2 = refLossAndGrad(c, slab, { ...batch, labels, teacher: { kind: 'dense', logits: tl } });
    expect(r2.loss).toBe(r1.loss);
    expect(Array.from(r2.grad)).toEqual(Array.from(r1.grad));
  });
});

describe('refForward', () => {
  it('is causal: logits at position t do not change when ids after t change, and later ones do', () => {
    const c = tinyConfig(false);
    const slab = testSlab(c, 61);
    const rng = new Rng(62);
    const ids = randomIds(rng, N, c.vocabSize);
    const base = refForward(c, slab, ids, B, T).logits;
    const V = c.vocabSize;
    for (let t = 0; t < T - 1; t++) {
      const ids2 = Uint32Array.from(ids);
      for (let u = t + 1; u < T; u++) ids2[T + u] = (ids2[T + u]! + 1 + u) % V; // batch row 1 only
      const lg = refForward(c, slab, ids2, B, T).logits;
      let maxEarly = 0;
      let maxLate = 0;
      for (let n = 0; n < N; n++) {
        for (let j = 0; j < V; j++) {
          const d = Math.abs(lg[n * V + j]! - base[n * V + j]!);
          if (n < T + t + 1) maxEarly = Math.max(maxEarly, d); // batch row 0 and row 1 up to t
          else maxLate = Math.max(maxLate, d);
        }
      }
      expect(maxEarly, `t = ${t}`).toBe(0);
      expect(maxLate, `t = ${t}`).toBeGreaterThan(1e-6);
    }
  });

  for (const tied of [true, false]) {
    it(`matches a straight-line 1-layer implementation written in this test (${tied ? 'tied' : 'untied'})`, () => {
      const c = tinyConfig(tied, { layers: 1, ropeTheta: 50, rmsNormEps: 1e-3 });
      const slab = testSlab(c, 71);
      const ids = randomIds(new Rng(72), N, c.vocabSize);
      const got = refForward(c, slab, ids, B, T).logits;
      const want = straightLineLogits(c, slab, ids);
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-12 * (1 + Math.abs(want[i]!)));
    });
  }

  it('rejects bad inputs with clear errors', () => {
    const c = tinyConfig(true);
    const slab = testSlab(c, 81);
    const ids = new Uint32Array(N);
    expect(() => refForward(c, slab.subarray(1), ids, B, T)).toThrow(/slab has \d+ floats, the config's layout needs/);
    expect(() => refForward(c, slab, ids, B, 9)).toThrow(/ids has 10 elements, expected B·T|longer than the config's maxSeqLen/);
    expect(() => refForward(c, slab, new Uint32Array(18), 2, 9)).toThrow(/T = 9 is longer than the config's maxSeqLen = 8/);
    expect(() => refForward(c, slab, ids, B, 4)).toThrow(/ids has 10 elements, expected B·T = 2·4/);
    const bad = Uint32Array.from(ids);
    bad[4] = 23;
    expect(() => refForward(c, slab, bad, B, T)).toThrow(/token id 23 at position 4 is out of range/);
    const batch = makeBatch(c, 82);
    expect(() => refLossAndGrad(c, slab, { ...batch, labels: new Uint32Array(3) })).toThrow(/labels has 3 elements, expected N = B·T = 10/);
    expect(() => refLossAndGrad(c, slab, { ...batch, weights: new Float64Array(N).fill(-1) })).toThrow(/weights\[0\] = -1/);
    expect(() => refLossAndGrad(c, slab, { ...batch, objective: 'fkl' })).toThrow(/needs a teacher/);
    const topk = topkTeacher(83, c.vocabSize) as Extract<TeacherRef, { kind: 'topk' }>;
    const dup = Uint32Array.from(topk.ids);
    dup[1] = dup[0]!;
    expect(() => refLossAndGrad(c, slab, { ...batch, objective: 'fkl', teacher: { ...topk, ids: dup } })).toThrow(/row 0: id \d+ appears twice/);
    expect(() => refLossAndGrad(c, slab, { ...batch, objective: 'fkl', teacher: { kind: 'dense', logits: new Float64Array(5) } }))
      .toThrow(/dense teacher logits has 5 elements, expected N·V = 10·23/);
  });
});

describe('initParams', () => {
  it('is deterministic per seed, ones for norm gains, 0 in the padding, and follows the documented draw order', () => {
    const c = makeConfig({ ...TINY, tieEmbeddings: false, initStd: 0.02 });
    const a = initParams(c, 5);
    const b = initParams(c, 5);
    expect(a).toBeInstanceOf(Float32Array);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(initParams(c, 6))).not.toEqual(Array.from(a));
    // The documented order, rebuilt here: one Rng(seed), tensors in slab order, 'ones' draw nothing.
    const layout = paramLayout(c);
    const rng = new Rng(5);
    const want = new Float32Array(layout.slabFloats);
    for (const e of layout.entries) {
      for (let i = 0; i < e.size; i++) want[e.offset + i] = e.init === 'ones' ? 1 : 0.02 * rng.normal();
    }
    expect(Array.from(a)).toEqual(Array.from(want));
    const padding = new Set<number>(Array.from({ length: layout.slabFloats }, (_, i) => i));
    for (const e of layout.entries) for (let i = 0; i < e.size; i++) padding.delete(e.offset + i);
    expect(padding.size).toBeGreaterThan(0);
    for (const i of padding) expect(a[i]).toBe(0);
    for (const e of layout.entries.filter((x) => x.init === 'ones')) {
      expect(Array.from(a.subarray(e.offset, e.offset + e.size)).every((v) => v === 1), e.name).toBe(true);
    }
  });

  it('draws the normal tensors with mean ≈ 0 and std ≈ initStd', () => {
    const c = makeConfig({ ...TINY, hidden: 64, intermediate: 96, heads: 4, headDim: 16, initStd: 0.02 });
    const slab = initParams(c, 9);
    const vals: number[] = [];
    for (const e of paramLayout(c).entries) if (e.init === 'normal') vals.push(...slab.subarray(e.offset, e.offset + e.size));
    expect(vals.length).toBeGreaterThan(50_000);
    const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
    const std = Math.sqrt(vals.reduce((s, v) => s + (v - mean) ** 2, 0) / vals.length);
    expect(Math.abs(mean)).toBeLessThan(0.02 * 0.02); // 5σ of the mean is 0.02·5/√50000 ≈ 0.00045
    expect(Math.abs(std / 0.02 - 1)).toBeLessThan(0.02);
  });

  it('rejects a non-integer seed', () => {
    expect(() => initParams(tinyConfig(true), 1.5)).toThrow(/seed must be an integer/);
  });
});

/**
 * Logits of a 1-layer LlamaForCausalLM written out in one function from the HF definitions: embedding, RMSNorm,
 * q/k/v projections, rotate_half RoPE, causal GQA softmax attention, o projection, SwiGLU MLP, final norm, lm_head.
 * Deliberately shares nothing with src/ beyond reading parameters at the layout's offsets.
 */
function straightLineLogits(c: ModelConfig, slab: Float64Array, ids: Uint32Array): Float64Array {
  const { vocabSize: V, hidden: C, heads: H, kvHeads: KV, headDim: D, intermediate: F } = c;
  const layout = paramLayout(c);
  const off = (name: string) => layout.byName.get(name)!.offset;
  const W = (name: string, r: number, col: number, cols: number) => slab[off(name) + r * cols + col]!;
  const out = new Float64Array(N * V);
  const norm = (x: number[], g: string) => {
    const ms = x.reduce((s, v) => s + v * v, 0) / C;
    return x.map((v, i) => (v / Math.sqrt(ms + c.rmsNormEps)) * slab[off(g) + i]!);
  };
  for (let b = 0; b < B; b++) {
    const xs: number[][] = [];
    const qs: number[][][] = []; // [t][head][d]
    const ks: number[][][] = [];
    const vs: number[][][] = [];
    for (let t = 0; t < T; t++) {
      const x = Array.from({ length: C }, (_, i) => W('wte', ids[b * T + t]!, i, C));
      xs.push(x);
      const h = norm(x, 'layers.0.attn_norm');
      const proj = (name: string, heads: number, rot: boolean) =>
        Array.from({ length: heads }, (_, hh) => {
          const raw = Array.from({ length: D }, (_, d) => h.reduce((s, hv, i) => s + hv * W(name, hh * D + d, i, C), 0));
          if (!rot) return raw;
          return raw.map((v, d) => {
            const j = d % (D / 2);
            const ang = t / c.ropeTheta ** ((2 * j) / D);
            const rotHalf = d < D / 2 ? -raw[d + D / 2]! : raw[d - D / 2]!;
            return v * Math.cos(ang) + rotHalf * Math.sin(ang);
          });
        });
      qs.push(proj('layers.0.wq', H, true));
      ks.push(proj('layers.0.wk', KV, true));
      vs.push(proj('layers.0.wv', KV, false));
    }
    for (let t = 0; t < T; t++) {
      const att: number[] = [];
      for (let hh = 0; hh < H; hh++) {
        const kv = Math.floor(hh / (H / KV));
        const sc = Array.from({ length: t + 1 }, (_, u) => qs[t]![hh]!.reduce((s, qv, d) => s + qv * ks[u]![kv]![d]!, 0) / Math.sqrt(D));
        const m = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - m));
        const z = e.reduce((s, v) => s + v, 0);
        for (let d = 0; d < D; d++) att.push(e.reduce((s, p, u) => s + (p / z) * vs[u]![kv]![d]!, 0));
      }
      const x1 = xs[t]!.map((v, i) => v + att.reduce((s, av, j) => s + av * W('layers.0.wo', i, j, H * D), 0));
      const h2 = norm(x1, 'layers.0.mlp_norm');
      const act = Array.from({ length: F }, (_, f) => {
        const g = h2.reduce((s, hv, i) => s + hv * W('layers.0.w_gate', f, i, C), 0);
        const u = h2.reduce((s, hv, i) => s + hv * W('layers.0.w_up', f, i, C), 0);
        return (g / (1 + Math.exp(-g))) * u;
      });
      const x2 = x1.map((v, i) => v + act.reduce((s, av, f) => s + av * W('layers.0.w_down', i, f, F), 0));
      const hf = norm(x2, 'final_norm');
      const lm = c.tieEmbeddings ? 'wte' : 'lm_head';
      for (let j = 0; j < V; j++) out[(b * T + t) * V + j] = hf.reduce((s, hv, i) => s + hv * W(lm, j, i, C), 0);
    }
  }
  return out;
}
