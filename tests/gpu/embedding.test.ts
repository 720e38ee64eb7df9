// Token embedding kernels against the CPU reference on Dawn in Node: the registered checks, chunked vs unchunked
// (bit-identical), accumulation over two batches, ids outside the table, and argument errors.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { createU32Storage, embeddingChecks, runEmbedding, type EmbeddingCheckCase } from '../../src/kernels/embedding/embedding.check.ts';
import { buildEmbeddingBuckets, planEmbeddingBackward, planEmbeddingForward } from '../../src/kernels/embedding/embedding.ts';
import { embeddingBackwardRef } from '../../src/kernels/embedding/embedding.ref.ts';
import { Rng } from '../../src/util/rng.ts';
import { failures, useGpu } from './gpu-context.ts';
import { compareArrays } from '../../src/util/allclose.ts';

const gpu = useGpu();

describe('embedding checks', () => {
  it.each(embeddingChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
});

describe('embedding', () => {
  it('gives bit-identical x and dwte chunked (5 chunks, some without tokens) and unchunked', async () => {
    const [N, V, C] = [65, 300, 5]; // 20-byte rows: 64-row aligned chunks of ≤ 1300 bytes
    const rng = new Rng(3);
    const ids = Uint32Array.from({ length: N }, (_, n) => (n % 3 === 0 ? 7 : rng.int(V) % 70 + (n % 2) * 200)); // chunk 128..191 gets no token
    const wte = rng.uniformArray(V * C);
    const dx = rng.uniformArray(N * C);
    const dwte0 = rng.uniformArray(V * C);
    const whole: EmbeddingCheckCase = { N, V, C, ids: 'random' };
    const a = await runEmbedding(gpu().device, whole, ids, wte, dx, dwte0);
    const b = await runEmbedding(gpu().device, { ...whole, maxBindingBytes: 1300 }, ids, wte, dx, dwte0);
    expect([...b.x]).toEqual([...a.x]);
    expect([...b.dwte]).toEqual([...a.dwte]);
    expect(a.dwte[7 * C]).not.toBe(dwte0[7 * C]); // the shared id really received gradient
  });

  it('accumulates dwte over two batches with different ids (update between submissions)', async () => {
    const { device } = gpu();
    const [N, V, C] = [9, 11, 3];
    const rng = new Rng(4);
    const dxData = rng.uniformArray(N * C);
    const dwte0 = rng.uniformArray(V * C);
    const bufs = {
      dx: createStorage(device, dxData), dwte: createStorage(device, dwte0),
      unique: createU32Storage(device, 9), offsets: createU32Storage(device, 10), positions: createU32Storage(device, N),
    };
    const plan = planEmbeddingBackward(device, { ...bufs, N, V, C, maxBindingBytes: 256 }); // 64-row chunks: one chunk here
    const ids1 = Uint32Array.from([1, 1, 1, 2, 3, 10, 10, 0, 5]);
    const ids2 = Uint32Array.from([4, 4, 4, 4, 4, 4, 4, 4, 4]);
    await withGpuErrors(device, 'embedding backward twice', () => {
      plan.update(buildEmbeddingBuckets(ids1, V));
      submitDispatches(device, plan.dispatches);
      plan.update(buildEmbeddingBuckets(ids2, V));
      submitDispatches(device, plan.dispatches);
    });
    const got = await readF32(device, bufs.dwte, V * C);
    const g1 = embeddingBackwardRef(ids1, dxData, V, C);
    const g2 = embeddingBackwardRef(ids2, dxData, V, C);
    const want = g1.map((v, i) => v + g2[i]! + dwte0[i]!);
    expect(failures([{ name: 'dwte', ...compareArrays(got, want, { atol: 1e-6, rtol: 1e-6 }) }])).toBe('');
    expect(got[6 * C]).toBe(dwte0[6 * C]); // an id in neither batch is untouched
  });

  it('leaves rows of ids ≥ V unwritten (the CPU side rejects them before upload)', async () => {
    const { device } = gpu();
    const [V, C] = [4, 2];
    const ids = createU32Storage(device, Uint32Array.from([3, 4, 0]));
    const wte = createStorage(device, Float32Array.from({ length: V * C }, (_, i) => i));
    const x = createStorage(device, new Float32Array(3 * C).fill(-7));
    submitDispatches(device, planEmbeddingForward(device, { ids, wte, x, N: 3, V, C }).dispatches);
    expect([...(await readF32(device, x, 3 * C))]).toEqual([6, 7, -7, -7, 0, 1]);
  });

  it('rejects bad shapes, short buffers, limits too small for one chunk and inconsistent buckets', () => {
    const { device } = gpu();
    const f = createStorage(device, 64);
    const u = createU32Storage(device, 64);
    expect(() => planEmbeddingForward(device, { ids: u, wte: f, x: f, N: 0, V: 2, C: 2 })).toThrow(/embedding_forward N=0 V=2 C=2: N must be a positive integer, got 0/);
    expect(() => planEmbeddingForward(device, { ids: u, wte: f, x: f, N: 4, V: 100, C: 2 })).toThrow(/embedding_forward N=4 V=100 C=2: wte has 256 bytes, needs 800/);
    expect(() => planEmbeddingForward(device, { ids: u, wte: f, x: f, N: 4, V: 30, C: 2, maxBindingBytes: 100 })).toThrow(/exceeds the binding limit of 100 bytes/);
    const plan = planEmbeddingBackward(device, { dx: f, dwte: createStorage(device, 64), unique: u, offsets: u, positions: u, N: 4, V: 8, C: 2 });
    const good = buildEmbeddingBuckets(Uint32Array.from([1, 2, 1, 0]), 8);
    expect(() => plan.update({ ...good, positions: good.positions.subarray(0, 3) })).toThrow(/buckets have 3 positions, expected N = 4/);
    expect(() => plan.update({ ...good, offsets: good.offsets.subarray(0, 3) })).toThrow(/inconsistent buckets/);
    expect(() => plan.update({ ...good, unique: Uint32Array.from([0, 1, 9]) })).toThrow(/token id 9 is out of range \[0, 8\)/);
  });
});
