// GpuModel with LoRA (the `lora` option: a frozen base, adapters in the trained slab) against the CPU reference of
// the merged model: the loss equals refLossAndGrad's on mergeLora(base, adapters) (W' = W + (α/r)·B·A), every adapter
// gradient equals loraGradFromMerged of the reference's merged-weight gradients, for each family (Llama tied, Qwen2
// biases, Qwen3 q/k norms) and for all seven targets or a subset. Training moves the adapters and never the base;
// a checkpoint of a LoRA model holds the adapters and their moments only; the slabs split across buffers alike.
// LoRA dropout: a seeded run differs from p = 0, an unseeded run (evaluation) is p = 0 exactly, and at a fixed seed
// the adapter gradient is the derivative of the GPU loss (a central difference along it).
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { GpuModel, type ObjectiveSpec } from '../../src/model/gpu-model.ts';
import { initLora, loraGradFromMerged, loraLayout, makeLoraConfig, mergeLora, type LoraConfig } from '../../src/model/lora.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward, refLossAndGrad } from '../../src/model/ref-model.ts';
import { baseLayout } from '../../src/model/base-layout.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { packHalf, unpackHalf } from '../../src/util/half.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 2, T = 6, N = B * T, K = 4;
const objective: ObjectiveSpec = { objective: 'fkl', temperature: 1.5, kdWeight: 0.7, ceWeight: 0.4, teacher: { kind: 'topk', k: K, policy: 'renormalize' } };
const base = { vocabSize: 43, hidden: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, initStd: 0.2, ropeTheta: 100 };

function setup(config: ModelConfig, lora: LoraConfig, seed: number) {
  const rng = new Rng(seed);
  const slab = initParams(config, seed);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 0.3 * rng.normal();
  }
  // B = 0 at PEFT's start would hide half the gradients: give B values so both A and B matter.
  const adapters = initLora(config, lora, seed);
  for (const e of loraLayout(config, lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapters[e.offset + i] = 0.2 * rng.normal();
  const ids = Uint32Array.from({ length: N }, () => rng.int(config.vocabSize));
  const labels = Uint32Array.from({ length: N }, (_, i) => (i === 4 ? NO_LABEL : rng.int(config.vocabSize)));
  const weights = Float32Array.from({ length: N }, (_, i) => (i === 7 ? 0 : 0.5 + rng.next()));
  const teacherIds = new Uint32Array(N * K), teacherLogprobs = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const pick = new Set<number>();
    while (pick.size < K) pick.add(rng.int(config.vocabSize));
    [...pick].forEach((id, j) => { teacherIds[n * K + j] = id; teacherLogprobs[n * K + j] = -0.5 - j - rng.next(); });
  }
  return { slab, adapters, batch: { ids, labels, weights, teacherIds, teacherLogprobs } };
}

/** The CPU reference's loss and gradients of the merged model on a setup() batch, with `objective`. */
function refOfMerged(config: ModelConfig, merged: Float32Array, b: ReturnType<typeof setup>['batch']) {
  const wsum = b.weights.reduce((a, x) => a + x, 0);
  return refLossAndGrad(config, merged, {
    ids: b.ids, B, T, labels: b.labels, weights: b.weights, objective: objective.objective, temperature: objective.temperature,
    kdWeight: objective.kdWeight, ceWeight: objective.ceWeight, lossScale: 1 / wsum,
    teacher: { kind: 'topk', k: K, ids: b.teacherIds, logprobs: b.teacherLogprobs, policy: 'renormalize' },
  });
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol: number, rtol = 1e-3): void {
  const c = compareArrays(got, want, { atol, rtol });
  expect(c.ok, `${what}: ${describeComparison(c)}`).toBe(true);
}

