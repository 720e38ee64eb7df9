// Element-wise launchers: SiLU, GELU (tanh), SwiGLU forward/backward and the residual add / accumulate.
// Each plan validates sizes, caches its pipeline per device, packs `Params { N }` (the element count) and builds
// the bind group over exactly the bytes it touches; it never reads back and allocates only its uniform buffer.
// Activation gradients are assigned; `planResidualAccumulate` is the one accumulating form (y += x).
// Every storage binding in the WGSL is read_write, inputs included: WebGPU rejects a buffer bound both read-only
// and writable in one dispatch, and tensors of one slab buffer (bound as 256-aligned ranges) must be usable together.
// Two bindings of one dispatch must not overlap (out = a + b with out = a is not allowed: use the accumulate form).
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, offsetOf, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import commonWgsl from './activation_common.wgsl?raw';
import geluBackwardWgsl from './gelu_backward.wgsl?raw';
import geluForwardWgsl from './gelu_forward.wgsl?raw';
import residualAccumulateWgsl from './residual_accumulate.wgsl?raw';
import residualAddWgsl from './residual_add.wgsl?raw';
import siluBackwardWgsl from './silu_backward.wgsl?raw';
import siluForwardWgsl from './silu_forward.wgsl?raw';
import swigluBackwardWgsl from './swiglu_backward.wgsl?raw';
import swigluForwardWgsl from './swiglu_forward.wgsl?raw';

export const ActivationParams = uniformStruct('Params', { N: 'u32' });

const WG = 256;

export interface UnaryForwardArgs {
  x: Binding; // (N) read
  y: Binding; // (N) written
  N: number;
}

export interface UnaryBackwardArgs {
  x: Binding;  // (N) read: the forward's input
  dy: Binding; // (N) read
  dx: Binding; // (N) written (assigned)
  N: number;
}

export interface SwigluForwardArgs {
  gate: Binding; // (N, F) read
  up: Binding;   // (N, F) read
  h: Binding;    // (N, F) written: silu(gate) ⊙ up
  N: number;
  F: number;
}

export interface SwigluBackwardArgs {
  gate: Binding;  // (N, F) read
  up: Binding;    // (N, F) read
  dh: Binding;    // (N, F) read
  dgate: Binding; // (N, F) written (assigned)
  dup: Binding;   // (N, F) written (assigned)
  N: number;
  F: number;
}

export interface ResidualAddArgs {
  a: Binding;   // (N) read
  b: Binding;   // (N) read
  out: Binding; // (N) written: a + b
  N: number;
}

export interface ResidualAccumulateArgs {
  x: Binding; // (N) read
  y: Binding; // (N) accumulated: y += x
  N: number;
}

/** y = x·σ(x). */
export const planSiluForward = (device: GPUDevice, a: UnaryForwardArgs): Dispatch =>
  planElementwise(device, 'silu_forward', siluForwardWgsl, a.N, `N=${a.N}`, [['x', a.x], ['y', a.y]]);

/** dx = dy·silu'(x). */
export const planSiluBackward = (device: GPUDevice, a: UnaryBackwardArgs): Dispatch =>
  planElementwise(device, 'silu_backward', siluBackwardWgsl, a.N, `N=${a.N}`, [['x', a.x], ['dy', a.dy], ['dx', a.dx]]);

/** y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export const planGeluForward = (device: GPUDevice, a: UnaryForwardArgs): Dispatch =>
  planElementwise(device, 'gelu_forward', geluForwardWgsl, a.N, `N=${a.N}`, [['x', a.x], ['y', a.y]]);

/** dx = dy·gelu'(x). */
export const planGeluBackward = (device: GPUDevice, a: UnaryBackwardArgs): Dispatch =>
  planElementwise(device, 'gelu_backward', geluBackwardWgsl, a.N, `N=${a.N}`, [['x', a.x], ['dy', a.dy], ['dx', a.dx]]);

/** h = silu(gate) ⊙ up. */
export function planSwigluForward(device: GPUDevice, a: SwigluForwardArgs): Dispatch {
  const n = checkRows('swiglu_forward', a.N, a.F);
  return planElementwise(device, 'swiglu_forward', swigluForwardWgsl, n, `N=${a.N} F=${a.F}`, [['gate', a.gate], ['up', a.up], ['h', a.h]]);
}

/** dgate = dh·up·silu'(gate), dup = dh·silu(gate). */
export function planSwigluBackward(device: GPUDevice, a: SwigluBackwardArgs): Dispatch {
  const n = checkRows('swiglu_backward', a.N, a.F);
  return planElementwise(device, 'swiglu_backward', swigluBackwardWgsl, n, `N=${a.N} F=${a.F}`, [
    ['gate', a.gate], ['up', a.up], ['dh', a.dh], ['dgate', a.dgate], ['dup', a.dup],
  ]);
}

/** out = a + b. */
export const planResidualAdd = (device: GPUDevice, a: ResidualAddArgs): Dispatch =>
  planElementwise(device, 'residual_add', residualAddWgsl, a.N, `N=${a.N}`, [['a', a.a], ['b', a.b], ['out', a.out]]);

/** y += x. */
export const planResidualAccumulate = (device: GPUDevice, a: ResidualAccumulateArgs): Dispatch =>
  planElementwise(device, 'residual_accumulate', residualAccumulateWgsl, a.N, `N=${a.N}`, [['x', a.x], ['y', a.y]]);

function checkRows(kernel: string, N: number, F: number): number {
  for (const [name, v] of [['N', N], ['F', F]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${name} must be a positive integer, got ${v}`);
  }
  return N * F;
}

function planElementwise(device: GPUDevice, kernel: string, code: string, N: number, shape: string, named: [string, Binding][]): Dispatch {
  if (!Number.isInteger(N) || N < 1) throw new Error(`${kernel}: N must be a positive integer, got ${N}`);
  const what = `${kernel} ${shape}`;
  if (N >= 2 ** 32) throw new Error(`${what}: more than 2^32 − 1 elements`);
  const bytes = N * 4;
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  const align = device.limits.minStorageBufferOffsetAlignment;
  const bindings: Binding[] = named.map(([name, b]) => {
    const buffer = bufferOf(b);
    const offset = offsetOf(b);
    const have = bindingBytes(b);
    if (have < bytes) throw new Error(`${what}: ${name} has ${have} bytes, needs ${bytes}`);
    if (offset % align !== 0) throw new Error(`${what}: ${name} offset ${offset} is not a multiple of ${align}`);
    if (bytes > maxBinding) throw new Error(`${what}: ${name} is ${bytes} bytes, over this device's maxStorageBufferBindingSize (${maxBinding})`);
    return { buffer, offset, size: bytes };
  });
  const groups = Math.ceil(N / WG);
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(groups / maxGroups);
  const pipeline = cachedPipeline(device, kernel, ActivationParams.wgsl + commonWgsl + code);
  const uniforms = createUniform(device, ActivationParams.pack({ N }), `${what} params`);
  const bindGroup = bindBuffers(device, pipeline, [...bindings, uniforms], what);
  return { label: what, pipeline, bindGroup, workgroups: [Math.ceil(groups / gy), gy, 1] };
}
