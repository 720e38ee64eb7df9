// The tiled and naive WGSL matmuls against the CPU reference at odd shapes, on Dawn in Node. The checks of the
// newest lab variants (MATMUL_LAB_VARIANTS) run in matmul-lab.test.ts, to keep each file's run short.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { checkMatmul, MATMUL_LAB_VARIANTS, matmulChecks } from '../../src/kernels/matmul/matmul.check.ts';
import { planMatmul, splitKChunks } from '../../src/kernels/matmul/matmul.ts';
import { matmulRefGeneral } from '../../src/kernels/matmul/matmul.ref.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('matmul checks', () => {
  it.each(matmulChecks.filter((c) => !(MATMUL_LAB_VARIANTS as readonly string[]).includes(c.variant)).map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });
});

describe('matmul_tiled', () => {
  it('computes a hand-checked 2×3·3×2 product exactly', async () => {
    const { device } = gpu();
    const a = createStorage(device, new Float32Array([1, 2, 3, 4, 5, 6]));
    const b = createStorage(device, new Float32Array([7, 8, 9, 10, 11, 12]));
    const c = createStorage(device, 4);
    submitDispatches(device, planMatmul(device, { a, b, c, M: 2, N: 2, K: 3 }).dispatches);
    expect([...(await readF32(device, c, 4))]).toEqual([58, 64, 139, 154]);
  });

  it('split dispatches give bit-identical results to one dispatch', async () => {
    const { device } = gpu();
    const [M, N, K] = [200, 70, 33];
    const a = createStorage(device, Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)));
    const b = createStorage(device, Float32Array.from({ length: K * N }, (_, i) => Math.cos(i)));
    const one = createStorage(device, M * N);
    const split = createStorage(device, M * N);
    const plan = planMatmul(device, { a, b, c: split, M, N, K, maxBindingBytes: 64 * N * 4 });
    expect(plan.dispatches).toHaveLength(4);
    submitDispatches(device, dispatchesOf(planMatmul(device, { a, b, c: one, M, N, K }), plan));
    expect([...(await readF32(device, split, M * N))]).toEqual([...(await readF32(device, one, M * N))]);
  });

  it('splits along K (accumulating) when Aᵀ is over the binding limit', () => {
    const { device } = gpu();
    const [a, b, c] = [0, 1, 2].map(() => createStorage(device, 100 * 150));
    expect(planMatmul(device, { a: a!, b: b!, c: c!, M: 100, N: 40, K: 150, transA: true, transB: true, maxBindingBytes: 64 * 100 * 4 }).dispatches).toHaveLength(3);
    expect(planMatmul(device, { a: a!, b: b!, c: c!, M: 33, N: 40, K: 150, transA: true, maxBindingBytes: 64 * 40 * 4 }).dispatches).toHaveLength(3);
  });

  it('splits a long K over few output tiles (dx over a large vocabulary) into parallel chunks and a reduction', () => {
    const { device } = gpu();
    const [M, N, V] = [48, 16, 128256];
    const dy = createStorage(device, M * V), w = createStorage(device, V * N), dx = createStorage(device, M * N);
    const plans = planMatmul(device, { a: dy, b: w, c: dx, M, N, K: V, variant: 'tiled' }).dispatches;
    // The 64×64 tile (untuned, this shape would run 'naive': a dimension ≤ 16): 63 chunks of 2048 (62 in one batched dispatch, the last of 1280 alone), then the sum.
    expect(plans.map((p) => p.workgroups)).toEqual([[1, 1, 62], [1, 1, 1], [3, 1, 1]]);
    expect(plans[2]!.label).toMatch(/split-K 63 reduce/);
    // Many output tiles (the forward logits) or splitK: 1: one dispatch.
    expect(planMatmul(device, { a: dy, b: w, c: dx, M, N, K: V, variant: 'tiled', splitK: 1 }).dispatches).toHaveLength(1);
    expect(splitKChunks(2048, 256, V, { TM: 64, TN: 64 })).toBe(1); // 128 tiles: enough workgroups already
    expect(splitKChunks(M, N, 1000, { TM: 64, TN: 64 })).toBe(1); // a short K
    for (const b of [dy, w, dx]) b.destroy();
  });

  it('split-K gives the one-pass result within the f32 tolerance, on ranges of one slab too', async () => {
    const { device } = gpu();
    const [M, N, K] = [7, 9, 700];
    const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
    const bias = Float32Array.from({ length: N }, (_, i) => i - 4);
    // A at 0, B at 4992 floats, C at 11392, bias at 11456 (all 256-byte aligned).
    const slab = new Float32Array(11456 + 64).fill(-3);
    slab.set(a, 0); slab.set(b, 4992); slab.set(bias, 11456);
    const buf = createStorage(device, slab);
    submitDispatches(device, planMatmul(device, {
      a: { buffer: buf, offset: 0, size: M * K * 4 }, b: { buffer: buf, offset: 4992 * 4, size: K * N * 4 },
      c: { buffer: buf, offset: 11392 * 4, size: M * N * 4 }, bias: { buffer: buf, offset: 11456 * 4, size: N * 4 }, M, N, K, splitK: 4,
    }).dispatches);
    const out = await readF32(device, buf, slab.length);
    const ref = matmulRefGeneral(a, b, M, N, K, { bias });
    const got = out.subarray(11392, 11392 + M * N);
    // A lost or doubled chunk is off by O(10); f32 sums over 700 terms agree within 1e-3.
    expect(Math.max(...[...got].map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-3);
    expect(out[11392 + M * N]).toBe(-3);
  });

  it('works on ranges of one slab (inputs and output in the same buffer)', async () => {
    const { device } = gpu();
    const [M, N, K] = [17, 9, 5];
    // A at 0, B at 256 floats, C at 512 floats (offsets 256-byte aligned), bias at 768.
    const slab = new Float32Array(1024).fill(-3);
    const a = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
    const b = Float32Array.from({ length: K * N }, (_, i) => (i % 5) - 2);
    const bias = Float32Array.from({ length: N }, (_, i) => i);
    slab.set(a, 0); slab.set(b, 256); slab.set(bias, 768);
    const buf = createStorage(device, slab);
    submitDispatches(device, planMatmul(device, {
      a: { buffer: buf, offset: 0, size: M * K * 4 }, b: { buffer: buf, offset: 1024, size: K * N * 4 },
      c: { buffer: buf, offset: 2048, size: M * N * 4 }, bias: { buffer: buf, offset: 3072, size: N * 4 }, M, N, K,
    }).dispatches);
    const out = await readF32(device, buf, 1024);
    const ref = matmulRefGeneral(a, b, M, N, K, { bias });
    expect([...out.subarray(512, 512 + M * N)]).toEqual([...ref]);
    expect(out[512 + M * N]).toBe(-3);
  });

  it('covers a shape spanning several tiles in both directions with a K tail (130×200×77)', async () => {
    expect(failures(await checkMatmul(gpu().device, [130, 200, 77], 'tiled', 7))).toBe('');
  });

  it('leaves memory outside C untouched (bounds checks on stores)', async () => {
    const { device } = gpu();
    const [M, N, K] = [5, 7, 3];
    const a = createStorage(device, new Float32Array(M * K).fill(1));
    const b = createStorage(device, new Float32Array(K * N).fill(1));
    const sentinel = new Float32Array(M * N + 64).fill(-7);
    const c = createStorage(device, sentinel);
    submitDispatches(device, planMatmul(device, { a, b, c, M, N, K }).dispatches);
    const out = await readF32(device, c, sentinel.length);
    expect([...out.subarray(0, M * N)].every((v) => v === 3)).toBe(true);
    expect([...out.subarray(M * N)].every((v) => v === -7)).toBe(true);
  });

  it('rejects bad shapes and short buffers with a clear error', () => {
    const { device } = gpu();
    const small = createStorage(device, 4);
    expect(() => planMatmul(device, { a: small, b: small, c: small, M: 0, N: 1, K: 1 })).toThrow(/matmul 0×1×1: M must be a positive integer/);
    expect(() => planMatmul(device, { a: small, b: small, c: small, M: 9, N: 9, K: 9 })).toThrow(/matmul 9×9×9: A has 16 bytes, needs 324/);
    const big = createStorage(device, 64 * 64);
    expect(() => planMatmul(device, { a: big, b: big, c: big, M: 64, N: 64, K: 64, maxBindingBytes: 1024 })).toThrow(/B exceeds the 1024-byte binding limit/);
    expect(() => planMatmul(device, { a: small, b: small, c: small, M: 1, N: 1, K: 1, variant: 'fast' as never })).toThrow(/unknown variant 'fast'/);
  });
});