describe('GpuModel with LoRA vs the merged CPU reference', () => {
  it.each([
    ['Llama (tied), all seven targets, r = 3', { tieEmbeddings: true }, { rank: 3, alpha: 7 }],
    ['Qwen2 (q/k/v biases), q and v only, r = 4', { attentionBias: true }, { rank: 4, alpha: 8, targets: ['wq', 'wv'] as LoraConfig['targets'] }],
    ['Qwen3 (q/k norms, H·D ≠ C), MLP only, r = 2', { qkNorm: true, headDim: 16 }, { rank: 2, alpha: 2, targets: ['w_gate', 'w_up', 'w_down'] as LoraConfig['targets'] }],
  ] as const)('%s: logits, loss and every adapter gradient', async (_, over, l) => {
    const { device } = gpu();
    const config = makeConfig({ ...base, ...over });
    const lora = makeLoraConfig(l);
    const s = setup(config, lora, 17);
    const model = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora });
    try {
      model.uploadParams(s.slab);
      model.uploadAdapters(s.adapters);
      model.setBatch(s.batch);
      const merged = mergeLora(config, s.slab, lora, s.adapters);
      expectClose(await model.logits(), refForward(config, merged, s.batch.ids, B, T).logits, 'logits', 2e-5, 2e-4);
      const r = await model.run();
      const ref = refOfMerged(config, merged, s.batch);
      expect(r.loss).toBeCloseTo(ref.loss, 5);
      const want = loraGradFromMerged(config, lora, s.adapters, ref.grad);
      const grads = await model.readAdapterGrads();
      const maxG = want.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
      for (const e of loraLayout(config, lora).entries) {
        expectClose(grads.subarray(e.offset, e.offset + e.size), want.subarray(e.offset, e.offset + e.size), `d${e.name}`, 1e-5 * maxG);
      }
      expect(() => model.readGrads()).toThrow(/frozen/);
    } finally {
      model.destroy();
    }
  }, 120_000);

  it('trains only the adapters: the base is unchanged, the checkpoint holds adapters and moments, shards agree', async () => {
    const { device } = gpu();
    const config = makeConfig({ ...base, attentionBias: true, tieEmbeddings: false });
    const lora = makeLoraConfig({ rank: 4, alpha: 8 });
    const s = setup(config, lora, 23);
    const build = (maxBufferBytes?: number) => new GpuModel(device, config, B, T, objective, { weightDecay: 0.1, clipNorm: 1 }, { lora, ...(maxBufferBytes ? { maxBufferBytes } : {}) });
    const one = build(), many = build(6144);
    try {
      expect(many.state.shardCount).toBeGreaterThan(2);
      const layout = loraLayout(config, lora);
      expect(one.stateSizes).toEqual({ params: layout.slabFloats, m: layout.slabFloats, v: layout.slabFloats, wh: 0 });
      const losses: number[] = [];
      for (const m of [one, many]) { m.uploadParams(s.slab); m.uploadAdapters(s.adapters); m.setBatch(s.batch); }
      for (let step = 1; step <= 4; step++) {
        const [ra, rb] = [await one.run({ update: { lr: 0.02, step } }), await many.run({ update: { lr: 0.02, step } })];
        expect(rb.loss).toBeCloseTo(ra.loss, 6);
        losses.push(ra.loss);
      }
      expect(losses[3]!).toBeLessThan(losses[0]!);
      expect(await one.readParams()).toEqual(s.slab);
      expect(await many.readParams()).toEqual(s.slab);
      const [aa, ab] = [await one.readAdapters(), await many.readAdapters()];
      expectClose(ab, aa, 'adapters, sharded vs one buffer', 1e-6, 1e-5);
      expect(compareArrays(aa, s.adapters, { atol: 1e-4, rtol: 0 }).ok).toBe(false);
      const st = { params: new Float32Array(layout.slabFloats), m: new Float32Array(layout.slabFloats), v: new Float32Array(layout.slabFloats) };
      await one.readStateInto(st);
      expect(st.params).toEqual(aa);
      expect(st.v.some((x) => x > 0)).toBe(true);
    } finally {
      one.destroy();
      many.destroy();
    }
  }, 120_000);

  it('the generator applies the adapters: a LoRA model samples what its merged weights sample', async () => {
    const { device } = gpu();
    const config = makeConfig({ ...base, qkNorm: true, headDim: 16, tieEmbeddings: false });
    const lora = makeLoraConfig({ rank: 3, alpha: 12, targets: ['wq', 'wk', 'wo', 'w_gate', 'w_down'] });
    const s = setup(config, lora, 29);
    const model = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora });
    const mergedModel = new GpuModel(device, config, B, T, objective);
    const gens: Generator[] = [];
    try {
      model.uploadParams(s.slab);
      model.uploadAdapters(s.adapters);
      mergedModel.uploadParams(mergeLora(config, s.slab, lora, s.adapters));
      const withAdapters = new Generator(device, config, model.params, 8, { lora, slab: model.state.params });
      const merged = new Generator(device, config, mergedModel.params, 8);
      const plain = new Generator(device, config, model.params, 8);
      gens.push(withAdapters, merged, plain);
      const opts = { maxNewTokens: 6, temperature: 0, seed: 1 };
      const want = await merged.generate([3, 7], opts);
      expect(await withAdapters.generate([3, 7], opts)).toEqual(want);
      // Without the adapters the base samples something else (so the comparison above means something).
      expect(await plain.generate([3, 7], opts)).not.toEqual(want);
    } finally {
      gens.forEach((g) => g.destroy());
      model.destroy();
      mergedModel.destroy();
    }
  });

  it.each(['bf16', 'f16'] as const)('a %s base: the linears held as 16-bit words, the model is the reference on the rounded base', async (fmt) => {
    const { device } = gpu();
    const config = makeConfig({ ...base, attentionBias: true, tieEmbeddings: false });
    const lora = makeLoraConfig({ rank: 3, alpha: 6, base: fmt });
    const s = setup(config, lora, 41);
    const model = new GpuModel(device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora });
    try {
      const bl = baseLayout(config, fmt), pl = paramLayout(config);
      // The base as the GPU holds it: every linear rounded to the format, the rest exact.
      const rounded = s.slab.slice();
      for (const e of bl.entries) {
        if (!e.half) continue;
        const at = pl.byName.get(e.name)!.offset;
        rounded.set(unpackHalf(packHalf(s.slab.subarray(at, at + e.size), fmt), e.size, fmt), at);
      }
      expect(bl.words).toBeLessThan(0.7 * pl.slabFloats);
      expect(compareArrays(rounded, s.slab, { atol: 0, rtol: 0 }).ok).toBe(false);
      model.uploadParams(s.slab);
      model.uploadAdapters(s.adapters);
      expect(await model.readParams()).toEqual(rounded);
      model.setBatch(s.batch);
      const merged = mergeLora(config, rounded, lora, s.adapters);
      expectClose(await model.logits(), refForward(config, merged, s.batch.ids, B, T).logits, 'logits', 2e-5, 2e-4);
      const r = await model.run();
      const ref = refOfMerged(config, merged, s.batch);
      expect(r.loss).toBeCloseTo(ref.loss, 5);
      const want = loraGradFromMerged(config, lora, s.adapters, ref.grad);
      expectClose(await model.readAdapterGrads(), want, 'adapter gradients', 1e-5 * want.reduce((m, g) => Math.max(m, Math.abs(g)), 0));
      // A tensor's packed words upload as they are (a bf16/f16 safetensors tensor), bit for bit.
      const wq = pl.byName.get('layers.1.wq')!;
      const words = packHalf(s.slab.subarray(wq.offset, wq.offset + wq.size).map((x) => -x), fmt);
      model.uploadBaseTensor('layers.1.wq', words);
      const back = await model.readParams();
      expect(packHalf(back.subarray(wq.offset, wq.offset + wq.size), fmt)).toEqual(words);
      expect(() => model.uploadBaseTensor('layers.1.attn_norm', new Uint32Array(12))).toThrow(/takes 24 f32 words, got 12 packed words/);
      // The generator reads the 16-bit base through the adapters' config: the same greedy ids as the merged model.
      const mergedModel = new GpuModel(device, config, B, T, objective);
      mergedModel.uploadParams(mergeLora(config, await model.readParams(), lora, s.adapters));
      const g16 = new Generator(device, config, model.params, 8, { lora, slab: model.state.params });
      const g32 = new Generator(device, config, mergedModel.params, 8);
      try {
        const opts = { maxNewTokens: 5, temperature: 0, seed: 1 };
        expect(await g16.generate([2, 9], opts)).toEqual(await g32.generate([2, 9], opts));
      } finally {
        g16.destroy(); g32.destroy(); mergedModel.destroy();
      }
    } finally {
      model.destroy();
    }
  }, 120_000);
});

