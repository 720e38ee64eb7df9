// A kernel check: run a kernel on seeded inputs and compare each output with its CPU reference. Every kernel
// family exports a list of these (src/kernels/<family>/<family>.check.ts); the GPU tests, the app's self-test
// and `cli selftest` all run the same lists.
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
