import { describe, expect, it } from 'vitest';
import { brownToParagraphs, isHeldOut } from '../../src/data/brown.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { BatchLoader, evalBatches, packRows } from '../../src/train/batches.ts';
import { checkpointBlob, decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { DEFAULT_TRAIN, makeTrainConfig } from '../../src/train/config.ts';
import { lrAt } from '../../src/train/schedule.ts';

describe('checkpoints', () => {
  it('decode in place when aligned (no copy of hundreds of MB), and through one aligned copy when not', () => {
    const model = makeConfig({ vocabSize: 16, hidden: 8, layers: 1, heads: 1, kvHeads: 1, headDim: 8, intermediate: 8 });
    const P = 37, params = Float32Array.from({ length: P }, (_, i) => i / 7), m = params.map((x) => -x), v = params.map((x) => x * x);
    const bytes = encodeCheckpoint({ model, train: DEFAULT_TRAIN, step: 3, adamStep: 2, cursor: { epoch: 1, row: 4 }, params, m, v });
    const c = decodeCheckpoint(bytes);
    expect(c.params.buffer).toBe(bytes.buffer);
    expect([...c.params]).toEqual([...params]);
    expect([...c.v]).toEqual([...v]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const d = decodeCheckpoint(shifted.subarray(1));
    expect(d.params.buffer).not.toBe(shifted.buffer);
    expect([...d.m]).toEqual([...m]);
    expect(d.cursor).toEqual({ epoch: 1, row: 4 });
  });

  it('a checkpoint made by checkpointBlob encodes to its own blob (no second copy); one changed after is copied', () => {
    const model = makeConfig({ vocabSize: 16, hidden: 8, layers: 1, heads: 1, kvHeads: 1, headDim: 8, intermediate: 8 });
    const { bytes, checkpoint } = checkpointBlob({ model, train: DEFAULT_TRAIN, step: 5, adamStep: 5, cursor: { epoch: 0, row: 2 } }, { params: 7, m: 9, v: 9, wh: 2 });
    checkpoint.params.set([1, 2, 3, 4, 5, 6, 7]);
    checkpoint.m.fill(-1);
    checkpoint.tail!.set([8, 9]);
    expect(encodeCheckpoint(checkpoint)).toBe(bytes);
    const back = decodeCheckpoint(bytes);
    expect([...back.params]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect([...back.m]).toEqual(Array(9).fill(-1));
    expect([...back.tail!]).toEqual([8, 9]);
    expect([back.step, back.cursor.row]).toEqual([5, 2]);
    const replaced = { ...checkpoint, params: Float32Array.of(0, 0, 0, 0, 0, 0, 1) };
    const other = encodeCheckpoint(replaced);
    expect(other).not.toBe(bytes);
    expect([...decodeCheckpoint(other).params]).toEqual([0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('lrAt', () => {
  const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  it('warms up linearly, then decays by a cosine to lr·minLrRatio', () => {
    expect(lrAt(1, s)).toBeCloseTo(0.1, 12);
    expect(lrAt(10, s)).toBeCloseTo(1, 12);
    expect(lrAt(60, s)).toBeCloseTo(0.55, 12); // half-way: (1 + 0.1) / 2
    expect(lrAt(110, s)).toBeCloseTo(0.1, 12);
    expect(lrAt(500, s)).toBeCloseTo(0.1, 12);
  });
});

describe('packRows with aux indices, evalBatches with a padded last batch', () => {
  it('carries aux per token (the eos it adds gets -1) and no eos when asked', () => {
    const rows = packRows([{ tokens: Uint32Array.of(1, 2, 3), aux: Int32Array.of(-1, 0, 1) }, { tokens: Uint32Array.of(4, 5) }], 3, 9);
    expect(rows.map((r) => [...r.aux!])).toEqual([[-1, 0, 1, -1], [-1, -1, -1, -1]]);
    expect(packRows([{ tokens: Uint32Array.of(1, 2, 3, 4, 5) }], 3, 9, false).map((r) => [...r.tokens])).toEqual([[1, 2, 3, 4]]);
  });
  it('keeps a last partial row for held-out data, filled with end tokens that are no target', () => {
    // 6 tokens (5 + eos) into rows of T + 1 = 4: one full row, and the rest [seam, 5, eos] filled up with 9s.
    const ex = [{ tokens: Uint32Array.of(1, 2, 3, 4, 5), learn: Uint8Array.of(0, 1, 1, 1, 1) }];
    expect(packRows(ex, 3, 9)).toHaveLength(1);
    const rows = packRows(ex, 3, 9, true, true);
    expect(rows.map((r) => [...r.tokens])).toEqual([[1, 2, 3, 4], [4, 5, 9, 9]]);
    expect(rows.map((r) => [...r.learn])).toEqual([[0, 1, 1, 1], [1, 1, 1, 0]]);
    // A single short record still gives one evaluable row; a remainder of the seam token alone gives none.
    expect(packRows([{ tokens: Uint32Array.of(7, 8), learn: Uint8Array.of(0, 1) }], 8, 9, false, true).map((r) => [...r.learn])).toEqual([[0, 1, 0, 0, 0, 0, 0, 0, 0]]);
    expect(packRows([{ tokens: Uint32Array.of(1, 2, 3, 4) }], 3, 9, false, true)).toHaveLength(1);
    const b = evalBatches(rows, 2, 3, 4)[0]!;
    expect([...b.weights]).toEqual([1, 1, 1, 1, 1, 0]);
  });
  it('pads a last partial batch with rows of weight 0, pointing at real rows', () => {
    const rows = packRows(Array.from({ length: 4 }, (_, i) => ({ tokens: Uint32Array.of(i + 1, i + 2, i + 3) })), 3, 9); // 16 tokens → 5 rows
    expect(rows).toHaveLength(5);
    expect(evalBatches(rows, 2, 3, 10)).toHaveLength(2);
    const padded = evalBatches(rows, 2, 3, 10, true);
    expect(padded).toHaveLength(3);
    expect([...padded[2]!.weights]).toEqual([1, 1, 1, 0, 0, 0]);
    expect(padded[2]!.rows).toEqual([4, 0]);
    expect(evalBatches(rows.slice(0, 1), 2, 3, 10, true)).toHaveLength(1);
    expect(evalBatches([], 2, 3, 10, true)).toHaveLength(0);
  });
});

describe('packRows and BatchLoader', () => {
  const ex = [{ tokens: Uint32Array.of(1, 2, 3), learn: Uint8Array.of(0, 1, 1) }, { tokens: Uint32Array.of(4, 5) }];
  it('packs examples with EOS, carries the seam token, and masks prompt targets', () => {
    const rows = packRows(ex, 3, 9);
    // stream: 1 2 3 9 4 5 9 → rows of 4 with one token of overlap: [1 2 3 9] [9 4 5 9]
    expect(rows.map((r) => [...r.tokens])).toEqual([[1, 2, 3, 9], [9, 4, 5, 9]]);
    expect(rows.map((r) => [...r.learn])).toEqual([[0, 1, 1, 1], [1, 1, 1, 1]]);
    const b = new BatchLoader(rows, 1, 3, 1, { epoch: 0, row: 0 }, false).next();
    expect([...b.ids]).toEqual([1, 2, 3]);
    expect([...b.labels]).toEqual([2, 3, 9]);
    expect([...b.weights]).toEqual([1, 1, 1]);
    const masked = packRows([{ tokens: Uint32Array.of(1, 2, 3, 4), learn: Uint8Array.of(0, 0, 1, 1) }], 3, 9);
    const mb = new BatchLoader(masked, 1, 3, 1, { epoch: 0, row: 0 }, false).next();
    expect([...mb.labels]).toEqual([NO_LABEL, 3, 4]);
    expect([...mb.weights]).toEqual([0, 1, 1]);
  });
  it('shuffles per epoch from the seed, and a cursor reproduces the sequence', () => {
    const rows = packRows(Array.from({ length: 30 }, (_, i) => ({ tokens: Uint32Array.of(i, i, i) })), 3, 99);
    const a = new BatchLoader(rows, 2, 3, 7);
    const seq = Array.from({ length: 20 }, () => [...a.next().ids]);
    const b = new BatchLoader(rows, 2, 3, 7);
    for (let i = 0; i < 8; i++) b.next();
    const c = new BatchLoader(rows, 2, 3, 7, { ...b.cursor });
    expect(Array.from({ length: 12 }, () => [...c.next().ids])).toEqual(seq.slice(8));
    expect(new BatchLoader(rows, 2, 3, 8).next().ids).not.toEqual(new BatchLoader(rows, 2, 3, 7).next().ids);
  });
  it('refuses too little data with a clear error', () => {
    expect(() => new BatchLoader(packRows(ex, 3, 9), 4, 3, 1)).toThrow(/not enough data: 2 rows of 4 tokens for a batch of 4/);
  });
});

describe('checkpoint encoding', () => {
  const ck = {
    model: makeConfig(), train: DEFAULT_TRAIN, step: 7, adamStep: 6, cursor: { epoch: 1, row: 3 },
    params: Float32Array.of(1, 2, 3), m: Float32Array.of(4, 5, 6), v: Float32Array.of(7, 8, 9),
  };
  it('round-trips and rejects truncated or foreign files', () => {
    const bytes = encodeCheckpoint(ck);
    const back = decodeCheckpoint(bytes);
    expect(back).toEqual(ck);
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4))).toThrow(/truncated or corrupt/);
    expect(() => decodeCheckpoint(new TextEncoder().encode('hello world, not a checkpoint'))).toThrow(/bad magic/);
  });
});

describe('train config', () => {
  it('rejects unknown keys and impossible values', () => {
    expect(() => makeTrainConfig({ learningRate: 1 })).toThrow(/unknown key\(s\) 'learningRate'/);
    expect(() => makeTrainConfig({ batchSize: 0 })).toThrow(/batchSize must be a positive integer/);
    expect(() => makeTrainConfig({ objective: 'none', kdWeight: 1 })).toThrow(/needs kdWeight 0/);
    expect(() => makeTrainConfig({ beta2: 1 })).toThrow(/beta1 and beta2 must be < 1/);
  });
});

describe('Brown corpus text', () => {
  it('strips tags and re-spaces punctuation and quotes', () => {
    const p = brownToParagraphs("\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, and/cc Atlanta's/np$ ./.\n\n\tNext/ap ./.\n");
    expect(p).toEqual(['The jury said "no", and Atlanta\'s.', 'Next.']);
    expect(isHeldOut('ca10')).toBe(true);
    expect(isHeldOut('ca11')).toBe(false);
  });
});

describe('teacherMetrics', () => {
  it('gives KL 0 and agreement 1 for identical logits, and the hand values otherwise', async () => {
    const { teacherMetrics } = await import('../../src/train/metrics.ts');
    const s = [0, 1, 2, 5, 0, 0];
    expect(teacherMetrics(s, [1, 1], 3, { logits: s })).toEqual({ kl: 0, top1: 1, rows: 2 });
    // Row 0: teacher uniform vs student softmax([0,1,2]); row 1 masked out.
    const t = [0, 0, 0, 9, 9, 9];
    const m = teacherMetrics(s, [1, 0], 3, { logits: t });
    const ls = [0, 1, 2].map((x) => x - Math.log(1 + Math.E + Math.E ** 2));
    expect(m.kl).toBeCloseTo(ls.reduce((a, l) => a + (1 / 3) * (Math.log(1 / 3) - l), 0), 12);
    expect(m.top1).toBe(0); // teacher argmax is token 0 (ties → lowest id), student's is 2
    expect(m.rows).toBe(1);
    const k = teacherMetrics(s, [1, 1], 3, { ids: [2, 0, 0, 1], logprobs: [-0.1, -3, -2, -0.2], k: 2 });
    expect(k.top1).toBe(0.5); // row 0: teacher top id 2 = student's; row 1: teacher top id 1 ≠ student's 0
    expect(Number.isNaN(k.kl)).toBe(true);
  });
});
