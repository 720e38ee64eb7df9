// A kernel check: run a kernel on seeded inputs and compare each output with its CPU reference. Every kernel
// family exports a list of these (src/kernels/<family>/<family>.check.ts); the GPU tests, the app's self-test and
// `cli selftest` all run the same lists (the registry: src/engine/checks.ts). runOnGpu is the run itself.
import { createStorage, readF32, submitDispatches, withGpuErrors, type Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf } from '../gpu/launch.ts';
import type { Comparison } from '../util/allclose.ts';

export interface KernelCheck {
  /** e.g. 'matmul', 'rmsnorm_backward'. */
  kernel: string;
  /** e.g. 'tiled', 'naive', 'default'. */
  variant: string;
  /** Human-readable shape, e.g. '17x33x65' or 'B=2 T=17 C=33'. */
  shape: string;
  /** One Comparison per output checked (e.g. dx, dweight), each named. */
  run(device: GPUDevice, seed: number): Promise<NamedComparison[]>;
}

export interface NamedComparison extends Comparison {
  name: string;
}

/** An f32 storage buffer of `n` NaNs: an output element the kernel does not write fails its comparison. */
export const nanStorage = (device: GPUDevice, n: number, label?: string): GPUBuffer =>
  createStorage(device, new Float32Array(n).fill(Number.NaN), label);

/**
 * Submits the plans made by `plans()` once, in one pass, inside GPU error scopes named `what`; then reads back
 * `reads` (buffer name → f32 count) from `buffers`. Destroys every buffer of `buffers`, whatever happens.
 */
export async function runOnGpu<R extends string>(
  device: GPUDevice, what: string, buffers: Readonly<Record<string, GPUBuffer>>,
  plans: () => readonly { readonly dispatches: readonly Dispatch[] }[], reads: Readonly<Record<R, number>>,
): Promise<Record<R, Float32Array>> {
  try {
    return await withGpuErrors(device, what, async () => {
      submitDispatches(device, dispatchesOf(...plans()));
      const out = {} as Record<R, Float32Array>;
      for (const [name, n] of Object.entries(reads) as [R, number][]) out[name] = await readF32(device, buffers[name]!, n);
      return out;
    });
  } finally {
    for (const b of Object.values(buffers)) b.destroy();
  }
}
