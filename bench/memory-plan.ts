// Memory of real-size pretrained students (issue #20): the plan (src/engine/runs/estimate.ts) for the exact
// configs of SmolLM2-135M, Qwen2.5-0.5B, Qwen3-0.6B and Llama-3.2-1B (their config.json fields, written here;
// random weights: the Hub is out of reach), and — with --step — one full training step of the first on this
// machine's adapter with every GPU buffer's bytes counted as it is created and destroyed, set against the plan.
//   node scripts/build-node.mjs bench/memory-plan.ts && node .node-dist/memory-plan.mjs [--step smollm2-135m]
//        [--batch 1] [--seq 32] [--lora 16] [--base f32|bf16|f16] [--recompute] [--alloc-only]
//        [--out bench/memory-plan-<date>.json]
// --alloc-only builds the model and counts what it allocates without a step (for shapes a CPU driver cannot run).
// Each plan is given for full fine-tuning and for LoRA (rank 16 on q, k, v, o, gate, up, down; f32 and bf16 frozen
// base); --lora R measures the step with LoRA of rank R on all seven targets (--base bf16: a 16-bit base).
// Peak host memory (resident set) is reported beside it: what the step really costs this process.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { estimateMemory } from '../src/engine/runs/estimate.ts';
import { modelConfigFromHf } from '../src/export/hf-config.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { GpuModel } from '../src/model/gpu-model.ts';
import { makeLoraConfig, type LoraConfig } from '../src/model/lora.ts';
import { countParams } from '../src/model/params.ts';
import { initParams } from '../src/model/ref-model.ts';
import { describeAdapter } from '../src/platform/gpu.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { packRows } from '../src/train/batches.ts';
import { makeTrainConfig } from '../src/train/config.ts';
import { Trainer } from '../src/train/trainer.ts';

/** The config.json fields of the real models (as published by their authors), enough for modelConfigFromHf. */
export const REAL_CONFIGS: Record<string, Record<string, unknown>> = {
  'smollm2-135m': {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536,
    num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, hidden_act: 'silu', max_position_embeddings: 8192,
    rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, initializer_range: 0.041666666666666664,
  },
  'qwen2.5-0.5b': {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864,
    num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, hidden_act: 'silu', max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, initializer_range: 0.02,
  },
  'qwen3-0.6b': {
    architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072,
    num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, hidden_act: 'silu', max_position_embeddings: 40960,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, initializer_range: 0.02, attention_bias: false,
  },
  'llama-3.2-1b': {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192,
    num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, hidden_act: 'silu', max_position_embeddings: 131072,
    rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, initializer_range: 0.02,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  },
};

const GiB = 1024 ** 3;
const LORA16: LoraConfig = makeLoraConfig({ rank: 16, alpha: 32 });
const LORA16_BF16: LoraConfig = makeLoraConfig({ rank: 16, alpha: 32, base: 'bf16' });
const VARIANTS: { lora?: LoraConfig; recompute?: boolean }[] = [{}, { lora: LORA16 }, { lora: LORA16_BF16 }, { lora: LORA16_BF16, recompute: true }];
const label = (lora?: LoraConfig, recompute?: boolean) =>
  `${lora ? `lora r${lora.rank} ${lora.targets.length === 7 ? 'all linears' : lora.targets.join(',')}, ${lora.base} base` : 'full'}${recompute ? ', activations recomputed' : ''}`;
const args = process.argv.slice(2);
const opt = (k: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : undefined; };

/** The plan of each real model at a few batch × sequence shapes, or why it cannot be planned yet. */
function plans(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, json] of Object.entries(REAL_CONFIGS)) {
    let c: ModelConfig;
    try {
      c = modelConfigFromHf(json, `${name} config.json`);
    } catch (e) {
      out[name] = { supported: false, why: (e as Error).message };
      continue;
    }
    out[name] = {
      supported: true, params: countParams(c),
      shapes: [[1, 32], [4, 128], [8, 256], [4, 256]].flatMap(([B, T]) => VARIANTS.map(({ lora, recompute }) => {
        const m = estimateMemory({ model: c, B: B!, T: T!, teacher: { kind: 'none' }, ...(lora ? { lora } : {}), ...(recompute ? { recompute } : {}) });
        return { B, T, training: label(lora, recompute), GiB: +(m.bytes / GiB).toFixed(3), largestBufferGiB: +(m.largestBuffer / GiB).toFixed(3), parts: Object.fromEntries(m.parts.map((p) => [p.name, +(p.bytes / GiB).toFixed(3)])) };
      })),
    };
  }
  return out;
}

