// Matmul checks against the CPU reference at odd shapes, for the tests, the app's self-test and the CLI.
import type { KernelCheck, NamedComparison } from '../../engine/check.ts';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../gpu/dispatch.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planMatmul, type MatmulVariant } from './matmul.ts';
import { matmulAbsRef, matmulRef } from './matmul.ref.ts';

export type Shape3 = readonly [M: number, N: number, K: number];

/** Odd shapes: 1×1×1, not-a-tile-multiple in every dimension, a tile multiple, thin and wide. */
export const MATMUL_CHECK_SHAPES: readonly Shape3[] = [
  [1, 1, 1],
  [17, 33, 65],
  [128, 64, 96],
  [3, 130, 7],
  [67, 1, 129],
];

/** f32 dot products of K terms against an f64 reference, scaled by Σ|a·b|. */
export const MATMUL_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };

export async function checkMatmul(device: GPUDevice, shape: Shape3, variant: MatmulVariant, seed: number): Promise<NamedComparison[]> {
  const [M, N, K] = shape;
  const rng = new Rng(seed);
  const a = rng.uniformArray(M * K);
  const b = rng.uniformArray(K * N);
  const bufA = createStorage(device, a, 'check A');
  const bufB = createStorage(device, b, 'check B');
  const bufC = createStorage(device, new Float32Array(M * N).fill(Number.NaN), 'check C');
  try {
    const got = await withGpuErrors(device, `matmul_${variant} ${M}x${N}x${K}`, async () => {
      submitDispatches(device, [planMatmul(device, { a: bufA, b: bufB, c: bufC, M, N, K, variant })]);
      return readF32(device, bufC, M * N);
    });
    return [{ name: 'C', ...compareArrays(got, matmulRef(a, b, M, N, K), MATMUL_TOLERANCE, matmulAbsRef(a, b, M, N, K)) }];
  } finally {
    bufA.destroy();
    bufB.destroy();
    bufC.destroy();
  }
}

export const matmulChecks: KernelCheck[] = (['tiled', 'naive'] as const).flatMap((variant) =>
  MATMUL_CHECK_SHAPES.map((shape) => ({
    kernel: 'matmul',
    variant,
    shape: shape.join('x'),
    run: (device: GPUDevice, seed: number) => checkMatmul(device, shape, variant, seed),
  })),
);
