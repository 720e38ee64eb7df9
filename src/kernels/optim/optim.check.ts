// Optimizer checks against the CPU reference at odd slab sizes, for the tests, the app's self-test and the CLI:
// several AdamW steps in a row (global norm + clip + AdamW encoded in one pass per step, lr and t changed by
// update()), regions at 64-float offsets with gaps, chunked bindings, a non-finite gradient, grad zeroing.
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../gpu/dispatch.ts';
import { dispatchesOf } from '../../gpu/launch.ts';
import { runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { gradNormPartialCount, planAdamW, planGradNorm, planZero, STATS_FLOATS } from './optim.ts';
import { adamwRef, gradNormRef, type AdamWState, type GradStats, type OptimRegion } from './optim.ref.ts';

/** One optimizer run: P floats, `steps` steps of seeded random gradients, lr_t = 0.02 / (1 + 0.1 (t − 1)). */
export interface OptimRunConfig {
  P: number;
  regions: OptimRegion[];
  steps: number;
  /** Clip threshold (≤ 0: no clipping). */
  maxNorm: number;
  seed: number;
  maxBindingBytes?: number;
  /** Gradient overrides: at 1-based step `step`, grad[index] = value (e.g. NaN). */
  poke?: { step: number; index: number; value: number }[];
  /** Read p, m, v, stats back after every step (slower). */
  snapshots?: boolean;
}

export const OPTIM_HYPER = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
export const optimLr = (step: number): number => 0.02 / (1 + 0.1 * (step - 1));

export interface OptimInputs {
  p0: Float32Array; // (P) initial parameters; m, v start at 0
  grads: Float32Array[]; // steps × (P)
}

export function optimInputs(cfg: OptimRunConfig): OptimInputs {
  const rng = new Rng(cfg.seed);
  const p0 = rng.uniformArray(cfg.P);
  const grads = Array.from({ length: cfg.steps }, (_, s) => {
    const g = rng.uniformArray(cfg.P, -0.5, 0.5);
    for (const k of cfg.poke ?? []) if (k.step === s + 1) g[k.index] = k.value;
    return g;
  });
  return { p0, grads };
}

export interface OptimSnapshot {
  p: Float32Array;
  m: Float32Array;
  v: Float32Array;
  stats: Float32Array; // (4) [norm, clipScale, nonFinite, sumSq]
}

/** Runs the GPU kernels; returns the final state (and one snapshot per step with cfg.snapshots). */
export async function runOptimizerGpu(device: GPUDevice, cfg: OptimRunConfig): Promise<OptimSnapshot & { snaps: OptimSnapshot[] }> {
  const { P } = cfg;
  const { p0, grads } = optimInputs(cfg);
  const buffers = {
    params: createStorage(device, p0, 'optim check params'),
    grads: createStorage(device, P, 'optim check grads'),
    m: createStorage(device, P, 'optim check m'),
    v: createStorage(device, P, 'optim check v'),
    partials: createStorage(device, gradNormPartialCount(P), 'optim check partials'),
    stats: createStorage(device, STATS_FLOATS, 'optim check stats'),
  };
  const read = async (): Promise<OptimSnapshot> => ({
    p: await readF32(device, buffers.params, P),
    m: await readF32(device, buffers.m, P),
    v: await readF32(device, buffers.v, P),
    stats: await readF32(device, buffers.stats, STATS_FLOATS),
  });
  try {
    return await withGpuErrors(device, `optim P=${P} steps=${cfg.steps}`, async () => {
      const norm = planGradNorm(device, { grad: buffers.grads, P, partials: buffers.partials, stats: buffers.stats, maxNorm: cfg.maxNorm, maxBindingBytes: cfg.maxBindingBytes });
      const adamw = planAdamW(device, { ...buffers, ...OPTIM_HYPER, regions: cfg.regions, lr: optimLr(1), step: 1, maxBindingBytes: cfg.maxBindingBytes });
      const snaps: OptimSnapshot[] = [];
      for (let t = 1; t <= cfg.steps; t++) {
        const g = grads[t - 1]!;
        device.queue.writeBuffer(buffers.grads, 0, g.buffer, g.byteOffset, g.byteLength);
        adamw.update({ lr: optimLr(t), step: t });
        submitDispatches(device, dispatchesOf(norm, adamw));
        if (cfg.snapshots) snaps.push(await read());
      }
      return { ...(await read()), snaps };
    });
  } finally {
    for (const b of Object.values(buffers)) b.destroy();
  }
}

/** The same run on the CPU reference, in f64. */
export function runOptimizerRef(cfg: OptimRunConfig): AdamWState & { stats: GradStats; statsPerStep: GradStats[] } {
  const { p0, grads } = optimInputs(cfg);
  let state: AdamWState = { p: Float64Array.from(p0), m: new Float64Array(cfg.P), v: new Float64Array(cfg.P) };
  const statsPerStep: GradStats[] = [];
  for (let t = 1; t <= cfg.steps; t++) {
    const stats = gradNormRef(grads[t - 1]!, cfg.maxNorm);
    statsPerStep.push(stats);
    state = adamwRef(state, grads[t - 1]!, { ...OPTIM_HYPER, lr: optimLr(t), step: t }, cfg.regions, stats);
  }
  return { ...state, stats: statsPerStep[statsPerStep.length - 1]!, statsPerStep };
}

/** p ~ 1 moved by ~lr per step; m ~ |g| ≤ 0.5; v ~ g² ≥ 1e-3·g²: f32 state vs f64 state after ≤ 5 steps. */
export const OPTIM_TOLERANCE = {
  p: { atol: 5e-7, rtol: 5e-7 },
  m: { atol: 5e-8, rtol: 1e-6 },
  v: { atol: 1e-10, rtol: 1e-6 },
  /** norm and sumSq: two-stage f32 sums of squares vs f64; clipScale follows the norm. */
  stats: { atol: 1e-12, rtol: 5e-7 },
} as const satisfies Record<string, Tolerance>;

/** GPU vs reference after cfg.steps steps: p, m, v and the last step's stats. */
export async function checkOptimizer(device: GPUDevice, cfg: OptimRunConfig): Promise<NamedComparison[]> {
  const got = await runOptimizerGpu(device, cfg);
  const ref = runOptimizerRef(cfg);
  const T = OPTIM_TOLERANCE;
  const flagged = ref.stats.nonFinite !== 0;
  return [
    { name: 'p', ...compareArrays(got.p, ref.p, T.p) },
    { name: 'm', ...compareArrays(got.m, ref.m, T.m) },
    { name: 'v', ...compareArrays(got.v, ref.v, T.v) },
    { name: 'clipScale, nonFinite', ...compareArrays([got.stats[1]!, got.stats[2]!], [ref.stats.clipScale, ref.stats.nonFinite], T.stats) },
    flagged
      ? { name: 'norm, sumSq = +Inf', ...compareArrays([got.stats[0] === Infinity ? 1 : 0, got.stats[3] === Infinity ? 1 : 0], [1, 1], T.stats) }
      : { name: 'norm, sumSq', ...compareArrays([got.stats[0]!, got.stats[3]!], [ref.stats.norm, ref.stats.sumSq], T.stats) },
  ];
}

/** planZero on [offset, offset + count) of a buffer of `size` floats filled with 7: zeros inside, 7 outside. */
export async function checkZero(device: GPUDevice, size: number, offset: number, count: number, maxBindingBytes?: number): Promise<NamedComparison[]> {
  const bufs = { x: createStorage(device, new Float32Array(size).fill(7), 'zero check') };
  const got = await runOnGpu(device, `zero ${size} [${offset}, ${offset + count})`, bufs, () => [
    planZero(device, { buffer: bufs.x, offset, count, maxBindingBytes }),
  ], { x: size });
  const ref = new Float32Array(size).fill(7).fill(0, offset, offset + count);
  return [{ name: 'x', ...compareArrays(got.x, ref, { atol: 1e-30, rtol: 0 }) }]; // exact
}

/** Regions of a slab of 1000 floats: three tensors at 64-float offsets with gaps between them, two decays. */
export const REGIONS_1000: OptimRegion[] = [
  { offset: 0, count: 300, weightDecay: 0.1 },
  { offset: 320, count: 7, weightDecay: 0 },
  { offset: 384, count: 577, weightDecay: 0.1 },
];
/** Regions of a slab of 4099 floats, with adjacent equal-decay regions (merged) and gaps. */
export const REGIONS_4099: OptimRegion[] = [
  { offset: 0, count: 1024, weightDecay: 0.01 },
  { offset: 1024, count: 1500, weightDecay: 0.01 },
  { offset: 2560, count: 33, weightDecay: 0 },
  { offset: 2624, count: 1475, weightDecay: 0.01 },
];

const optimCheck = (shape: string, cfg: OptimRunConfig, variant = 'default'): KernelCheck => ({
  kernel: 'adamw',
  variant,
  shape,
  run: (device, seed) => checkOptimizer(device, { ...cfg, seed }),
});

export const optimChecks: KernelCheck[] = [
  optimCheck('P=1 t=1..3 no clip', { P: 1, regions: [{ offset: 0, count: 1, weightDecay: 0.01 }], steps: 3, maxNorm: 0, seed: 0 }),
  optimCheck('P=65 t=1..5 clip', { P: 65, regions: [{ offset: 0, count: 65, weightDecay: 0.01 }], steps: 5, maxNorm: 0.5, seed: 0 }),
  optimCheck('P=1000 regions t=1..5 no clip', { P: 1000, regions: REGIONS_1000, steps: 5, maxNorm: 100, seed: 0 }),
  optimCheck('P=1000 regions t=1..5 clip', { P: 1000, regions: REGIONS_1000, steps: 5, maxNorm: 1, seed: 0 }),
  optimCheck('P=4099 regions t=1..5 clip', { P: 4099, regions: REGIONS_4099, steps: 5, maxNorm: 2, seed: 0 }),
  optimCheck('P=4099 regions t=1..3 no clip', { P: 4099, regions: REGIONS_4099, steps: 3, maxNorm: 0, seed: 0, maxBindingBytes: 4096 }, 'chunked'),
  optimCheck('P=130 NaN at t=2 of 2', { P: 130, regions: [{ offset: 0, count: 130, weightDecay: 0.01 }], steps: 2, maxNorm: 1, seed: 0, poke: [{ step: 2, index: 77, value: NaN }] }, 'nonfinite'),
  {
    kernel: 'zero',
    variant: 'chunked',
    shape: '1000 [64, 841)',
    run: (device) => checkZero(device, 1000, 64, 777, 1024),
  },
];
