// CPU oracle of dropout.wgsl: the same u32 hash (Math.imul and >>> 0 for WGSL's wrapping u32 arithmetic) and the
// same f32 roundings, so the GPU's output equals it bit for bit. dropoutKeep/dropoutScale are the launcher's
// uniforms: keep threshold round((1 − p)·2^32) (clamped to u32) and the f32 scale 1/(1 − p).

/** PCG-RXS-M-XS on u32 (dropout.wgsl's pcg). */
export function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The mask hash of element i of stream `stream` under `seed` (dropout.wgsl's dropoutHash). */
export function dropoutHash(seed: number, stream: number, i: number): number {
  const key = pcg((pcg(seed >>> 0) ^ Math.imul(stream, 2654435769)) >>> 0);
  return pcg((key ^ pcg(i >>> 0)) >>> 0);
}

/** The keep threshold of drop probability p: an element is kept when its hash < this. */
export const dropoutKeep = (p: number): number => Math.min(2 ** 32 - 1, Math.max(0, Math.round((1 - p) * 2 ** 32)));

/** 1/(1 − p) in f32, the scale of kept elements. */
export const dropoutScale = (p: number): number => Math.fround(1 / (1 - p));

/** Whether element i is kept (the mask m of the forward). */
export const dropoutKept = (p: number, seed: number, stream: number, i: number): boolean => dropoutHash(seed, stream, i) < dropoutKeep(p);

export interface DropoutRefArgs {
  p: number;
  seed: number;
  stream: number;
  active: boolean;
  /** out += instead of out = (`out` is read). */
  accumulate: boolean;
}

/** out = (accumulate ? out : 0) + drop(x), f32 roundings as the kernel; returns out (a new array). */
export function dropoutRef(x: Float32Array, a: DropoutRefArgs, out?: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  const on = a.active && a.p > 0, keep = dropoutKeep(a.p), scale = dropoutScale(a.p);
  for (let i = 0; i < x.length; i++) {
    const v = !on ? x[i]! : dropoutHash(a.seed, a.stream, i) < keep ? Math.fround(x[i]! * scale) : 0;
    y[i] = a.accumulate ? Math.fround(out![i]! + v) : v;
  }
  return y;
}
