// RMSNorm and LayerNorm checks against the CPU reference at odd shapes: forward (y, rstd[, mean]) and backward
// (dx, and the parameter gradients accumulated onto random non-zero initial values), in one submission.
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planLayerNormBackward, planLayerNormForward, planRmsNormBackward, planRmsNormForward } from './norm.ts';
import { layernormBackwardRef, layernormForwardRef, rmsnormBackwardRef, rmsnormForwardRef } from './norm.ref.ts';

/** f32 sums of C (or N) terms against f64, relative to the sum of magnitudes. */
export const NORM_TOLERANCE: Tolerance = { atol: 1e-7, rtol: 1e-6 };
export const NORM_EPS_CHECK = 1e-5;

/** (N, C): a single element, a single row, odd widths below and above 64 and 128 (N=5 C=1031, past 4 strides of the 256-thread workgroup, is in the GPU test). */
export const NORM_CHECK_SHAPES: readonly (readonly [N: number, C: number])[] = [[1, 1], [3, 7], [1, 33], [17, 65], [33, 130]];

const absAll = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, Math.abs);

export async function checkRmsNorm(device: GPUDevice, N: number, C: number, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const x = rng.uniformArray(N * C, -2, 2);
  const weight = rng.uniformArray(C, 0.5, 1.5);
  const dy = rng.uniformArray(N * C);
  const dw0 = rng.uniformArray(C);
  const bufs = {
    x: createStorage(device, x), weight: createStorage(device, weight), dy: createStorage(device, dy),
    y: nanStorage(device, N * C), rstd: nanStorage(device, N), dx: nanStorage(device, N * C),
    dweight: createStorage(device, dw0),
  };
  const got = await runOnGpu(device, `rmsnorm N=${N} C=${C}`, bufs, () => [
    planRmsNormForward(device, { x: bufs.x, weight: bufs.weight, y: bufs.y, rstd: bufs.rstd, N, C, eps: NORM_EPS_CHECK }),
    planRmsNormBackward(device, { dy: bufs.dy, x: bufs.x, weight: bufs.weight, rstd: bufs.rstd, dx: bufs.dx, dweight: bufs.dweight, N, C }),
  ], { y: N * C, rstd: N, dx: N * C, dweight: C });
  const f = rmsnormForwardRef(x, weight, N, C, NORM_EPS_CHECK);
  const b = rmsnormBackwardRef(dy, x, weight, N, C, NORM_EPS_CHECK);
  // Scales: the same sums with every term replaced by its magnitude (cancellation-aware bounds).
  const a = rmsnormBackwardRef(absAll(dy), absAll(x), absAll(weight), N, C, NORM_EPS_CHECK);
  const dxScale = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const r = f.rstd[n]!;
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.abs(dy[n * C + c]! * weight[c]! * x[n * C + c]!);
    for (let c = 0; c < C; c++) dxScale[n * C + c] = r * (Math.abs(dy[n * C + c]! * weight[c]!) + (Math.abs(x[n * C + c]!) * r * r * s) / C);
  }
  return [
    { name: 'y', ...compareArrays(got.y!, f.y, NORM_TOLERANCE) },
    { name: 'rstd', ...compareArrays(got.rstd!, f.rstd, NORM_TOLERANCE) },
    { name: 'dx', ...compareArrays(got.dx!, b.dx, NORM_TOLERANCE, dxScale) },
    { name: 'dweight', ...compareArrays(got.dweight!, b.dweight.map((v, c) => v + dw0[c]!), NORM_TOLERANCE, a.dweight.map((v, c) => v + Math.abs(dw0[c]!))) },
  ];
}

