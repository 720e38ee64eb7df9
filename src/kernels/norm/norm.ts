// Norm launchers: RMSNorm (Llama) and LayerNorm, forward and backward, over rows N = B·T of width C.
// Each plan validates shapes and bindings, caches its pipeline per device, packs `Params` and builds the bind
// group; it never reads back and allocates only its uniform buffer. Backward plans return two dispatches:
// the input gradient (assigned) then the parameter gradients (accumulated, deterministic column sums).
// Every storage binding in the WGSL is read_write, inputs included: WebGPU rejects a buffer bound both read-only
// and writable in one dispatch, and tensors of one slab buffer (bound as 256-aligned ranges) must be usable together.
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, offsetOf, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import layernormBackwardWgsl from './layernorm_backward.wgsl?raw';
import layernormDparamsWgsl from './layernorm_dparams.wgsl?raw';
import layernormForwardWgsl from './layernorm_forward.wgsl?raw';
import rmsnormBackwardWgsl from './rmsnorm_backward.wgsl?raw';
import rmsnormDweightWgsl from './rmsnorm_dweight.wgsl?raw';
import rmsnormForwardWgsl from './rmsnorm_forward.wgsl?raw';

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

export interface LayerNormForwardArgs {
  x: Binding;      // (N, C) read
  weight: Binding; // (C) read
  bias: Binding;   // (C) read
  y: Binding;      // (N, C) written
  mean: Binding;   // (N) written
  rstd: Binding;   // (N) written: 1/sqrt(var + eps), biased variance
  N: number;
  C: number;
  eps?: number;
}

export interface LayerNormBackwardArgs {
  dy: Binding;      // (N, C) read
  x: Binding;       // (N, C) read
  weight: Binding;  // (C) read
  mean: Binding;    // (N) read, from the forward
  rstd: Binding;    // (N) read, from the forward
  dx: Binding;      // (N, C) written (assigned)
  dweight: Binding; // (C) accumulated (+=)
  dbias: Binding;   // (C) accumulated (+=)
  N: number;
  C: number;
}

export function planRmsNormForward(device: GPUDevice, a: RmsNormForwardArgs): Dispatch {
  const k = new Launch(device, 'rmsnorm_forward', a.N, a.C);
  const eps = k.eps(a.eps);
  const b = [k.bind('x', a.x, a.N * a.C), k.bind('weight', a.weight, a.C), k.bind('y', a.y, a.N * a.C), k.bind('rstd', a.rstd, a.N)];
  return k.rowDispatch(rmsnormForwardWgsl, b, eps);
}

/** [dx (assign), dweight (accumulate)]. */
export function planRmsNormBackward(device: GPUDevice, a: RmsNormBackwardArgs): Dispatch[] {
  const k = new Launch(device, 'rmsnorm_backward', a.N, a.C);
  const dy = k.bind('dy', a.dy, a.N * a.C);
  const x = k.bind('x', a.x, a.N * a.C);
  const rstd = k.bind('rstd', a.rstd, a.N);
  const dx = k.rowDispatch(rmsnormBackwardWgsl, [dy, x, k.bind('weight', a.weight, a.C), rstd, k.bind('dx', a.dx, a.N * a.C)], 0);
  const dw = new Launch(device, 'rmsnorm_dweight', a.N, a.C).columnDispatch(rmsnormDweightWgsl, [dy, x, rstd, k.bind('dweight', a.dweight, a.C)]);
  return [dx, dw];
}

export function planLayerNormForward(device: GPUDevice, a: LayerNormForwardArgs): Dispatch {
  const k = new Launch(device, 'layernorm_forward', a.N, a.C);
  const eps = k.eps(a.eps);
  const b = [
    k.bind('x', a.x, a.N * a.C), k.bind('weight', a.weight, a.C), k.bind('bias', a.bias, a.C),
    k.bind('y', a.y, a.N * a.C), k.bind('mean', a.mean, a.N), k.bind('rstd', a.rstd, a.N),
  ];
  return k.rowDispatch(layernormForwardWgsl, b, eps);
}

