// The trainer on Dawn: deterministic given a seed, resume continues the same loss curve, non-finite steps are
// skipped and repeated ones roll back to the last checkpoint, gradient accumulation averages micro-batches.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { packRows } from '../../src/train/batches.ts';
import { MemoryCheckpointStore, decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { readF32, readF32Into } from '../../src/gpu/dispatch.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import type { TrainLog } from '../../src/train/step-trainer.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const model = makeConfig({ vocabSize: 37, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 8 });
const rng = new Rng(5);
// A learnable language: each sequence counts upward mod 36 from a random start (token 36 = end of sequence).
const examples = Array.from({ length: 40 }, () => {
  const s = rng.int(36);
  return { tokens: Uint32Array.from({ length: 6 + rng.int(6) }, (_, i) => (s + i) % 36) };
});
const rows = packRows(examples, 8, 36);
const evalRows = packRows(examples.slice(0, 8), 8, 36);
const base = { batchSize: 2, seqLen: 8, steps: 8, lr: 3e-2, warmupSteps: 1, evalEvery: 0, evalBatches: 2, seed: 3 };

function trainer(over: Record<string, unknown> = {}, store = new MemoryCheckpointStore(), logs: TrainLog[] = [], data = rows) {
  return new Trainer({ device: gpu().device, model, train: makeTrainConfig({ ...base, ...over }), rows: data, evalRows: data === rows ? evalRows : data, store, log: (e) => logs.push(e) });
}
// Four rows the model can memorise within a few steps (evaluated on themselves).
const small = rows.slice(0, 4);

const losses = (logs: TrainLog[]) => logs.filter((l) => l.kind === 'step').map((l) => (l as { loss: number }).loss);

describe('Trainer', () => {
  it('learns (loss falls), evaluates, and is deterministic given the seed', async () => {
    const a: TrainLog[] = [], b: TrainLog[] = [];
    const t1 = trainer({ steps: 12, lr: 1e-2, weightDecay: 0 }, undefined, a, small);
    const before = (await t1.evaluate())!;
    await t1.run(); t1.destroy();
    const t2 = trainer({ steps: 12, lr: 1e-2, weightDecay: 0 }, undefined, b, small); await t2.run(); t2.destroy();
    expect(losses(a)).toHaveLength(12);
    expect(losses(a)).toEqual(losses(b));
    const after = a.filter((l) => l.kind === 'eval').at(-1) as { loss: number; ppl: number };
    console.log(`held-out loss ${before.loss.toFixed(3)} → ${after.loss.toFixed(3)}; train`, losses(a).map((x) => x.toFixed(2)).join(' '));
    expect(before.loss).toBeGreaterThan(Math.log(37) - 0.2); // ≈ uniform at init
    expect(after.loss).toBeLessThan(before.loss - 0.5);
    expect(after.ppl).toBeCloseTo(Math.exp(after.loss), 6);
  });

  it('resumes from a checkpoint onto the same loss curve', async () => {
    const full: TrainLog[] = [];
    const t = trainer({}, undefined, full); await t.run(); t.destroy();
    const store = new MemoryCheckpointStore();
    const first = trainer({}, store); await first.run(4); first.destroy();
    expect(decodeCheckpoint((await store.get('latest'))!).step).toBe(4);
    const rest: TrainLog[] = [];
    const second = trainer({}, store, rest);
    expect(await second.resume()).toBe(true);
    await second.run(); second.destroy();
    expect(losses(rest)).toEqual(losses(full).slice(4));
  });

  it('snapshots straight into the checkpoint blob: the same floats as the GPU holds, encoded without a copy', async () => {
    const t = trainer();
    await t.run(2);
    const snap = await t.snapshot();
    expect(encodeCheckpoint(snap).buffer).toBe(snap.params.buffer);
    expect([...snap.params]).toEqual([...(await t.gpu.readParams())]);
    expect(snap.m.some((x) => x !== 0) && snap.v.some((x) => x > 0)).toBe(true);
    t.destroy();
  });

  it('readF32Into reads odd lengths at odd offsets through chunks as readF32 does', async () => {
    const { device } = gpu();
    const data = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 1e3);
    const buf = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, data);
    for (const [off, n, chunk] of [[0, 1001, 64], [3, 997, 7], [500, 1, 1], [17, 300, 1 << 20]] as const) {
      const out = new Float32Array(n).fill(NaN);
      await readF32Into(device, buf, out, off, chunk);
      expect([...out]).toEqual([...(await readF32(device, buf, n, off))]);
      expect([...out]).toEqual([...data.subarray(off, off + n)]);
    }
    buf.destroy();
  });

  it('skips non-finite steps and rolls back to the last checkpoint after maxSkips of them', async () => {
    const store = new MemoryCheckpointStore();
    const logs: TrainLog[] = [];
    const t = trainer({ maxSkips: 2 }, store, logs);
    await t.trainStep(); await t.trainStep();
    await t.save();
    const good = await t.gpu.readParams();
    const bad = good.slice(); bad[0] = Number.NaN; // poison the embedding of token 0… and every row reads wte
    bad.fill(Number.NaN, 0, bad.length);
    t.gpu.uploadParams(bad);
    const s1 = await t.trainStep();
    expect(s1.skipped).toBe(true);
    const s2 = await t.trainStep();
    expect(s2.skipped).toBe(true);
    expect(logs.some((l) => l.kind === 'event' && /rolled back to the checkpoint of step 2/.test(l.message))).toBe(true);
    expect([...(await t.gpu.readParams())]).toEqual([...good]);
    const s3 = await t.trainStep();
    expect(s3.skipped).toBe(false);
    expect(Number.isFinite(s3.loss)).toBe(true);
    t.destroy();
  });

  it('gradient accumulation over 2 micro-batches of 1 equals one batch of 2 at the first step', async () => {
    const a: TrainLog[] = [], b: TrainLog[] = [];
    const t1 = trainer({ steps: 1, evalBatches: 1 }, undefined, a);
    await t1.trainStep();
    const p1 = await t1.gpu.readParams(); t1.destroy();
    const t2 = trainer({ steps: 1, batchSize: 1, gradAccum: 2, evalBatches: 1 }, undefined, b);
    await t2.trainStep();
    const p2 = await t2.gpu.readParams(); t2.destroy();
    // Same rows in the same order (the shuffle depends on the seed only); the weighted mean differs only if the two
    // rows have different target counts, which packed rows do not.
    expect((b[0] as { loss: number }).loss).toBeCloseTo((a[0] as { loss: number }).loss, 5);
    let maxDiff = 0;
    for (let i = 0; i < p1.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p1[i]! - p2[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
  });
});

describe('Trainer evaluation against a teacher', () => {
  it('reports KL to the teacher ≈ 0 and top-1 agreement 1 when the teacher is the student itself', async () => {
    const { refForward, initParams } = await import('../../src/model/ref-model.ts');
    const m = makeConfig({ ...model, initStd: 0.5 });
    const train = makeTrainConfig({ ...base, objective: 'fkl', kdWeight: 1, ceWeight: 0, steps: 1 });
    const slab = initParams(m, train.seed); // what the Trainer initialises the student with
    const t = new Trainer({
      device: gpu().device, model: m, train, rows, evalRows,
      teacherFor: (b) => ({ teacherLogits: Float32Array.from(refForward(m, slab, b.ids, train.batchSize, train.seqLen).logits) }),
    });
    const e = (await t.evaluate())!;
    t.destroy();
    expect(e.klToTeacher!).toBeLessThan(1e-6);
    expect(e.klToTeacher!).toBeGreaterThanOrEqual(-1e-9);
    expect(e.top1Agreement).toBe(1);
  });
});

describe('Trainer with hidden-state distillation', () => {
  // A deterministic "teacher hidden state" of width 5 per token: a fixed function of the token id.
  const teacherHidden = (b: { ids: Uint32Array }) => Float32Array.from({ length: b.ids.length * 5 }, (_, i) => Math.sin(b.ids[Math.floor(i / 5)]! * 0.7 + (i % 5)));
  const over = { hiddenWeight: 0.5, hiddenKind: 'mse', teacherHiddenWidth: 5 };

  it('trains W_h with the student, checkpoints it with its moments, and resumes on the same loss curve', async () => {
    const mk = (store: MemoryCheckpointStore, logs: TrainLog[]) => new Trainer({
      device: gpu().device, model, train: makeTrainConfig({ ...base, ...over }), rows, evalRows, store, log: (e) => logs.push(e),
      teacherFor: (b) => ({ teacherHidden: teacherHidden(b) }),
    });
    const full: TrainLog[] = [];
    const t = mk(new MemoryCheckpointStore(), full); await t.run(); t.destroy();
    const store = new MemoryCheckpointStore();
    const first = mk(store, []); await first.run(4); first.destroy();
    const ck = decodeCheckpoint((await store.get('latest'))!);
    expect(ck.tail).toHaveLength(5 * model.hidden);
    expect(ck.m.length).toBe(ck.params.length + 5 * model.hidden); // the slab's moments, then W_h's
    const rest: TrainLog[] = [];
    const second = mk(store, rest);
    expect(await second.resume()).toBe(true);
    await second.run(); second.destroy();
    expect(losses(rest)).toEqual(losses(full).slice(4));
    expect(() => makeTrainConfig({ hiddenWeight: 1 })).toThrow(/needs teacherHiddenWidth/);
  });
});
