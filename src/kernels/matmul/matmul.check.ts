// Matmul checks against the CPU reference at odd shapes, for the tests, the app's self-test and the CLI. Every lab
// variant runs every shape and backprop form (so any of them can win the autotuner); the vec4-load variants also
// run shapes whose layouts take their vec4 paths, and every new variant runs the batched, split and split-K forms.
// matmulHalfChecks: a 16-bit B (bf16, f16) in the forms a frozen base weight is used in, against the reference on
// the dequantized B.
import { createStorage } from '../../gpu/dispatch.ts';
import { runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { packHalf } from '../../util/half.ts';
import { Rng } from '../../util/rng.ts';
import { matmulVariantApplies, MatmulVariantNotApplicable, planMatmul, type MatmulBFormat, type MatmulVariant } from './matmul.ts';
import { matmulRefGeneral, matmulRefHalfB } from './matmul.ref.ts';

export type Shape3 = readonly [M: number, N: number, K: number];

/** Odd shapes: 1×1×1, not-a-tile-multiple in every dimension, a tile multiple, thin and wide. */
export const MATMUL_CHECK_SHAPES: readonly Shape3[] = [
  [1, 1, 1],
  [17, 33, 65],
  [128, 64, 96],
  [3, 130, 7],
  [67, 1, 129],
];

/** f32 dot products of K terms against an f64 reference, scaled by Σ|a·b| (+ |bias| + |beta·c|). */
export const MATMUL_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };

export interface MatmulCheckOptions {
  transA?: boolean;
  transB?: boolean;
  batch?: number;
  /** Broadcast A (strideA = 0) or B (strideB = 0) across the batch. */
  broadcastA?: boolean;
  broadcastB?: boolean;
  bias?: boolean;
  alpha?: number;
  beta?: number;
  maxBindingBytes?: number;
  splitK?: number;
  /** B stored as 16-bit pairs (default 'f32'): the kernel gets B rounded and packed, the reference the same values. */
  bFormat?: MatmulBFormat;
}

export async function checkMatmul(
  device: GPUDevice, shape: Shape3, variant: MatmulVariant, seed: number, o: MatmulCheckOptions = {},
): Promise<NamedComparison[]> {
  const [M, N, K] = shape;
  const batch = o.batch ?? 1;
  const strideA = o.broadcastA ? 0 : M * K, strideB = o.broadcastB ? 0 : K * N;
  const rng = new Rng(seed);
  const a = rng.uniformArray((batch - 1) * strideA + M * K);
  const b = rng.uniformArray((batch - 1) * strideB + K * N);
  const c0 = o.beta ? rng.uniformArray(batch * M * N) : new Float32Array(batch * M * N).fill(Number.NaN);
  const bias = o.bias ? rng.uniformArray(N) : undefined;
  const bFormat = o.bFormat ?? 'f32';
  const bWords = bFormat === 'f32' ? undefined : packHalf(b, bFormat);
  const bufs = { a: createStorage(device, a), b: createStorage(device, bWords ?? b), c: createStorage(device, c0), bias: createStorage(device, bias ?? 4) };
  const got = await runOnGpu(device, `matmul_${variant} ${M}x${N}x${K}${bWords ? ` B ${bFormat}` : ''}`, bufs, () => [planMatmul(device, {
    a: bufs.a, b: bufs.b, c: bufs.c, bias: bias ? bufs.bias : undefined, M, N, K, variant, bFormat,
    transA: o.transA, transB: o.transB, batch, strideA, strideB, alpha: o.alpha, beta: o.beta, maxBindingBytes: o.maxBindingBytes, splitK: o.splitK,
  })], { c: batch * M * N });
  // The reference takes A/B in the stored layout: transposing is only a reinterpretation of the same numbers. A
  // 16-bit B: the product on the values the kernel was given (the packed words, dequantized).
  const ref = { transA: o.transA, transB: o.transB, batch, strideA, strideB, alpha: o.alpha, beta: o.beta, c: c0, bias };
  const product = (r: typeof ref & { abs?: boolean }) => (bWords && bFormat !== 'f32' ? matmulRefHalfB(a, bWords, bFormat, M, N, K, r) : matmulRefGeneral(a, b, M, N, K, r));
  return [{ name: 'C', ...compareArrays(got.c, product(ref), MATMUL_TOLERANCE, product({ ...ref, abs: true })) }];
}

