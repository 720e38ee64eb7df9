// The matmul autotuner: measures every lab variant that applies, picks the fastest that agrees with 'tiled', caches
// it; variants that do not apply on the device (here 'subgroup' without the feature) are skipped, never planned.
import { expect, it } from 'vitest';
import { autotuneMatmul, DEFAULT_MATMUL_VARIANT, tunedVariant } from '../../src/kernels/matmul/autotune.ts';
import { applicableMatmulVariants, MATMUL_VARIANTS } from '../../src/kernels/matmul/matmul.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

/** The same device, claiming not to have `feature` (as in matmul-lab.test.ts). */
function withoutFeature(device: GPUDevice, feature: string): GPUDevice {
  const features = new Set([...device.features].filter((f) => f !== feature));
  return new Proxy(device, {
    get(target, key) {
      if (key === 'features') return features;
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

it('times every variant, picks the fastest, and remembers it per problem', async () => {
  const { device } = gpu();
  const p = { M: 33, N: 40, K: 17, transB: true };
  expect(tunedVariant(device, p)).toBe(DEFAULT_MATMUL_VARIANT);
  const r = await autotuneMatmul(device, p, { iters: 2 });
  expect(Object.keys(r.ms).sort()).toEqual(applicableMatmulVariants(p, device).sort());
  expect(Object.keys(r.ms)).toContain('subgroup'); // SwiftShader has the feature: the variant competes
  expect(r.skipped).toEqual([]);
  for (const ms of Object.values(r.ms)) expect(ms).toBeGreaterThan(0);
  expect(r.ms[r.winner]).toBe(Math.min(...Object.values(r.ms)));
  expect(tunedVariant(device, p)).toBe(r.winner);
  expect(await autotuneMatmul(device, p)).toBe(r); // cached
  expect(tunedVariant(device, { ...p, transB: false })).toBe(DEFAULT_MATMUL_VARIANT); // another problem
});

it('skips variants that do not apply to the problem on the device', async () => {
  const noSg = withoutFeature(gpu().device, 'subgroups');
  const p = { M: 9, N: 20, K: 12, transA: true };
  const r = await autotuneMatmul(noSg, p, { iters: 1 });
  expect(r.skipped).toEqual(['subgroup']);
  expect(Object.keys(r.ms).sort()).toEqual(MATMUL_VARIANTS.filter((v) => v !== 'subgroup').sort());
  expect(Object.values(r.ms).every((ms) => ms! > 0)).toBe(true);
  expect(r.winner).not.toBe('subgroup');
  // Named explicitly, it is still skipped rather than planned (planning it would throw).
  const q = await autotuneMatmul(noSg, { ...p, M: 10 }, { iters: 1, variants: ['subgroup', 'vec4'] });
  expect(q.skipped).toEqual(['subgroup']);
  expect(Object.keys(q.ms)).toEqual(['vec4']);
  expect(q.winner).toBe('vec4');
});

it('GpuModel.tuned plans every matmul of the step with a tuned winner', async () => {
  const { GpuModel } = await import('../../src/model/gpu-model.ts');
  const { makeConfig } = await import('../../src/model/config.ts');
  const config = makeConfig({ vocabSize: 21, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 20, maxSeqLen: 4 });
  const { device } = gpu();
  const m = await GpuModel.tuned(device, config, 1, 4, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
  expect(m.matmulProblems.length).toBeGreaterThan(10);
  const { isTuned } = await import('../../src/kernels/matmul/autotune.ts');
  for (const p of m.matmulProblems) expect(isTuned(device, p), JSON.stringify(p)).toBe(true);
  m.destroy();
}, 120_000);