/** [dx (assign), dweight and dbias (accumulate)]. */
export function planLayerNormBackward(device: GPUDevice, a: LayerNormBackwardArgs): Dispatch[] {
  const k = new Launch(device, 'layernorm_backward', a.N, a.C);
  const dy = k.bind('dy', a.dy, a.N * a.C);
  const x = k.bind('x', a.x, a.N * a.C);
  const mean = k.bind('mean', a.mean, a.N);
  const rstd = k.bind('rstd', a.rstd, a.N);
  const dx = k.rowDispatch(layernormBackwardWgsl, [dy, x, k.bind('weight', a.weight, a.C), mean, rstd, k.bind('dx', a.dx, a.N * a.C)], 0);
  const dparams = new Launch(device, 'layernorm_dparams', a.N, a.C).columnDispatch(layernormDparamsWgsl, [
    dy, x, mean, rstd, k.bind('dweight', a.dweight, a.C), k.bind('dbias', a.dbias, a.C),
  ]);
  return [dx, dparams];
}

/** Validation and dispatch building shared by the plans of this file. */
class Launch {
  readonly what: string;
  constructor(private readonly device: GPUDevice, private readonly kernel: string, private readonly N: number, private readonly C: number) {
    this.what = `${kernel} N=${N} C=${C}`;
    for (const [name, v] of [['N', N], ['C', C]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${name} must be a positive integer, got ${v}`);
    }
    if (N * C >= 2 ** 32) throw new Error(`${this.what}: N·C must be below 2^32 (u32 indexing)`);
  }

  eps(eps = NORM_EPS): number {
    if (!(eps > 0) || !Number.isFinite(eps)) throw new Error(`${this.what}: eps must be a positive number, got ${eps}`);
    return eps;
  }

  /** The exact byte range of `elems` f32 at the start of `b`, checked against its size and the binding limit. */
  bind(name: string, b: Binding, elems: number): Binding {
    const buffer = bufferOf(b);
    const offset = offsetOf(b);
    const bytes = elems * 4;
    const have = bindingBytes(b);
    if (have < bytes) throw new Error(`${this.what}: ${name} has ${have} bytes, needs ${bytes} (${elems} f32)`);
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (offset % align !== 0) throw new Error(`${this.what}: ${name} offset ${offset} is not a multiple of ${align}`);
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > max) throw new Error(`${this.what}: ${name} is ${bytes} bytes, over this device's maxStorageBufferBindingSize (${max})`);
    return { buffer, offset, size: bytes };
  }

  /** One workgroup per row, on a 2-D grid when N exceeds the per-dimension limit. */
  rowDispatch(code: string, bindings: Binding[], eps: number): Dispatch {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const gy = Math.ceil(this.N / max);
    if (gy > max) throw new Error(`${this.what}: too many rows for one dispatch`);
    return this.dispatch(code, bindings, eps, [Math.ceil(this.N / gy), gy, 1]);
  }

  /** One workgroup per PARAM_GRAD_COLS columns. */
  columnDispatch(code: string, bindings: Binding[]): Dispatch {
    return this.dispatch(code, bindings, 0, [Math.ceil(this.C / PARAM_GRAD_COLS), 1, 1]);
  }

  private dispatch(code: string, bindings: Binding[], eps: number, workgroups: [number, number, number]): Dispatch {
    const pipeline = cachedPipeline(this.device, this.kernel, NormParams.wgsl + code);
    const uniforms = createUniform(this.device, NormParams.pack({ N: this.N, C: this.C, eps }), `${this.what} params`);
    const bindGroup = bindBuffers(this.device, pipeline, [...bindings, uniforms], this.what);
    return { label: this.what, pipeline, bindGroup, workgroups };
  }
}
