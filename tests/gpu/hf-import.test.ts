// Training resumes from an exported HF folder: export → importHfFolder → checkpointFromImport → Trainer.restore
// (or the checkpoint store + resume) puts exactly the exported weights on the GPU and then follows the same loss
// curve as a fresh trainer given those weights directly — and not the curve of its own random init.
import { describe, expect, it } from 'vitest';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { checkpointFromImport, importHfFolder } from '../../src/export/import.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { packRows } from '../../src/train/batches.ts';
import { encodeCheckpoint, MemoryCheckpointStore } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const LLAMA = { vocabSize: 260, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 8, tieEmbeddings: false };
const MODELS = [
  ['Llama', makeConfig(LLAMA)],
  // The families' switches (#20): their extra parameters go through the checkpoint, AdamW state and the restore.
  ['Qwen2 (q/k/v biases)', makeConfig({ ...LLAMA, attentionBias: true })],
  ['Qwen3 (q/k norms) with llama3 RoPE scaling', makeConfig({ ...LLAMA, qkNorm: true, ropeTheta: 500, ropeScaling: { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 2, originalMaxPositionEmbeddings: 8 } })],
] as const;
const tokenizer = trainBpe(['ab'], { vocabSize: 257, specialTokens: ['<|endoftext|>'] });
const rng = new Rng(5);
const rows = packRows(Array.from({ length: 24 }, () => {
  const s = rng.int(36);
  return { tokens: Uint32Array.from({ length: 6 + rng.int(6) }, (_, i) => (s + i) % 36) };
}), 8, 36);
const train = makeTrainConfig({ batchSize: 2, seqLen: 8, steps: 6, lr: 1e-2, warmupSteps: 1, evalEvery: 0, seed: 3 });
const trainer = (model: ModelConfig, store = new MemoryCheckpointStore()) => new Trainer({ device: gpu().device, model, train, rows, store });

async function losses(t: Trainer, n = 3): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await t.trainStep()).loss);
  t.destroy();
  return out;
}

describe('training from an imported HF folder', () => {
  it.each(MODELS)('%s: restore(checkpointFromImport(...)) and store + resume both continue from the exported weights', async (_, model) => {
    const weights = initParams(model, 42); // not the trainer's own init (seed 3)
    for (const e of paramLayout(model).entries) if (e.init === 'zeros') for (let i = 0; i < e.size; i++) weights[e.offset + i] = 0.1 * Math.sin(i + 1);
    const files = new Map(exportHfFolder({ config: model, params: weights, tokenizer }).map((f) => [f.path, f.bytes]));
    const imp = importHfFolder(files);
    const ckpt = checkpointFromImport(imp, train);

    expect(imp.config).toEqual(model);
    const direct = trainer(model);
    direct.gpu.uploadParams(weights);
    const want = await losses(direct);

    const restored = trainer(model);
    restored.restore(ckpt);
    expect([...(await restored.gpu.readParams())]).toEqual([...weights]);
    expect(await losses(restored)).toEqual(want);

    const store = new MemoryCheckpointStore();
    await store.put('latest', encodeCheckpoint(ckpt));
    const resumed = trainer(model, store);
    expect(await resumed.resume()).toBe(true);
    expect(resumed.step).toBe(0);
    expect(await losses(resumed)).toEqual(want);

    const own = await losses(trainer(model), 1);
    expect(own[0]).not.toBe(want[0]);
  });
});