export async function checkLayerNorm(device: GPUDevice, N: number, C: number, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const x = rng.uniformArray(N * C, -1, 3); // non-zero mean
  const weight = rng.uniformArray(C, 0.5, 1.5);
  const bias = rng.uniformArray(C);
  const dy = rng.uniformArray(N * C);
  const dw0 = rng.uniformArray(C);
  const db0 = rng.uniformArray(C);
  const bufs = {
    x: createStorage(device, x), weight: createStorage(device, weight), bias: createStorage(device, bias), dy: createStorage(device, dy),
    y: nanStorage(device, N * C), mean: nanStorage(device, N), rstd: nanStorage(device, N),
    dx: nanStorage(device, N * C), dweight: createStorage(device, dw0), dbias: createStorage(device, db0),
  };
  const got = await runOnGpu(device, `layernorm N=${N} C=${C}`, bufs, () => [
    planLayerNormForward(device, { x: bufs.x, weight: bufs.weight, bias: bufs.bias, y: bufs.y, mean: bufs.mean, rstd: bufs.rstd, N, C, eps: NORM_EPS_CHECK }),
    planLayerNormBackward(device, {
      dy: bufs.dy, x: bufs.x, weight: bufs.weight, mean: bufs.mean, rstd: bufs.rstd, dx: bufs.dx, dweight: bufs.dweight, dbias: bufs.dbias, N, C,
    }),
  ], { y: N * C, mean: N, rstd: N, dx: N * C, dweight: C, dbias: C });
  const f = layernormForwardRef(x, weight, bias, N, C, NORM_EPS_CHECK);
  const b = layernormBackwardRef(dy, x, weight, N, C, NORM_EPS_CHECK);
  const yScale = new Float64Array(N * C);
  const dxScale = new Float64Array(N * C);
  const dwScale = Float64Array.from(dw0, Math.abs);
  const dbScale = Float64Array.from(db0, Math.abs);
  for (let n = 0; n < N; n++) {
    const m = f.mean[n]!;
    const r = f.rstd[n]!;
    let sd = 0;
    let sdn = 0;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const norm = (x[i]! - m) * r;
      sd += Math.abs(dy[i]! * weight[c]!);
      sdn += Math.abs(dy[i]! * weight[c]! * norm);
      dwScale[c]! += Math.abs(dy[i]! * norm);
      dbScale[c]! += Math.abs(dy[i]!);
    }
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      // (x − mean) cancels: its error is relative to |x| + |mean|, amplified by r.
      const normScale = (Math.abs(x[i]!) + Math.abs(m)) * r;
      yScale[i] = normScale * Math.abs(weight[c]!) + Math.abs(bias[c]!);
      dxScale[i] = r * (Math.abs(dy[i]! * weight[c]!) + sd / C + normScale * (sdn / C));
    }
  }
  return [
    { name: 'y', ...compareArrays(got.y!, f.y, NORM_TOLERANCE, yScale) },
    { name: 'mean', ...compareArrays(got.mean!, f.mean, NORM_TOLERANCE) },
    { name: 'rstd', ...compareArrays(got.rstd!, f.rstd, NORM_TOLERANCE) },
    { name: 'dx', ...compareArrays(got.dx!, b.dx, NORM_TOLERANCE, dxScale) },
    { name: 'dweight', ...compareArrays(got.dweight!, b.dweight.map((v, c) => v + dw0[c]!), NORM_TOLERANCE, dwScale) },
    { name: 'dbias', ...compareArrays(got.dbias!, b.dbias.map((v, c) => v + db0[c]!), NORM_TOLERANCE, dbScale) },
  ];
}

const RMS_SHAPES = NORM_CHECK_SHAPES;
const LN_SHAPES = NORM_CHECK_SHAPES.filter(([, C]) => C > 1); // LayerNorm of one element is degenerate (y = bias)

export const normChecks: KernelCheck[] = [
  ...RMS_SHAPES.map(([N, C]) => ({
    kernel: 'rmsnorm', variant: 'default', shape: `N=${N} C=${C}`,
    run: (device: GPUDevice, seed: number) => checkRmsNorm(device, N, C, seed),
  })),
  ...LN_SHAPES.map(([N, C]) => ({
    kernel: 'layernorm', variant: 'default', shape: `N=${N} C=${C}`,
    run: (device: GPUDevice, seed: number) => checkLayerNorm(device, N, C, seed),
  })),
];
