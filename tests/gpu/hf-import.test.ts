// Training resumes from an exported HF folder: export → importHfFolder → checkpointFromImport → Trainer.restore
// (or the checkpoint store + resume) puts exactly the exported weights on the GPU and then follows the same loss
// curve as a fresh trainer given those weights directly — and not the curve of its own random init.
import { describe, expect, it } from 'vitest';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { checkpointFromImport, importHfFolder } from '../../src/export/import.ts';
import { makeConfig } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { packRows } from '../../src/train/batches.ts';
import { encodeCheckpoint, MemoryCheckpointStore } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const model = makeConfig({ vocabSize: 260, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 8, tieEmbeddings: false });
const tokenizer = trainBpe(['ab'], { vocabSize: 257, specialTokens: ['<|endoftext|>'] });
const rng = new Rng(5);
const rows = packRows(Array.from({ length: 24 }, () => {
  const s = rng.int(36);
  return { tokens: Uint32Array.from({ length: 6 + rng.int(6) }, (_, i) => (s + i) % 36) };
}), 8, 36);
const train = makeTrainConfig({ batchSize: 2, seqLen: 8, steps: 6, lr: 1e-2, warmupSteps: 1, evalEvery: 0, seed: 3 });
const trainer = (store = new MemoryCheckpointStore()) => new Trainer({ device: gpu().device, model, train, rows, store });

async function losses(t: Trainer, n = 3): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await t.trainStep()).loss);
  t.destroy();
  return out;
}

describe('training from an imported HF folder', () => {
  it('restore(checkpointFromImport(...)) and store + resume both continue from the exported weights', async () => {
    const weights = initParams(model, 42); // not the trainer's own init (seed 3)
    const files = new Map(exportHfFolder({ config: model, params: weights, tokenizer }).map((f) => [f.path, f.bytes]));
    const imp = importHfFolder(files);
    const ckpt = checkpointFromImport(imp, train);

    const direct = trainer();
    direct.gpu.uploadParams(weights);
    const want = await losses(direct);

    const restored = trainer();
    restored.restore(ckpt);
    expect([...(await restored.gpu.readParams())]).toEqual([...weights]);
    expect(await losses(restored)).toEqual(want);

    const store = new MemoryCheckpointStore();
    await store.put('latest', encodeCheckpoint(ckpt));
    const resumed = trainer(store);
    expect(await resumed.resume()).toBe(true);
    expect(resumed.step).toBe(0);
    expect(await losses(resumed)).toEqual(want);

    const own = await losses(trainer(), 1);
    expect(own[0]).not.toBe(want[0]);
  });
});
