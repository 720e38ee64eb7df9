// Dropout launcher (dropout.wgsl): out = (accumulate ? out : 0) + x ⊙ m/(1 − p) over (N, cols), the mask a hash of
// (seed, stream, element) regenerated wherever it is needed. The plan's update({ active, seed }) switches it on or off
// and picks the step's masks without rebuilding anything: a plan built once serves training and evaluation. p = 0 is
// always inactive (an identity copy or accumulate). Inactive, the kernel copies (or adds) x unchanged.
// The output must not overlap the input (the accumulate form reads and writes `out` only).
import type { Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import { dropoutKeep, dropoutScale } from './dropout.ref.ts';
import dropoutWgsl from './dropout.wgsl?raw';

export const DropoutParams = uniformStruct('DropoutParams', {
  N: 'u32', cols: 'u32', keep: 'u32', scale: 'f32', seed: 'u32', stream: 'u32', on: 'u32', accumulate: 'u32',
});

const WG = 256;

export interface DropoutArgs {
  x: Binding;   // (N, cols) read
  out: Binding; // (N, cols) written, or accumulated into with `accumulate`
  N: number;
  cols: number;
  /** Drop probability in [0, 1). */
  p: number;
  /** Which mask of a step: e.g. one per adapted linear of each layer. */
  stream: number;
  accumulate?: boolean;
  /** Initial state (default inactive, seed 0); update() changes it. */
  active?: boolean;
  seed?: number;
}

/** The per-step state of a dropout plan. */
export interface DropoutState {
  active: boolean;
  /** A u32: the step's masks. */
  seed: number;
}

/** out (=|+=) drop(x). */
export function planDropout(device: GPUDevice, a: DropoutArgs): KernelPlan<DropoutState> {
  const k = new Launch(device, 'dropout', { N: a.N, cols: a.cols });
  if (!(a.p >= 0 && a.p < 1)) throw k.error(`p must be in [0, 1), got ${a.p}`);
  if (!Number.isInteger(a.stream) || a.stream < 0 || a.stream >= 2 ** 32) throw k.error(`stream must be a u32, got ${a.stream}`);
  const n = a.N * a.cols;
  if (n >= 2 ** 32) throw k.error('more than 2^32 − 1 elements');
  const x = k.bind('x', a.x, n), out = k.bind('out', a.out, n);
  const values = (s: DropoutState) => {
    if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed >= 2 ** 32) throw k.error(`seed must be a u32, got ${s.seed}`);
    return {
      N: a.N, cols: a.cols, keep: dropoutKeep(a.p), scale: dropoutScale(a.p), seed: s.seed, stream: a.stream,
      on: s.active && a.p > 0 ? 1 : 0, accumulate: a.accumulate ? 1 : 0,
    };
  };
  const params = k.uniform(DropoutParams, values({ active: a.active ?? false, seed: a.seed ?? 0 }));
  const src = { key: 'dropout', code: DropoutParams.wgsl + dropoutWgsl };
  return {
    dispatches: [k.dispatch(src, [x, out, params.buffer], k.grid(Math.ceil(n / WG)))],
    update: (s) => params.write(values(s)),
  };
}
