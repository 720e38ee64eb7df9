// Element-wise launchers: SiLU, GELU (tanh), SwiGLU forward/backward and the residual add / accumulate.
// Each plan validates sizes, packs `Params { N }` (the element count) and makes its one dispatch through the launch
// helper (src/gpu/launch.ts) over exactly the bytes it touches; it never reads back and allocates only its uniform
// buffer. A kernel is its WGSL after activation_common.wgsl, whose main() calls the kernel's op(i) per element; SiLU
// and GELU share activation_forward/backward.wgsl, their ACT_ naming the activation's functions.
// Activation gradients are assigned; `planResidualAccumulate` is the one accumulating form (y += x).
// An output must not overlap an input (out = a + b with out = a is refused: use the accumulate form).
import type { Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import backwardWgsl from './activation_backward.wgsl?raw';
import commonWgsl from './activation_common.wgsl?raw';
import forwardWgsl from './activation_forward.wgsl?raw';
import residualAccumulateWgsl from './residual_accumulate.wgsl?raw';
import residualAddWgsl from './residual_add.wgsl?raw';
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

/** activation_forward/backward.wgsl for one activation: its ACT_ names that activation's functions. */
const forActivation = (code: string, act: 'silu' | 'gelu'): string => code.replaceAll('ACT_', `${act}_`);

/** y = x·σ(x). */
export const planSiluForward = (device: GPUDevice, a: UnaryForwardArgs): KernelPlan =>
  planElementwise(device, 'silu_forward', forActivation(forwardWgsl, 'silu'), { N: a.N }, [['x', a.x], ['y', a.y]]);

/** dx = dy·silu'(x). */
export const planSiluBackward = (device: GPUDevice, a: UnaryBackwardArgs): KernelPlan =>
  planElementwise(device, 'silu_backward', forActivation(backwardWgsl, 'silu'), { N: a.N }, [['x', a.x], ['dy', a.dy], ['dx', a.dx]]);

/** y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export const planGeluForward = (device: GPUDevice, a: UnaryForwardArgs): KernelPlan =>
  planElementwise(device, 'gelu_forward', forActivation(forwardWgsl, 'gelu'), { N: a.N }, [['x', a.x], ['y', a.y]]);

/** dx = dy·gelu'(x). */
export const planGeluBackward = (device: GPUDevice, a: UnaryBackwardArgs): KernelPlan =>
  planElementwise(device, 'gelu_backward', forActivation(backwardWgsl, 'gelu'), { N: a.N }, [['x', a.x], ['dy', a.dy], ['dx', a.dx]]);

/** h = silu(gate) ⊙ up. */
export const planSwigluForward = (device: GPUDevice, a: SwigluForwardArgs): KernelPlan =>
  planElementwise(device, 'swiglu_forward', swigluForwardWgsl, { N: a.N, F: a.F }, [['gate', a.gate], ['up', a.up], ['h', a.h]]);

/** dgate = dh·up·silu'(gate), dup = dh·silu(gate). */
export const planSwigluBackward = (device: GPUDevice, a: SwigluBackwardArgs): KernelPlan =>
  planElementwise(device, 'swiglu_backward', swigluBackwardWgsl, { N: a.N, F: a.F }, [
    ['gate', a.gate], ['up', a.up], ['dh', a.dh], ['dgate', a.dgate], ['dup', a.dup],
  ]);

/** out = a + b. */
export const planResidualAdd = (device: GPUDevice, a: ResidualAddArgs): KernelPlan =>
  planElementwise(device, 'residual_add', residualAddWgsl, { N: a.N }, [['a', a.a], ['b', a.b], ['out', a.out]]);

/** y += x. */
export const planResidualAccumulate = (device: GPUDevice, a: ResidualAccumulateArgs): KernelPlan =>
  planElementwise(device, 'residual_accumulate', residualAccumulateWgsl, { N: a.N }, [['x', a.x], ['y', a.y]]);

/** One thread per element of the (N) or (N, F) tensors `named`, bound in order before Params. */
function planElementwise(device: GPUDevice, kernel: string, code: string, dims: Record<string, number>, named: [string, Binding][]): KernelPlan {
  const k = new Launch(device, kernel, dims);
  const N = Object.values(dims).reduce((n, d) => n * d, 1);
  if (N >= 2 ** 32) throw k.error('more than 2^32 − 1 elements');
  const bindings = named.map(([name, b]) => k.bind(name, b, N));
  const params = k.uniform(ActivationParams, { N });
  const src = { key: kernel, code: ActivationParams.wgsl + commonWgsl + code };
  return { dispatches: [k.dispatch(src, [...bindings, params.buffer], k.grid(Math.ceil(N / WG)))] };
}
