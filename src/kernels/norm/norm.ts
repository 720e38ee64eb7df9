// Norm launchers: RMSNorm (Llama) and LayerNorm, forward and backward, over rows N = B·T of width C.
// Each plan validates shapes and bindings, packs `Params` and makes its dispatches through the launch helper
// (src/gpu/launch.ts: pipelines cached per device, read_write variants when tensors of one slab are bound
// together); it never reads back and allocates only its uniform buffers. Backward plans have two dispatches:
// the input gradient (assigned) then the parameter gradients (accumulated, deterministic column sums).
import type { Binding, Dispatch } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import layernormBackwardWgsl from './layernorm_backward.wgsl?raw';
import layernormDparamsWgsl from './layernorm_dparams.wgsl?raw';
import layernormForwardWgsl from './layernorm_forward.wgsl?raw';
import rmsnormBackwardWgsl from './rmsnorm_backward.wgsl?raw';
import rmsnormDweightWgsl from './rmsnorm_dweight.wgsl?raw';
import rmsnormForwardWgsl from './rmsnorm_forward.wgsl?raw';
import rowsWgsl from './norm_rows.wgsl?raw';

export const NormParams = uniformStruct('Params', { N: 'u32', C: 'u32', eps: 'f32' });

/** Default epsilon (Llama 2 / SmolLM use 1e-5; pass `eps` for others). */
export const NORM_EPS = 1e-5;
/** Columns per workgroup of the parameter-gradient kernels (COLS in *_dweight/_dparams.wgsl). */
const PARAM_GRAD_COLS = 32;

export interface RmsNormForwardArgs {
  x: Binding;      // (N, C) read
  weight: Binding; // (C) read
  y: Binding;      // (N, C) written
  rstd: Binding;   // (N) written: 1/sqrt(mean(x²) + eps), kept for backward
  N: number;
  C: number;
  eps?: number;
}

export interface RmsNormBackwardArgs {
  dy: Binding;      // (N, C) read
  x: Binding;       // (N, C) read
  weight: Binding;  // (C) read
  rstd: Binding;    // (N) read, from the forward
  dx: Binding;      // (N, C) written (assigned)
  dweight: Binding; // (C) accumulated (+=)
  N: number;
  C: number;
}

/** RMSNorm's tensors, a bias and the row means; rstd = 1/sqrt(var + eps), of the biased variance. */
export interface LayerNormForwardArgs extends RmsNormForwardArgs {
  bias: Binding; // (C) read
  mean: Binding; // (N) written
}

export interface LayerNormBackwardArgs extends RmsNormBackwardArgs {
  mean: Binding;  // (N) read, from the forward
  dbias: Binding; // (C) accumulated (+=)
}

export function planRmsNormForward(device: GPUDevice, a: RmsNormForwardArgs): KernelPlan {
  const { N, C } = a;
  const k = launch(device, 'rmsnorm_forward', N, C);
  const t = k.bindAll({ x: [a.x, N * C], weight: [a.weight, C], y: [a.y, N * C], rstd: [a.rstd, N] });
  return { dispatches: [rowDispatch(k, rmsnormForwardWgsl, [t.x, t.weight, t.y, t.rstd], eps(k, a.eps))] };
}

/** [dx (assign), dweight (accumulate)]. */
export function planRmsNormBackward(device: GPUDevice, a: RmsNormBackwardArgs): KernelPlan {
  const { N, C } = a;
  const k = launch(device, 'rmsnorm_backward', N, C);
  const t = k.bindAll({
    dy: [a.dy, N * C], x: [a.x, N * C], weight: [a.weight, C], rstd: [a.rstd, N], dx: [a.dx, N * C], dweight: [a.dweight, C],
  });
  const dx = rowDispatch(k, rmsnormBackwardWgsl, [t.dy, t.x, t.weight, t.rstd, t.dx], 0);
  const dw = columnDispatch(k, 'rmsnorm_dweight', rmsnormDweightWgsl, [t.dy, t.x, t.rstd, t.dweight]);
  return { dispatches: [dx, dw] };
}

export function planLayerNormForward(device: GPUDevice, a: LayerNormForwardArgs): KernelPlan {
  const { N, C } = a;
  const k = launch(device, 'layernorm_forward', N, C);
  const t = k.bindAll({ x: [a.x, N * C], weight: [a.weight, C], bias: [a.bias, C], y: [a.y, N * C], mean: [a.mean, N], rstd: [a.rstd, N] });
  return { dispatches: [rowDispatch(k, layernormForwardWgsl, [t.x, t.weight, t.bias, t.y, t.mean, t.rstd], eps(k, a.eps))] };
}

/** [dx (assign), dweight and dbias (accumulate)]. */
export function planLayerNormBackward(device: GPUDevice, a: LayerNormBackwardArgs): KernelPlan {
  const { N, C } = a;
  const k = launch(device, 'layernorm_backward', N, C);
  const t = k.bindAll({
    dy: [a.dy, N * C], x: [a.x, N * C], weight: [a.weight, C], mean: [a.mean, N], rstd: [a.rstd, N],
    dx: [a.dx, N * C], dweight: [a.dweight, C], dbias: [a.dbias, C],
  });
  const dx = rowDispatch(k, layernormBackwardWgsl, [t.dy, t.x, t.weight, t.mean, t.rstd, t.dx], 0);
  const dparams = columnDispatch(k, 'layernorm_dparams', layernormDparamsWgsl, [t.dy, t.x, t.mean, t.rstd, t.dweight, t.dbias]);
  return { dispatches: [dx, dparams] };
}

type NormLaunch = Launch<{ N: number; C: number }>;

function launch(device: GPUDevice, kernel: string, N: number, C: number): NormLaunch {
  const k = new Launch(device, kernel, { N, C });
  if (N * C >= 2 ** 32) throw k.error('N·C must be below 2^32 (u32 indexing)');
  return k;
}

function eps(k: NormLaunch, eps = NORM_EPS): number {
  if (!(eps > 0) || !Number.isFinite(eps)) throw k.error(`eps must be a positive number, got ${eps}`);
  return eps;
}

/** One workgroup per row, on a 2-D grid when N exceeds the per-dimension limit: `code` is a row kernel, its row()
 *  called by norm_rows.wgsl's main(). */
function rowDispatch(k: NormLaunch, code: string, bindings: Binding[], eps: number): Dispatch {
  const { N, C } = k.dims;
  const params = k.uniform(NormParams, { N, C, eps });
  return k.dispatch({ key: k.kernel, code: NormParams.wgsl + rowsWgsl + code }, [...bindings, params.buffer], k.grid(N));
}

/** One workgroup per PARAM_GRAD_COLS columns: the parameter gradients, as kernel `kernel` of the same shape. */
function columnDispatch(k: NormLaunch, kernel: string, code: string, bindings: Binding[]): Dispatch {
  const { N, C } = k.dims;
  const label = `${kernel} N=${N} C=${C}`;
  const params = k.uniform(NormParams, { N, C, eps: 0 }, `${label} params`);
  return k.dispatch({ key: kernel, code: NormParams.wgsl + code }, [...bindings, params.buffer], k.workgroups(Math.ceil(C / PARAM_GRAD_COLS)), label);
}
