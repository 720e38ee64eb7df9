// The trainer with LoRA (train.lora): adapters on a frozen base learn, checkpoints hold the adapters (and W_h) with
// their moments — not the base —, resume continues the same loss curve, and mismatches are refused with reasons.
// With LoRA dropout the masks are hashed from (seed, step, micro-batch): training learns, and resume is exact.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { loraLayout, makeLoraConfig } from '../../src/model/lora.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { packRows } from '../../src/train/batches.ts';
import { MemoryCheckpointStore, decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import type { TrainLog } from '../../src/train/step-trainer.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { PairTrainer } from '../../src/train/pair-trainer.ts';
import type { PreferencePair } from '../../src/train/dpo.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const model = makeConfig({ vocabSize: 37, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 8, attentionBias: true, initStd: 0.4 });
const rng = new Rng(8);
// Sequences counting upward mod 36 (token 36 ends one): learnable by adapters of rank 4 on a random base whose
// embedding is large enough (initStd 0.4) for the logits to move.
const examples = Array.from({ length: 30 }, () => {
  const s = rng.int(36);
  return { tokens: Uint32Array.from({ length: 6 + rng.int(6) }, (_, i) => (s + i) % 36) };
});
const rows = packRows(examples, 8, 36);
const base = initParams(model, 4);
const lora = { rank: 4, alpha: 8, targets: ['wq', 'wv', 'wo', 'w_up', 'w_down'] };
const settings = { batchSize: 2, seqLen: 8, steps: 8, lr: 3e-2, warmupSteps: 1, evalEvery: 0, evalBatches: 2, seed: 3, lora };
const hidden = { hiddenWeight: 0.5, hiddenKind: 'mse', teacherHiddenWidth: 5 };
const teacherHidden = (b: { ids: Uint32Array }) => Float32Array.from({ length: b.ids.length * 5 }, (_, i) => Math.cos(b.ids[Math.floor(i / 5)]! * 0.3 + i % 5));

function trainer(over: Record<string, unknown>, store: MemoryCheckpointStore, logs: TrainLog[], data = rows) {
  const train = makeTrainConfig({ ...settings, ...over });
  return new Trainer({
    device: gpu().device, model, train, rows: data, evalRows: data, store, base, log: (e) => logs.push(e),
    ...(train.hiddenWeight > 0 ? { teacherFor: (b: { ids: Uint32Array }) => ({ teacherHidden: teacherHidden(b) }) } : {}),
  });
}
const losses = (logs: TrainLog[]) => logs.filter((l) => l.kind === 'step').map((l) => (l as { loss: number }).loss);

describe('Trainer with LoRA', () => {
  it('learns with the base frozen; the checkpoint holds the adapters and their moments', async () => {
    const logs: TrainLog[] = [];
    const t = trainer({ steps: 16, lr: 3e-2, weightDecay: 0 }, new MemoryCheckpointStore(), logs, rows.slice(0, 4));
    const before = (await t.evaluate())!;
    await t.run();
    const after = logs.filter((l) => l.kind === 'eval').at(-1) as { loss: number };
    expect(after.loss).toBeLessThan(before.loss - 0.3);
    expect(await t.gpu.readParams()).toEqual(base);
    const snap = await t.snapshot();
    const n = loraLayout(model, makeLoraConfig(lora as never)).slabFloats;
    expect(snap.params).toHaveLength(n);
    expect(snap.m).toHaveLength(n);
    expect([...snap.params]).toEqual([...(await t.gpu.readAdapters())]);
    expect(snap.train.lora).toEqual(makeLoraConfig(lora as never));
    expect(t.adapters?.lora).toEqual(snap.train.lora);
    t.destroy();
  });

  it('resumes adapters and W_h onto the same loss curve, and refuses a checkpoint of another LoRA', async () => {
    const full: TrainLog[] = [];
    const t = trainer(hidden, new MemoryCheckpointStore(), full); await t.run(); t.destroy();
    const store = new MemoryCheckpointStore();
    const first = trainer(hidden, store, []); await first.run(4); first.destroy();
    const ck = decodeCheckpoint((await store.get('latest'))!);
    expect(ck.tail).toHaveLength(5 * model.hidden);
    const rest: TrainLog[] = [];
    const second = trainer(hidden, store, rest);
    expect(await second.resume()).toBe(true);
    await second.run(); second.destroy();
    expect(losses(rest)).toEqual(losses(full).slice(4));
    const other = trainer({ ...hidden, lora: { ...lora, rank: 2 } }, store, []);
    await expect(other.resume()).rejects.toThrow(/checkpoint's LoRA .* is not this run's/);
    other.destroy();
    expect(() => new Trainer({ device: gpu().device, model, train: makeTrainConfig(settings), rows })).toThrow(/no base weights/);
    expect(() => makeTrainConfig({ lora: { rank: 0 } })).toThrow(/lora: rank must be a positive integer/);
  });

  it('LoRA dropout 0.2, 2 micro-batches a step: learns, is not the dropout-0 curve, and resume is exact', async () => {
    const drop = { lora: { ...lora, dropout: 0.2 }, gradAccum: 2, weightDecay: 0 };
    const logs: TrainLog[] = [];
    const t = trainer({ ...drop, steps: 16 }, new MemoryCheckpointStore(), logs, rows.slice(0, 4));
    const before = (await t.evaluate())!;
    await t.run();
    t.destroy();
    const after = logs.filter((l) => l.kind === 'eval').at(-1) as { loss: number };
    expect(after.loss).toBeLessThan(before.loss - 0.3);
    const plain: TrainLog[] = [];
    const z = trainer({ ...drop, lora, steps: 16 }, new MemoryCheckpointStore(), plain, rows.slice(0, 4));
    await z.run();
    z.destroy();
    expect(losses(plain)[0]).toBe(losses(logs)[0]); // B = 0 at the start: dropout on the adapter's input changes nothing yet
    expect(losses(plain).slice(1)).not.toEqual(losses(logs).slice(1));
    const full: TrainLog[] = [];
    const u = trainer(drop, new MemoryCheckpointStore(), full); await u.run(); u.destroy();
    const store = new MemoryCheckpointStore();
    const first = trainer(drop, store, []); await first.run(4); first.destroy();
    const rest: TrainLog[] = [];
    const second = trainer(drop, store, rest);
    expect(await second.resume()).toBe(true);
    await second.run(); second.destroy();
    expect(losses(rest)).toEqual(losses(full).slice(4));
  });

  it('DPO with LoRA: the reference is the shared base with adapters off; the margin grows, the base stays, resume is exact', async () => {
    const pairs: PreferencePair[] = [
      { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
      { prompt: [8], chosen: [9, 10], rejected: [11, 12, 13] },
      { prompt: [14, 15], chosen: [16], rejected: [17, 18] },
      { prompt: [19], chosen: [20, 21], rejected: [22] },
    ];
    const train = makeTrainConfig({ ...settings, batchSize: 2, steps: 8, lr: 0.05, weightDecay: 0 });
    const mk = () => new PairTrainer(gpu().device, model, train, pairs, pairs, { kind: 'dpo', beta: 0.5 }, base);
    const full = mk();
    const logs: number[] = [];
    const first = (await full.trainStep()).margin;
    expect(Math.abs(first)).toBeLessThan(1e-6); // the policy starts as its reference: B = 0
    for (let s = 2; s <= 8; s++) logs.push((await full.trainStep()).loss);
    const e = (await full.evaluate())!;
    expect(e.pairAccuracy).toBe(1);
    expect(await full.policy.readParams()).toEqual(base);
    expect(full.adapters?.lora).toEqual(train.lora);
    full.destroy();
    // Four steps, a snapshot, a new trainer restored from it: the same next four losses.
    const a = mk();
    for (let s = 1; s <= 4; s++) await a.trainStep();
    const snap = await a.snapshot();
    expect(snap.params).toHaveLength(a.policy.stateSizes.params);
    a.destroy();
    const b = mk();
    b.restore(snap);
    const rest: number[] = [];
    for (let s = 5; s <= 8; s++) rest.push((await b.trainStep()).loss);
    b.destroy();
    expect(rest).toEqual(logs.slice(3));
  });
});
