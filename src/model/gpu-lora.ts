// LoRA on one linear layer, on the GPU (issue #21): the adapter's forward and backward as plans of our matmul kernel,
// beside the frozen base product y = x·Wᵀ / dx = dy·W that the model already plans. With s = α / r:
//   forward    u = x·Aᵀ (N, r)             y += s·u·Bᵀ (N, out)
//   backward   du = s·dy·B (N, r)          dx += du·A (N, in)
//              dB += s·dyᵀ·u (out, r)      dA += duᵀ·x (r, in)
// No gradient of W and no optimizer state for it: only A and B train. u is kept from the forward for dB. The CPU
// oracle is src/model/lora.ts (W' = W + s·B·A; dA = s·Bᵀ·dW', dB = s·dW'·Aᵀ); tests/gpu/lora.test.ts checks these
// plans against it at odd shapes.
// With dropout p > 0 (PEFT's lora_dropout on the adapter's input, inverted: drop(x) = x ⊙ m/(1 − p)), x becomes
// xd = drop(x), written into a scratch (N, in) that the backward regenerates from the same hashed mask:
//   forward    xd = drop(x)   u = xd·Aᵀ    y += s·u·Bᵀ
//   backward   du, dB as above             xd = drop(x)   dA += duᵀ·xd   t = du·A   dx += drop(t)
// (∂/∂x of drop(x)·Aᵀ is drop(·) applied to du·A: the same mask, the accumulate form of the dropout kernel.)
import type { Binding } from '../gpu/dispatch.ts';
import type { KernelPlan } from '../gpu/launch.ts';
import type { DropoutArgs } from '../kernels/dropout/dropout.ts';
import type { MatmulArgs } from '../kernels/matmul/matmul.ts';

/** The matmul planner to use (GpuModel's, which picks each problem's tuned variant). */
export type PlanMatmul = (args: Omit<MatmulArgs, 'variant'>) => KernelPlan;

/** The dropout planner to use (GpuAdapters' keeps each plan to switch it on and reseed it per step). */
export type PlanDropout = (args: DropoutArgs) => KernelPlan;

export interface LoraLinear {
  /** Rows N, input and output widths, rank r, scale s = α / r. */
  N: number;
  inF: number;
  outF: number;
  r: number;
  scale: number;
  /** A (r, in), B (out, r), and their gradients (accumulated into). */
  a: Binding;
  b: Binding;
  da: Binding;
  db: Binding;
  /** x·Aᵀ (N, r), written by the forward, read by the backward. */
  u: Binding;
  /** s·dy·B (N, r), scratch of the backward. */
  du: Binding;
  /** Dropout on the adapter's input (absent when p = 0): drop probability p, the mask's stream (one per adapted
   *  linear), the planner and a scratch of at least N·in floats for xd (and t in the backward). */
  dropout?: { p: number; stream: number; plan: PlanDropout; scratch: Binding };
}

/** y (N, out) += s·(x·Aᵀ)·Bᵀ, after the base product has written y. */
export function planLoraForward(mm: PlanMatmul, l: LoraLinear, x: Binding, y: Binding): KernelPlan[] {
  const { N, inF, outF, r, scale } = l, d = l.dropout;
  return [
    ...(d ? [d.plan({ x, out: d.scratch, N, cols: inF, p: d.p, stream: d.stream })] : []),
    mm({ a: d ? d.scratch : x, b: l.a, c: l.u, M: N, N: r, K: inF, transB: true }),
    mm({ a: l.u, b: l.b, c: y, M: N, N: outF, K: r, transB: true, alpha: scale, beta: 1 }),
  ];
}

/** dx (N, in) += the adapter's share (after the base dx = dy·W), dA and dB accumulated. */
export function planLoraBackward(mm: PlanMatmul, l: LoraLinear, x: Binding, dy: Binding, dx: Binding): KernelPlan[] {
  const { N, inF, outF, r, scale } = l, d = l.dropout;
  if (d) {
    return [
      mm({ a: dy, b: l.b, c: l.du, M: N, N: r, K: outF, alpha: scale }),
      mm({ a: dy, b: l.u, c: l.db, M: outF, N: r, K: N, transA: true, alpha: scale, beta: 1 }),
      d.plan({ x, out: d.scratch, N, cols: inF, p: d.p, stream: d.stream }),
      mm({ a: l.du, b: d.scratch, c: l.da, M: r, N: inF, K: N, transA: true, beta: 1 }),
      mm({ a: l.du, b: l.a, c: d.scratch, M: N, N: inF, K: r }),
      d.plan({ x: d.scratch, out: dx, N, cols: inF, p: d.p, stream: d.stream, accumulate: true }),
    ];
  }
  return [
    mm({ a: dy, b: l.b, c: l.du, M: N, N: r, K: outF, alpha: scale }),
    mm({ a: l.du, b: l.a, c: dx, M: N, N: inF, K: r, beta: 1 }),
    mm({ a: dy, b: l.u, c: l.db, M: outF, N: r, K: N, transA: true, alpha: scale, beta: 1 }),
    mm({ a: l.du, b: x, c: l.da, M: r, N: inF, K: N, transA: true, beta: 1 }),
  ];
}