describe('GpuModel with LoRA dropout', () => {
  const config = makeConfig({ ...base, tieEmbeddings: true });
  const l = { rank: 3, alpha: 7 };
  const build = (dropout: number) => new GpuModel(gpu().device, config, B, T, objective, { weightDecay: 0, clipNorm: 0 }, { lora: makeLoraConfig({ ...l, dropout }) });

  it('dropout 0.25: a seeded run differs from p = 0, a run without a seed is p = 0 exactly; 3 dispatches more per linear', async () => {
    const s = setup(config, makeLoraConfig(l), 17);
    const [plain, dropped] = [build(0), build(0.25)];
    try {
      for (const m of [plain, dropped]) { m.uploadParams(s.slab); m.uploadAdapters(s.adapters); m.setBatch(s.batch); }
      // One dropout dispatch per adapted linear in the forward, two in its backward; none at p = 0.
      expect(dropped.dispatchesPerStep - plain.dispatchesPerStep).toBe(3 * config.layers * 7);
      const ref = await plain.run();
      const refGrads = await plain.readAdapterGrads();
      const on = await dropped.run({ dropoutSeed: 5 });
      expect(Math.abs(on.loss - ref.loss)).toBeGreaterThan(1e-3);
      expect((await dropped.run({ dropoutSeed: 6 })).loss).not.toBe(on.loss);
      expect((await dropped.run({ dropoutSeed: 5 })).loss).toBe(on.loss);
      const off = await dropped.run();
      expect(off.loss).toBe(ref.loss);
      expect(await dropped.readAdapterGrads()).toEqual(refGrads);
      // Evaluation after a seeded run: no dropout either.
      await dropped.run({ dropoutSeed: 5 });
      expect(await dropped.logits()).toEqual(await plain.logits());
      await expect(dropped.run({ dropoutSeed: -1 })).rejects.toThrow(/dropoutSeed must be an integer in \[0, 2\^32\)/);
    } finally {
      plain.destroy();
      dropped.destroy();
    }
  }, 120_000);

  it('the adapter gradient at a fixed seed is the derivative of the loss: central difference along the gradient', async () => {
    const s = setup(config, makeLoraConfig(l), 31);
    const model = build(0.25);
    try {
      model.uploadParams(s.slab);
      model.uploadAdapters(s.adapters);
      model.setBatch(s.batch);
      const seed = 77;
      await model.run({ dropoutSeed: seed });
      const g = await model.readAdapterGrads();
      const g2 = g.reduce((a, x) => a + x * x, 0);
      // A step of norm 3e-3 along g: the loss moves by about 6e-3·|g|, far above f32 rounding of the loss (~1e-6).
      const eps = 3e-3 / Math.sqrt(g2);
      /** (L(θ + εg) − L(θ − εg)) / 2ε under the masks of `maskSeed`. */
      const fd = async (maskSeed: number) => {
        const lossAt = async (t: number) => {
          model.uploadAdapters(s.adapters.map((a, i) => a + t * g[i]!));
          return (await model.run({ backward: false, dropoutSeed: maskSeed })).loss;
        };
        return ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
      };
      const same = await fd(seed);
      expect(Math.abs(same - g2) / g2, `finite difference ${same} vs |g|² ${g2}`).toBeLessThan(0.02);
      // Under another seed's masks the same difference is not |g|²: the gradient belongs to its masks.
      const other = await fd(seed + 1);
      expect(Math.abs(other - g2) / g2, `another seed's finite difference ${other} vs |g|² ${g2}`).toBeGreaterThan(0.05);
      console.log(`LoRA dropout: |g|² ${g2}, finite difference ${same} (same masks), ${other} (other masks)`);
    } finally {
      model.destroy();
    }
  }, 120_000);
});
