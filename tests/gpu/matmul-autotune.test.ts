// The matmul autotuner: measures every lab variant, picks the fastest that agrees with 'tiled', caches it.
import { expect, it } from 'vitest';
import { autotuneMatmul, DEFAULT_MATMUL_VARIANT, tunedVariant } from '../../src/kernels/matmul/autotune.ts';
import { MATMUL_VARIANTS } from '../../src/kernels/matmul/matmul.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

it('times every variant, picks the fastest, and remembers it per problem', async () => {
  const { device } = gpu();
  const p = { M: 33, N: 40, K: 17, transB: true };
  expect(tunedVariant(device, p)).toBe(DEFAULT_MATMUL_VARIANT);
  const r = await autotuneMatmul(device, p, { iters: 2 });
  expect(Object.keys(r.ms).sort()).toEqual([...MATMUL_VARIANTS].sort());
  for (const ms of Object.values(r.ms)) expect(ms).toBeGreaterThan(0);
  expect(r.ms[r.winner]).toBe(Math.min(...Object.values(r.ms)));
  expect(tunedVariant(device, p)).toBe(r.winner);
  expect(await autotuneMatmul(device, p)).toBe(r); // cached
  expect(tunedVariant(device, { ...p, transB: false })).toBe(DEFAULT_MATMUL_VARIANT); // another problem
});