/** One training step of `name` at B × T with every buffer counted: created bytes, live peak, against the plan. */
async function step(name: string, B: number, T: number, lora?: LoraConfig, recompute?: boolean, allocOnly?: boolean): Promise<Record<string, unknown>> {
  const c = modelConfigFromHf(REAL_CONFIGS[name]!, name);
  const ctx = await acquireNodeGpu();
  const { device } = ctx;
  let live = 0, peak = 0;
  const sizes = new WeakMap<GPUBuffer, number>();
  const create = device.createBuffer.bind(device);
  device.createBuffer = (d: GPUBufferDescriptor) => {
    const b = create(d);
    // Staging buffers for read-back (MAP_READ) are transient and not part of a run's state.
    if (!(d.usage & GPUBufferUsage.MAP_READ)) {
      sizes.set(b, d.size);
      live += d.size;
      peak = Math.max(peak, live);
      const destroy = b.destroy.bind(b);
      b.destroy = () => { if (sizes.has(b)) { live -= sizes.get(b)!; sizes.delete(b); } destroy(); };
    }
    return b;
  };
  const train = makeTrainConfig({ batchSize: B, seqLen: T, steps: 1, warmupSteps: 0, evalEvery: 0, lr: 1e-4, ...(lora ? { lora } : {}), ...(recompute ? { recompute } : {}) });
  const plan = estimateMemory({ model: c, B, T, teacher: { kind: 'none' }, ...(lora ? { lora } : {}), ...(recompute ? { recompute } : {}) });
  // The plan's parts a training step allocates (no sample generator, teacher or reference here).
  const planned = plan.parts.filter((p) => !/generator|teacher|reference/.test(p.name)).reduce((s, p) => s + p.bytes, 0);
  if (allocOnly) {
    // What the trainer allocates, without a step (a 1B model's step at B·T = 1,024 is days on a CPU driver) and
    // without uploading weights: the buffers are the same.
    const t0 = performance.now();
    const m = new GpuModel(device, c, B, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } }, { weightDecay: train.weightDecay, clipNorm: train.clipNorm },
      { ...(lora ? { lora } : {}), ...(recompute ? { recompute } : {}) });
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - t0;
    const largest = Math.max(...m.state.params.buffers.map((b) => b.size), ...(m.params !== m.state.params ? m.params.buffers.map((b) => b.size) : []));
    m.destroy();
    return {
      model: name, training: label(lora, recompute), adapter: describeAdapter(ctx.report), B, T, params: countParams(c), allocationOnly: true, buildMs: Math.round(ms),
      allocatedPeakBytes: peak, plannedBytes: planned, ratio: +(peak / planned).toFixed(4), largestSlabBufferBytes: largest, peakHostRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  }
  const rows = packRows(Array.from({ length: B + 1 }, (_, i) => ({ tokens: Uint32Array.from({ length: T + 1 }, (_, t) => (i * 7919 + t * 104729) % c.vocabSize) })), T, 0);
  const t0 = performance.now();
  // LoRA: a random frozen base (the Hub is out of reach), held on the host only until it is uploaded.
  const trainer = new Trainer({ device, model: c, train, rows, ...(lora ? { base: initParams(c, 1) } : {}) });
  const built = performance.now();
  const log = await trainer.trainStep();
  const done = performance.now();
  trainer.destroy();
  const rss = process.resourceUsage().maxRSS * 1024;
  return {
    model: name, training: label(lora, recompute), adapter: describeAdapter(ctx.report), B, T, params: countParams(c), loss: log.loss, lnV: Math.log(c.vocabSize),
    buildMs: Math.round(built - t0), stepMs: Math.round(done - built),
    allocatedPeakBytes: peak, plannedBytes: planned, ratio: +(peak / planned).toFixed(4), peakHostRssBytes: rss,
  };
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().slice(0, 10);
  const out = opt('out') ?? `bench/memory-plan-${stamp}.json`;
  const result: Record<string, unknown> = { kind: 'memory-plan', date: new Date().toISOString(), plans: plans() };
  const which = opt('step');
  const loraRank = opt('lora');
  const lora = loraRank ? makeLoraConfig({ rank: Number(loraRank), alpha: 2 * Number(loraRank), base: (opt('base') ?? 'f32') as LoraConfig['base'] }) : undefined;
  if (which) result.step = await step(which, Number(opt('batch') ?? 1), Number(opt('seq') ?? 32), lora, args.includes('--recompute'), args.includes('--alloc-only'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  process.exit(0);
}

void main().catch((e) => { console.error(e); process.exit(1); });
