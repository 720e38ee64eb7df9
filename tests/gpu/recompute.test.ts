// Activation recomputation (GpuModel option `recompute`): one shared set of layer activations, each layer's forward
// run again just before its backward. The same kernels on the same inputs: the loss, every gradient and the weights
// after AdamW steps are bit-identical to keeping every layer's activations — for full fine-tuning (Qwen2 biases, the
// hidden-state objective), for LoRA on a bf16 base (Qwen3 q/k norms) and for LoRA with dropout (the recomputed
// forward regenerates the same hashed masks) — and the model allocates less.
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { GpuModel, type GpuModelOptions, type ObjectiveSpec } from '../../src/model/gpu-model.ts';
import { initLora, loraLayout, makeLoraConfig } from '../../src/model/lora.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 2, T = 7, N = B * T, Ct = 6;
const objective: ObjectiveSpec = { objective: 'fkl', temperature: 1.3, kdWeight: 0.6, ceWeight: 0.5, teacher: { kind: 'dense' } };

/** Bytes of the GPU buffers `build` creates (staging buffers for reads excluded). */
function allocated(device: GPUDevice, build: () => GpuModel): { model: GpuModel; bytes: number } {
  let bytes = 0;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (d: GPUBufferDescriptor) => { if (!(d.usage & GPUBufferUsage.MAP_READ)) bytes += d.size; return create(d); };
  try {
    return { model: build(), bytes };
  } finally {
    device.createBuffer = create;
  }
}

async function compare(config: ModelConfig, options: GpuModelOptions, adapters?: Float32Array, dropoutSeed?: (step: number) => number) {
  const { device } = gpu();
  const rng = new Rng(3);
  const batch = {
    ids: Uint32Array.from({ length: N }, () => rng.int(config.vocabSize)),
    labels: Uint32Array.from({ length: N }, (_, i) => (i === 5 ? NO_LABEL : rng.int(config.vocabSize))),
    weights: Float32Array.from({ length: N }, () => 0.5 + rng.next()),
    teacherLogits: Float32Array.from({ length: N * config.vocabSize }, () => 2 * rng.normal()),
    ...(options.hidden ? { teacherHidden: Float32Array.from({ length: N * Ct }, () => rng.normal()) } : {}),
  };
  const build = (recompute: boolean) => allocated(device, () => new GpuModel(device, config, B, T, objective, { weightDecay: 0.1, clipNorm: 1 }, { ...options, recompute }));
  const keep = build(false), again = build(true);
  try {
    expect(again.bytes).toBeLessThan(keep.bytes);
    for (const { model } of [keep, again]) {
      model.uploadParams(initParams(config, 7));
      if (adapters) model.uploadAdapters(adapters);
      model.setBatch(batch);
    }
    for (let step = 1; step <= 2; step++) {
      const opts = { update: { lr: 0.01, step }, ...(dropoutSeed ? { dropoutSeed: dropoutSeed(step) } : {}) };
      const [a, b] = [await keep.model.run(opts), await again.model.run(opts)];
      expect(b.loss).toBe(a.loss);
      expect(b.gradNorm).toBe(a.gradNorm);
      const read = (m: GpuModel) => (adapters ? m.readAdapterGrads() : m.readGrads());
      expect(await read(again.model)).toEqual(await read(keep.model));
    }
    const s = keep.model.stateSizes;
    const state = async (m: GpuModel) => { const x = { params: new Float32Array(s.params), m: new Float32Array(s.m), v: new Float32Array(s.v), ...(s.wh ? { tail: new Float32Array(s.wh) } : {}) }; await m.readStateInto(x); return x; };
    expect(await state(again.model)).toEqual(await state(keep.model));
    return { keep: keep.bytes, again: again.bytes };
  } finally {
    keep.model.destroy();
    again.model.destroy();
  }
}

describe('activation recomputation', () => {
  it('full fine-tuning (Qwen2 biases, hidden-state objective): bit-identical loss, gradients and weights, less memory', async () => {
    const config = makeConfig({ vocabSize: 37, hidden: 24, layers: 3, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, attentionBias: true, initStd: 0.2 });
    const r = await compare(config, { hidden: { teacherWidth: Ct, kind: 'mse', weight: 0.4 } });
    console.log(`full: ${r.keep} B kept, ${r.again} B with recompute`);
  });

  it('LoRA on a bf16 base (Qwen3 q/k norms): bit-identical adapter gradients and state, less memory', async () => {
    const config = makeConfig({ vocabSize: 37, hidden: 24, layers: 3, heads: 4, kvHeads: 2, headDim: 16, intermediate: 40, maxSeqLen: 8, qkNorm: true, initStd: 0.2 });
    const lora = makeLoraConfig({ rank: 4, alpha: 8, base: 'bf16' });
    const adapters = initLora(config, lora, 5);
    const rng = new Rng(9);
    for (const e of loraLayout(config, lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapters[e.offset + i] = 0.1 * rng.normal();
    await compare(config, { lora }, adapters);
  });

  it('LoRA with dropout 0.3 (Llama, all targets): bit-identical loss, gradients and state with a dropout seed per step', async () => {
    const config = makeConfig({ vocabSize: 37, hidden: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, initStd: 0.2 });
    const lora = makeLoraConfig({ rank: 3, alpha: 6, dropout: 0.3 });
    const adapters = initLora(config, lora, 6);
    const rng = new Rng(10);
    for (const e of loraLayout(config, lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapters[e.offset + i] = 0.3 * rng.normal();
    await compare(config, { lora }, adapters, (step) => 1000 + step);
  });
});