/**
 * On a device where the variant does not apply (e.g. 'subgroup' without the feature) there is nothing to compute:
 * the check then verifies that planMatmul refuses it with MatmulVariantNotApplicable (one comparison, 1 = refused).
 */
export function checkRefused(device: GPUDevice, shape: Shape3, variant: MatmulVariant, o: MatmulCheckOptions = {}): NamedComparison[] {
  const [M, N, K] = shape;
  const buf = createStorage(device, 16);
  let refused = 0;
  try {
    // Refused before any buffer is looked at.
    planMatmul(device, { a: buf, b: buf, c: buf, M, N, K, variant, transA: o.transA, transB: o.transB, bFormat: o.bFormat });
  } catch (e) {
    if (e instanceof MatmulVariantNotApplicable) refused = 1;
    else throw e;
  } finally {
    buf.destroy();
  }
  return [{ name: `not applicable to ${M}x${N}x${K} on this device: refused`, ...compareArrays([refused], [1], MATMUL_TOLERANCE) }];
}

const check = (variant: MatmulVariant, shape: Shape3, o: MatmulCheckOptions = {}, tag = ''): KernelCheck => ({
  kernel: 'matmul',
  variant,
  shape: `${shape.join('x')}${tag}`,
  run: async (device, seed) => {
    const [M, N, K] = shape;
    if (!matmulVariantApplies(variant, { M, N, K, transA: o.transA, transB: o.transB, bFormat: o.bFormat }, device)) return checkRefused(device, shape, variant, o);
    return checkMatmul(device, shape, variant, seed, o);
  },
});

/** The newest lab variants (their checks run in tests/gpu/matmul-lab.test.ts, the others' in matmul.test.ts). */
export const MATMUL_LAB_VARIANTS = ['vec4', 'dbuf', 'subgroup'] as const;
const LAB = MATMUL_LAB_VARIANTS;

export const matmulChecks: KernelCheck[] = [
  ...(['tiled', 'tiled128x64', 'tiled128', ...LAB, 'naive'] as const).flatMap((v) => MATMUL_CHECK_SHAPES.map((s) => check(v, s))),
  // The backprop forms (y = x·Wᵀ + b; dx = dy·W; dW += dyᵀ·x), batched attention-style products, chunking.
  ...(['tiled', 'tiled128x64', 'tiled128', ...LAB, 'naive'] as const).flatMap((v) => [
    check(v, [33, 17, 65], { transB: true, bias: true }, ' Bᵀ+bias'),
    check(v, [17, 65, 33], { transA: true, beta: 1 }, ' Aᵀ, C+='),
    check(v, [19, 23, 70], { transA: true, transB: true, alpha: 0.5, beta: -2 }, ' AᵀBᵀ α β'),
  ]),
  // Batched and split (the vec4-load variants run the rest of these forms at aligned layouts below).
  ...(['tiled', ...LAB] as const).flatMap((v) => [
    check(v, [9, 70, 13], { batch: 3 }, ' ×3'),
    ...(v === 'vec4' || v === 'dbuf' ? [] : [
      check(v, [9, 70, 13], { batch: 3, transB: true, broadcastB: true, bias: true }, ' ×3 Bᵀ shared'),
      check(v, [130, 70, 33], { maxBindingBytes: 64 * 70 * 4 }, ' split rows'),
      check(v, [33, 40, 150], { transA: true, maxBindingBytes: 64 * 40 * 4, beta: 1, bias: true }, ' Aᵀ split K'),
    ]),
    check(v, [100, 40, 150], { transA: true, transB: true, maxBindingBytes: 64 * 100 * 4 }, ' AᵀBᵀ split K'),
  ]),
  // Split-K (K cut into chunks summed by a reduction): chunks with a shorter last one, in every form, with bias, alpha
  // and beta; and the automatic choice on a long K with one output tile.
  ...(['tiled', 'tiled128', ...LAB, 'naive'] as const).flatMap((v) => [
    check(v, [5, 7, 300], { splitK: 3 }, ' split-K'),
    check(v, [9, 70, 200], { transB: true, bias: true, splitK: 4 }, ' Bᵀ+bias split-K'),
    check(v, [17, 6, 333], { transA: true, beta: 1, splitK: 5 }, ' Aᵀ, C+= split-K'),
    check(v, [6, 12, 256], { transA: true, transB: true, alpha: 0.5, beta: -2, bias: true, splitK: 4 }, ' AᵀBᵀ α β split-K'),
  ]),
  check('tiled', [3, 5, 4100], {}, ' auto split-K'),
  // Layouts where both operands take vec4 loads (row and batch strides multiples of 4), in every form, with edge
  // quads (M, N, K not multiples of the tile, K not of the slice), batched and split. (' AᵀBᵀ split K' above loads
  // a vec4 A with a scalar B.)
  ...(['vec4', 'dbuf'] as const).flatMap((v) => [
    check(v, [20, 36, 68], {}, ' vec4 A,B'),
    check(v, [36, 20, 68], { transB: true, bias: true }, ' vec4 Bᵀ+bias'),
    check(v, [20, 36, 68], { transA: true, beta: 1 }, ' vec4 Aᵀ, C+='),
    check(v, [132, 12, 28], { transA: true, transB: true, alpha: 0.5, beta: -2 }, ' vec4 AᵀBᵀ α β'),
    check(v, [12, 20, 8], { batch: 3, transB: true, broadcastB: true, bias: true }, ' vec4 ×3 Bᵀ shared'),
    check(v, [130, 72, 36], { maxBindingBytes: 64 * 72 * 4 }, ' vec4 split rows'),
  ]),
];

