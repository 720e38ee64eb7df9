// The tiled and naive WGSL matmuls against the CPU reference at odd shapes, on Dawn in Node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { MATMUL_SELFTEST_SHAPES, checkMatmul, runSelftest } from '../../src/engine/selftest.ts';
import { planMatmul } from '../../src/kernels/matmul/matmul.ts';
import type { GpuContext } from '../../src/platform/gpu.ts';
import { acquireNodeGpu } from '../../src/platform/node.ts';

let ctx: GpuContext;
beforeAll(async () => { ctx = await acquireNodeGpu(); });
afterAll(() => ctx?.release());

describe.each(['tiled', 'naive'] as const)('matmul_%s', (variant) => {
  it.each(MATMUL_SELFTEST_SHAPES.map((s) => [s.join('x'), s] as const))('matches the CPU reference at %s', async (_, shape) => {
    const c = await checkMatmul(ctx.device, shape, variant, 42);
    expect(c.ok, c.detail).toBe(true);
    expect(c.worstRatio).toBeLessThanOrEqual(1);
  });
});

describe('matmul_tiled', () => {
  it('computes a hand-checked 2×3·3×2 product exactly', async () => {
    const { device } = ctx;
    const a = createStorage(device, new Float32Array([1, 2, 3, 4, 5, 6]));
    const b = createStorage(device, new Float32Array([7, 8, 9, 10, 11, 12]));
    const c = createStorage(device, 4);
    submitDispatches(device, [planMatmul(device, { a, b, c, M: 2, N: 2, K: 3 })]);
    expect([...(await readF32(device, c, 4))]).toEqual([58, 64, 139, 154]);
  });

  it('covers a shape spanning several tiles in both directions with a K tail (130×200×77)', async () => {
    const c = await checkMatmul(ctx.device, [130, 200, 77], 'tiled', 7);
    expect(c.ok, c.detail).toBe(true);
  });

  it('leaves memory outside C untouched (bounds checks on stores)', async () => {
    const { device } = ctx;
    const [M, N, K] = [5, 7, 3];
    const a = createStorage(device, new Float32Array(M * K).fill(1));
    const b = createStorage(device, new Float32Array(K * N).fill(1));
    const sentinel = new Float32Array(M * N + 64).fill(-7);
    const c = createStorage(device, sentinel);
    submitDispatches(device, [planMatmul(device, { a, b, c, M, N, K })]);
    const out = await readF32(device, c, sentinel.length);
    expect([...out.subarray(0, M * N)].every((v) => v === 3)).toBe(true);
    expect([...out.subarray(M * N)].every((v) => v === -7)).toBe(true);
  });

  it('rejects bad shapes and short buffers with a clear error', async () => {
    const { device } = ctx;
    const small = createStorage(device, 4);
    expect(() => planMatmul(device, { a: small, b: small, c: small, M: 0, N: 1, K: 1 })).toThrow(/M must be a positive integer/);
    expect(() => planMatmul(device, { a: small, b: small, c: small, M: 9, N: 9, K: 9 })).toThrow(/buffer A has 16 bytes, needs 324/);
    await withGpuErrors(device, 'noop', () => undefined);
  });

  it('runs the whole self-test suite green', async () => {
    const seen: number[] = [];
    const rep = await runSelftest(ctx.device, { onProgress: (p) => seen.push(p.done) });
    expect(rep.ok, rep.cases.filter((c) => !c.ok).map((c) => c.detail).join('\n')).toBe(true);
    expect(rep.cases).toHaveLength(MATMUL_SELFTEST_SHAPES.length * 2);
    expect(seen.at(-1)).toBe(rep.cases.length);
  });
});
