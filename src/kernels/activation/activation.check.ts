// Element-wise kernel checks against the CPU reference at odd sizes: SiLU, GELU and SwiGLU forward + backward,
// residual add + accumulate. Inputs include ±100 and ±20 (saturation: must stay finite and exact) and 0.
import { createStorage } from '../../gpu/dispatch.ts';
import type { KernelPlan } from '../../gpu/launch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import {
  planGeluBackward, planGeluForward, planResidualAccumulate, planResidualAdd, planSiluBackward, planSiluForward,
  planSwigluBackward, planSwigluForward,
} from './activation.ts';
import { geluBackwardRef, geluForwardRef, sigmoid, silu, siluBackwardRef, siluForwardRef, swigluBackwardRef, swigluForwardRef } from './activation.ref.ts';

/** f32 exp/σ against f64, relative to the magnitude of each term. */
export const ACTIVATION_TOLERANCE: Tolerance = { atol: 1e-7, rtol: 2e-6 };

const SPECIAL = [100, -100, 0, 20, -20, 1e-3, -1.2785, 3];

/** n inputs uniform in [−8, 8), the first ones replaced by SPECIAL values. */
export function activationInputs(rng: Rng, n: number): Float32Array {
  const x = rng.uniformArray(n, -8, 8);
  x.set(SPECIAL.slice(0, n));
  return x;
}

/** Runs `plan` over fresh buffers made from `inputs` (and NaN-filled outputs), returns the outputs read back. */
async function run(device: GPUDevice, what: string, inputs: Record<string, Float32Array>, outputs: Record<string, number>,
  plan: (b: Record<string, GPUBuffer>) => KernelPlan[]): Promise<Record<string, Float32Array>> {
  const bufs: Record<string, GPUBuffer> = {};
  for (const [k, v] of Object.entries(inputs)) bufs[k] = createStorage(device, v, `${what} ${k}`);
  for (const [k, n] of Object.entries(outputs)) bufs[k] ??= nanStorage(device, n, `${what} ${k}`);
  return runOnGpu(device, what, bufs, () => plan(bufs), outputs);
}

const cmp = (name: string, got: ArrayLike<number>, ref: ArrayLike<number>, scale?: ArrayLike<number>): NamedComparison =>
  ({ name, ...compareArrays(got, ref, ACTIVATION_TOLERANCE, scale) });

export async function checkUnary(device: GPUDevice, op: 'silu' | 'gelu', N: number, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const x = activationInputs(rng, N);
  const dy = rng.uniformArray(N);
  const [fwd, bwd] = op === 'silu' ? [planSiluForward, planSiluBackward] : [planGeluForward, planGeluBackward];
  const got = await run(device, `${op} N=${N}`, { x, dy }, { y: N, dx: N }, (b) => [
    fwd(device, { x: b.x!, y: b.y!, N }),
    bwd(device, { x: b.x!, dy: b.dy!, dx: b.dx!, N }),
  ]);
  if (op === 'silu') {
    const dxScale = Float64Array.from(x, (v, i) => Math.abs(dy[i]!) * sigmoid(v) * (1 + Math.abs(v) * sigmoid(-v)));
    return [cmp('y', got.y!, siluForwardRef(x)), cmp('dx', got.dx!, siluBackwardRef(x, dy), dxScale)];
  }
  const k = Math.sqrt(2 / Math.PI);
  const dxScale = Float64Array.from(x, (v, i) => {
    const z = 2 * k * (v + 0.044715 * v ** 3);
    return Math.abs(dy[i]!) * (sigmoid(z) + Math.abs(v) * sigmoid(z) * sigmoid(-z) * 2 * k * (1 + 3 * 0.044715 * v * v));
  });
  return [cmp('y', got.y!, geluForwardRef(x)), cmp('dx', got.dx!, geluBackwardRef(x, dy), dxScale)];
}

export async function checkSwiglu(device: GPUDevice, N: number, F: number, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const gate = activationInputs(rng, N * F);
  const up = rng.uniformArray(N * F, -2, 2);
  const dh = rng.uniformArray(N * F);
  const got = await run(device, `swiglu N=${N} F=${F}`, { gate, up, dh }, { h: N * F, dgate: N * F, dup: N * F }, (b) => [
    planSwigluForward(device, { gate: b.gate!, up: b.up!, h: b.h!, N, F }),
    planSwigluBackward(device, { gate: b.gate!, up: b.up!, dh: b.dh!, dgate: b.dgate!, dup: b.dup!, N, F }),
  ]);
  const { dgate, dup } = swigluBackwardRef(gate, up, dh);
  const dgScale = Float64Array.from(gate, (g, i) => Math.abs(dh[i]! * up[i]!) * sigmoid(g) * (1 + Math.abs(g) * sigmoid(-g)));
  return [
    cmp('h', got.h!, swigluForwardRef(gate, up)),
    cmp('dgate', got.dgate!, dgate, dgScale),
    cmp('dup', got.dup!, dup, Float64Array.from(gate, (g, i) => Math.abs(dh[i]! * silu(g)))),
  ];
}

export async function checkResidual(device: GPUDevice, N: number, seed: number): Promise<NamedComparison[]> {
  const rng = new Rng(seed);
  const a = rng.uniformArray(N, -4, 4);
  const b = rng.uniformArray(N, -4, 4);
  const y = rng.uniformArray(N, -4, 4);
  const got = await run(device, `residual N=${N}`, { a, b, y }, { out: N, y: N }, (bufs) => [
    planResidualAdd(device, { a: bufs.a!, b: bufs.b!, out: bufs.out!, N }),
    planResidualAccumulate(device, { x: bufs.a!, y: bufs.y!, N }),
  ]);
  const exact: Tolerance = { atol: Number.MIN_VALUE, rtol: 0 }; // an f32 add is correctly rounded: bit-exact
  return [
    { name: 'out', ...compareArrays(got.out!, Float32Array.from(a, (v, i) => v + b[i]!), exact) },
    { name: 'y+=x', ...compareArrays(got.y!, Float32Array.from(a, (v, i) => y[i]! + v), exact) },
  ];
}

export const activationChecks: KernelCheck[] = [
  ...([1, 1031] as const).flatMap((N) => (['silu', 'gelu'] as const).map((op) => ({
    kernel: op, variant: 'default', shape: `N=${N}`,
    run: (device: GPUDevice, seed: number) => checkUnary(device, op, N, seed),
  }))),
  ...([[1, 1], [17, 65], [3, 130]] as const).map(([N, F]) => ({
    kernel: 'swiglu', variant: 'default', shape: `N=${N} F=${F}`,
    run: (device: GPUDevice, seed: number) => checkSwiglu(device, N, F, seed),
  })),
  ...([1, 1031] as const).map((N) => ({
    kernel: 'residual', variant: 'default', shape: `N=${N}`,
    run: (device: GPUDevice, seed: number) => checkResidual(device, N, seed),
  })),
];
