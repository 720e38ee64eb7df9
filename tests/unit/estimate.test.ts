// The memory plan of a run (src/engine/runs/estimate.ts): its parts by kind, and what would make a run that does not
// fit the adapter fit — a smaller batch or sequence while the logits are the problem, a smaller model when the
// weights, gradients and moments alone are.
import { describe, expect, it } from 'vitest';
import { estimateMemory, fitAdvice } from '../../src/engine/runs/estimate.ts';
import { makeConfig } from '../../src/model/config.ts';
import { DEFAULT_LOGITS_BUDGET_BYTES, logitsChunkRows } from '../../src/model/gpu-classifier.ts';
import { loraLayout, makeLoraConfig } from '../../src/model/lora.ts';
import { countParams, largestTensor } from '../../src/model/params.ts';

const GiB = 1024 ** 3;
// Qwen2.5-0.5B's shape with a smaller depth: a 151,936-token vocabulary makes the logits the largest buffer.
const qwenish = makeConfig({ vocabSize: 151936, hidden: 896, layers: 2, heads: 14, kvHeads: 2, headDim: 64, intermediate: 4864, maxSeqLen: 4096 });

describe('estimateMemory and fitAdvice', () => {
  it('splits the plan into weights, gradients, moments, activations and logits (one chunk of rows, as GpuModel allocates)', () => {
    const m = estimateMemory({ model: qwenish, B: 4, T: 128, teacher: { kind: 'none' } });
    const part = (re: RegExp) => m.parts.find((p) => re.test(p.name))!.bytes;
    const P = countParams(qwenish);
    expect(part(/^weights/)).toBe(4 * P);
    expect(part(/^gradients/)).toBe(4 * P);
    expect(part(/^AdamW/)).toBe(8 * P);
    // 512 rows of 151,936 logits are 311 MB: over the 64 MiB budget, so chunks of 64 rows (38.9 MB).
    expect(logitsChunkRows(512, 151936)).toBe(64);
    expect(part(/^logits/)).toBe(4 * 64 * 151936);
    expect(part(/^logits/)).toBeLessThanOrEqual(DEFAULT_LOGITS_BUDGET_BYTES);
    expect(m.bytes).toBe(m.parts.reduce((s, p) => s + p.bytes, 0));
    // The slabs are split between tensors: the largest buffer is a tensor (here the embedding), never the slab.
    expect(largestTensor(qwenish)).toBe(151936 * 896);
    expect(m.largestBuffer).toBe(4 * 151936 * 896);
    // A dense teacher's logits are the batch's input, (B·T, V) whole: the largest buffer at large B·T.
    const kd = estimateMemory({ model: qwenish, B: 4, T: 128, teacher: { kind: 'dense' } });
    expect(kd.parts.find((p) => /^teacher logits/.test(p.name))!.bytes).toBe(4 * 512 * 151936);
    expect(kd.largestBuffer).toBe(Math.max(4 * 151936 * 896, 4 * 512 * 151936));
    expect(estimateMemory({ model: qwenish, B: 8, T: 256, teacher: { kind: 'dense' } }).largestBuffer).toBe(4 * 2048 * 151936);
    // Small batches fit the budget whole: one chunk of all rows.
    expect(estimateMemory({ model: qwenish, B: 1, T: 64, teacher: { kind: 'none' } }).parts.find((p) => /^logits/.test(p.name))!.bytes).toBe(4 * 64 * 151936);
    expect(logitsChunkRows(110, 151936)).toBe(110); // 110·151,936·4 bytes ≤ 64 MiB: one chunk
    expect(logitsChunkRows(111, 151936)).toBe(64);
  });

  it('counts every teacher of a mixture on the GPU, each as the single dense teacher is counted', () => {
    const teacher = makeConfig({ vocabSize: 151936, hidden: 128, layers: 2, heads: 2, kvHeads: 1, headDim: 64, intermediate: 256, maxSeqLen: 512 });
    const other = makeConfig({ ...teacher, layers: 3 });
    const x = { model: qwenish, B: 2, T: 64, teacher: { kind: 'dense' as const }, teacherModel: teacher };
    const one = estimateMemory(x), two = estimateMemory({ ...x, mixtureModels: [other] });
    const single = one.parts.find((p) => /^teacher model/.test(p.name))!.bytes;
    const added = two.parts.find((p) => /^mixture teacher 2/.test(p.name))!.bytes;
    expect(added).toBeGreaterThan(single); // one layer more
    expect(estimateMemory({ ...x, teacherModel: other }).parts.find((p) => /^teacher model/.test(p.name))!.bytes).toBe(added);
    expect(two.bytes).toBe(one.bytes + added);
  });
  it('says which batch and sequence length fit when the teacher logits are too large, and a smaller model when nothing does', () => {
    const x = { model: qwenish, B: 8, T: 512, teacher: { kind: 'dense' as const } };
    expect(estimateMemory(x).largestBuffer).toBeGreaterThan(GiB);
    const advice = fitAdvice(x, GiB, 8 * GiB)!;
    const [, B, T] = /batch (\d+) × sequence length (\d+) would fit/.exec(advice)!.map(Number);
    expect(estimateMemory({ ...x, B: B!, T: T! }).largestBuffer).toBeLessThanOrEqual(GiB);
    expect(B! * T!).toBeLessThan(8 * 512);
    expect(fitAdvice({ ...x, B: 1, T: 8 }, GiB, 8 * GiB)).toBeUndefined();
    expect(fitAdvice(x, GiB, 1 * GiB)).toMatch(/weights, gradients and AdamW moments alone take .* GiB: train LoRA adapters on a frozen bf16 base instead \(.*\), or pick a smaller model/);
    expect(fitAdvice({ ...x, lora: makeLoraConfig() }, GiB, 0.1 * GiB)).toMatch(/the frozen base alone takes .* GiB: hold it in 16 bits \(bf16\), or pick a smaller model/);
  });

  it('LoRA: the base counts once (no gradients, no moments), the adapters four times, plus x·Aᵀ per adapted linear', () => {
    const lora = makeLoraConfig({ rank: 8, alpha: 16, targets: ['wq', 'wv'] });
    const B = 2, T = 64;
    const full = estimateMemory({ model: qwenish, B, T, teacher: { kind: 'none' } });
    const m = estimateMemory({ model: qwenish, B, T, teacher: { kind: 'none' }, lora });
    const part = (re: RegExp) => m.parts.find((p) => re.test(p.name))!.bytes;
    const P = countParams(qwenish), A = loraLayout(qwenish, lora).count;
    expect(A).toBe(2 * (8 * 896 + 896 * 8) + 2 * (8 * 896 + 128 * 8)); // per layer: q (896→896), v (896→128)
    expect(part(/^weights \(frozen base\)/)).toBe(4 * P);
    expect(part(/^LoRA adapters/)).toBe(16 * A);
    expect(part(/^LoRA activations/)).toBe((4 + 1) * B * T * 8 * 4);
    expect(m.parts.some((p) => /^gradients|^AdamW/.test(p.name))).toBe(false);
    expect(full.bytes - m.bytes).toBe(12 * P - 16 * A - (4 + 1) * B * T * 8 * 4);
    // Recompute keeps one layer's activations of the two.
    const again = estimateMemory({ model: qwenish, B, T, teacher: { kind: 'none' }, lora, recompute: true });
    const acts = (e: typeof m) => e.parts.find((p) => /^activations/.test(p.name))!.bytes;
    const n = B * T;
    expect(acts(m) - acts(again)).toBe(4 * (n * 896 * 2 + n * 2 + n * 896 * 2 + n * 128 * 2 + B * 14 * T + n * 4864 * 3));
    expect(fitAdvice({ model: qwenish, B: 8, T: 512, teacher: { kind: 'none' }, lora }, 8 * GiB, estimateMemory({ model: qwenish, B: 8, T: 512, teacher: { kind: 'none' }, lora, recompute: true }).bytes))
      .toMatch(/recomputing each layer's activations in the backward would fit at this batch/);
    // A bf16 base: the seven linears of each layer in 2 bytes a weight, the rest (embedding, norms) in 4.
    const half = estimateMemory({ model: qwenish, B, T, teacher: { kind: 'none' }, lora: makeLoraConfig({ ...lora, base: 'bf16' }) });
    const linears = 2 * (896 * 896 + 2 * 128 * 896 + 896 * 896 + 3 * 896 * 4864);
    expect(half.parts.find((p) => /^weights \(frozen base, linears in bf16\)/.test(p.name))!.bytes).toBe(4 * P - 2 * linears);
    // Dropout: one (B·T, widest adapted input) scratch; none at p = 0.
    expect(m.parts.some((p) => /dropout/.test(p.name))).toBe(false);
    const dropped = estimateMemory({ model: qwenish, B, T, teacher: { kind: 'none' }, lora: makeLoraConfig({ ...lora, dropout: 0.1 }) });
    expect(dropped.bytes - m.bytes).toBe(B * T * 896 * 4);
  });

  it('counts the family switches: q/k/v biases in the parameters and ones; q/k norm gains, their inputs and gradients', () => {
    const B = 2, T = 16, N = B * T, L = qwenish.layers, HD = 14 * 64, KD = 2 * 64;
    const acts = (c: typeof qwenish) => estimateMemory({ model: c, B, T, teacher: { kind: 'none' } }).parts.find((p) => /^activations/.test(p.name))!.bytes;
    const qwen2 = makeConfig({ ...qwenish, attentionBias: true });
    const qwen3 = makeConfig({ ...qwenish, qkNorm: true });
    expect(countParams(qwen2) - countParams(qwenish)).toBe(L * (HD + 2 * KD));
    expect(countParams(qwen3) - countParams(qwenish)).toBe(L * 2 * 64);
    expect(acts(qwen2) - acts(qwenish)).toBe(4 * N);
    expect(acts(qwen3) - acts(qwenish)).toBe(4 * (L * (N * HD + N * KD + N * 14 + N * 2) + N * HD + N * KD));
  });
});