// A frozen base weight W (out, in), stored as bf16 or f16 pairs, in its two forms — forward y = x·Wᵀ (+ bias):
// Bᵀ; backward dx = dy·W: B — at odd shapes (odd K and N: rows start mid-word), batched with an odd batch stride,
// with alpha and beta, over a forced small binding limit (rows of A/C, or K in 128-element steps) and split-K. The
// transA forms are what the split along K needs. Every variant that takes a 16-bit B runs the two forms; 'vec4' and
// 'dbuf' are checked to refuse it.
const HALF_FORMATS = ['bf16', 'f16'] as const;
export const matmulHalfChecks: KernelCheck[] = HALF_FORMATS.flatMap((bFormat) => [
  ...(['tiled', 'naive'] as const).flatMap((v) => [
    check(v, [37, 53, 71], { bFormat, transB: true, bias: true }, ` ${bFormat} Bᵀ+bias`),
    check(v, [37, 53, 71], { bFormat, alpha: 0.5, beta: -2 }, ` ${bFormat} B α β`),
    check(v, [37, 53, 71], { bFormat, batch: 2, transB: true, bias: true, beta: 1 }, ` ${bFormat} ×2 Bᵀ+bias C+=`),
    check(v, [37, 53, 71], { bFormat, batch: 2, transB: true, broadcastB: true }, ` ${bFormat} ×2 Bᵀ shared`),
    check(v, [9, 53, 333], { bFormat, transB: true, bias: true, splitK: 3 }, ` ${bFormat} Bᵀ+bias split-K`),
    check(v, [5, 7, 301], { bFormat, alpha: 0.5, beta: -2, splitK: 3 }, ` ${bFormat} B α β split-K`),
  ]),
  check('tiled', [130, 53, 71], { bFormat, transB: true, bias: true, maxBindingBytes: 64 * 71 * 4 }, ` ${bFormat} Bᵀ split rows`),
  check('tiled', [130, 53, 71], { bFormat, maxBindingBytes: 64 * 71 * 4 }, ` ${bFormat} B split rows`),
  check('tiled', [33, 41, 301], { bFormat, transA: true, beta: 1, bias: true, maxBindingBytes: 128 * 41 * 4 }, ` ${bFormat} Aᵀ split K`),
  check('tiled', [100, 40, 301], { bFormat, transA: true, transB: true, maxBindingBytes: 128 * 100 * 4 }, ` ${bFormat} AᵀBᵀ split K`),
  check('tiled', [3, 5, 4100], { bFormat, transB: true }, ` ${bFormat} Bᵀ auto split-K`),
  ...(['tiled128x64', 'tiled128', 'subgroup'] as const).flatMap((v) => [
    check(v, [37, 53, 71], { bFormat, transB: true, bias: true }, ` ${bFormat} Bᵀ+bias`),
    check(v, [37, 53, 71], { bFormat }, ` ${bFormat} B`),
  ]),
  ...(['vec4', 'dbuf'] as const).map((v) => check(v, [37, 53, 71], { bFormat, transB: true }, ` ${bFormat} Bᵀ`)),
]);
