// Kernel self-test: runs each kernel on seeded random inputs at odd shapes and compares with its CPU reference.
// The same code runs in vitest (Node + Dawn), in the app's engine worker (Chromium) and in `cli selftest`.
import { compareArrays, describeComparison, type Tolerance } from '../util/allclose.ts';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../gpu/dispatch.ts';
import { planMatmul, type MatmulVariant } from '../kernels/matmul/matmul.ts';
import { matmulAbsRef, matmulRef } from '../kernels/matmul/matmul.ref.ts';
import { Rng } from '../util/rng.ts';

export type Shape3 = readonly [M: number, N: number, K: number];

/** Odd shapes: 1×1×1, not-a-tile-multiple in every dimension, a tile multiple, thin and wide. */
export const MATMUL_SELFTEST_SHAPES: readonly Shape3[] = [
  [1, 1, 1],
  [17, 33, 65],
  [128, 64, 96],
  [3, 130, 7],
  [67, 1, 129],
];

/** f32 dot products of K terms against an f64 reference, scaled by Σ|a·b|. */
export const MATMUL_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };

export interface SelftestCase {
  kernel: string;
  variant: string;
  shape: string;
  ok: boolean;
  maxAbsErr: number;
  worstRatio: number;
  detail: string;
  /** Wall time of upload + dispatch + readback, ms (not a benchmark). */
  ms: number;
}

export interface SelftestProgress {
  done: number;
  total: number;
  message: string;
  last?: SelftestCase;
}

export interface SelftestReport {
  ok: boolean;
  cases: SelftestCase[];
  ms: number;
}

export interface SelftestOptions {
  shapes?: readonly Shape3[];
  variants?: readonly MatmulVariant[];
  seed?: number;
  onProgress?: (p: SelftestProgress) => void;
}

const now = () => globalThis.performance.now();

export async function checkMatmul(device: GPUDevice, shape: Shape3, variant: MatmulVariant, seed: number): Promise<SelftestCase> {
  const [M, N, K] = shape;
  const t0 = now();
  const rng = new Rng(seed);
  const a = rng.uniformArray(M * K);
  const b = rng.uniformArray(K * N);
  const bufA = createStorage(device, a, 'selftest A');
  const bufB = createStorage(device, b, 'selftest B');
  const bufC = createStorage(device, new Float32Array(M * N).fill(Number.NaN), 'selftest C');
  try {
    const got = await withGpuErrors(device, `matmul_${variant} ${M}x${N}x${K}`, async () => {
      submitDispatches(device, [planMatmul(device, { a: bufA, b: bufB, c: bufC, M, N, K, variant })]);
      return readF32(device, bufC, M * N);
    });
    const cmp = compareArrays(got, matmulRef(a, b, M, N, K), MATMUL_TOLERANCE, matmulAbsRef(a, b, M, N, K));
    return {
      kernel: 'matmul', variant, shape: `${M}x${N}x${K}`, ok: cmp.ok, maxAbsErr: cmp.maxAbsErr,
      worstRatio: cmp.worstRatio, detail: describeComparison(cmp), ms: now() - t0,
    };
  } finally {
    bufA.destroy();
    bufB.destroy();
    bufC.destroy();
  }
}

export async function runSelftest(device: GPUDevice, opts: SelftestOptions = {}): Promise<SelftestReport> {
  const shapes = opts.shapes ?? MATMUL_SELFTEST_SHAPES;
  const variants = opts.variants ?? (['tiled', 'naive'] as const);
  const seed = opts.seed ?? 1234;
  const t0 = now();
  const total = shapes.length * variants.length;
  const cases: SelftestCase[] = [];
  for (const variant of variants) {
    for (const shape of shapes) {
      opts.onProgress?.({ done: cases.length, total, message: `matmul_${variant} ${shape.join('x')}` });
      let c: SelftestCase;
      try {
        c = await checkMatmul(device, shape, variant, seed + cases.length);
      } catch (e) {
        c = { kernel: 'matmul', variant, shape: shape.join('x'), ok: false, maxAbsErr: NaN, worstRatio: NaN, detail: String(e), ms: 0 };
      }
      cases.push(c);
      opts.onProgress?.({ done: cases.length, total, message: `${c.kernel}_${variant} ${c.shape}: ${c.ok ? 'ok' : 'FAILED'}`, last: c });
    }
  }
  return { ok: cases.every((c) => c.ok), cases, ms: now() - t0 };
}
