// Optimizer launchers over the parameter / gradient / moment slabs (one f32 buffer each, same layout, tensors at
// 64-float = 256-byte offsets). Everything works on chunks — bindings over 256-byte-aligned byte ranges no larger
// than maxStorageBufferBindingSize (or the `maxBindingBytes` option) — so a slab may exceed the binding limit.
//   planGradNorm: global gradient norm → stats buffer [norm, clipScale, nonFinite, sumSq] (two-stage, fixed order)
//   planAdamW:    AdamW over weight-decay regions, clip scale and skip-on-non-finite read from stats on the GPU
//   planZero:     zero a float range (reset accumulated gradients), inside the step's compute pass
// A step is: planZero (before backward) … backward … planGradNorm, planAdamW, all encoded in one pass; then
// StatsReader (stats-reader.ts) reports the stats without stalling.
import { subBinding, type Dispatch } from '../../gpu/dispatch.ts';
import { checkInteger, Launch, type KernelPlan } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import adamwWgsl from './adamw.wgsl?raw';
import finishWgsl from './gradnorm_finish.wgsl?raw';
import partialWgsl from './gradnorm_partial.wgsl?raw';
import reduceWgsl from './gradnorm_reduce.wgsl?raw';
import zeroWgsl from './zero.wgsl?raw';
import { mergeRegions, type OptimRegion } from './optim.ref.ts';

export type { OptimRegion } from './optim.ref.ts';

/** Gradients per stage-1 workgroup (= per partial sum); must match PER_GROUP in gradnorm_partial.wgsl. */
export const GRADNORM_PER_GROUP = 1024;
/** Threads per workgroup of the element-wise kernels (adamw.wgsl, zero.wgsl). */
const WG = 256;
/** Slab alignment of every chunk and region, in floats (256 bytes: minStorageBufferOffsetAlignment). */
export const SLAB_ALIGN_FLOATS = 64;
/** Floats of the stats buffer: [norm, clipScale, nonFinite, sumSq]. */
export const STATS_FLOATS = 4;

export const GradNormPartialParams = uniformStruct('Params', { n: 'u32', partialBase: 'u32' });
export const GradNormFinishParams = uniformStruct('Params', { nPartials: 'u32', maxNorm: 'f32', inf: 'f32' });
export const AdamWHyperParams = uniformStruct('Hyper', {
  lr: 'f32',
  beta1: 'f32',
  oneMinusBeta1: 'f32',
  beta2: 'f32',
  oneMinusBeta2: 'f32',
  eps: 'f32',
  stepSize: 'f32', // lr / (1 − β1^t)
  invSqrtBc2: 'f32', // 1 / sqrt(1 − β2^t)
});
export const AdamWRegionParams = uniformStruct('Region', { n: 'u32', weightDecay: 'f32' });
export const ZeroParams = uniformStruct('Params', { n: 'u32' });

/** Floats of the partials buffer planGradNorm needs for a slab of P floats, or for the shards of one (each shard's
 *  partials start a new slot). */
export const gradNormPartialCount = (P: number | readonly GradShard[]): number =>
  typeof P === 'number' ? Math.ceil(P / GRADNORM_PER_GROUP) : P.reduce((s, x) => s + Math.ceil(x.floats / GRADNORM_PER_GROUP), 0);

/** One buffer of a gradient slab split across buffers (slab-shards.ts), in slab order. */
export interface GradShard {
  buffer: GPUBuffer;
  floats: number;
}

/** A launch whose binding limit is the device's, or a smaller test override (an integer ≥ 256: whole slab rows). */
function launch(device: GPUDevice, kernel: string, dims: Record<string, number>, shape: string | undefined, maxBindingBytes: number | undefined): Launch {
  const k = new Launch(device, kernel, dims, { shape, maxBindingBytes });
  if (maxBindingBytes !== undefined && !(Number.isInteger(maxBindingBytes) && maxBindingBytes >= 256)) {
    throw k.error(`maxBindingBytes must be an integer ≥ 256, got ${maxBindingBytes}`);
  }
  return k;
}

/** Largest chunk (floats) that is a multiple of `multiple`, fits the binding limit and ≤ maxWorkgroups·perGroup. */
function chunkFloats(k: Launch, multiple: number, perGroup: number): number {
  const byBinding = Math.floor(k.maxBindingBytes / 4 / multiple) * multiple;
  const byGroups = Math.floor((k.device.limits.maxComputeWorkgroupsPerDimension * perGroup) / multiple) * multiple;
  return Math.min(byBinding, byGroups);
}

/** `count` floats of `buffer` from float `offset`. */
const range = (buffer: GPUBuffer, offset: number, count: number) => subBinding(buffer, offset * 4, count * 4);

// ---------------------------------------------------------------------------------------------------------------

export interface GradNormArgs {
  /** The gradient slab (P floats), read; or its shards in order, each in its own buffer. */
  grad: GPUBuffer | readonly GradShard[];
  P: number; // floats of the slab covered by the norm (the whole slab, padding included: it is 0)
  partials: GPUBuffer; // (gradNormPartialCount(P or the shards)) scratch, overwritten
  stats: GPUBuffer; // (4) [norm, clipScale, nonFinite, sumSq], overwritten
  /** Clip threshold; ≤ 0 disables clipping (clipScale 1). */
  maxNorm: number;
  /** Test override of maxStorageBufferBindingSize (≥ 4096 here: a chunk holds whole 1024-float partials). */
  maxBindingBytes?: number;
}

/** Stage-1 dispatches (one per chunk) then the stage-2 dispatch, in this order; update({ maxNorm }) changes the clip
 *  threshold for the next encodes (writes the stage-2 uniform). */
export function planGradNorm(device: GPUDevice, args: GradNormArgs): KernelPlan<{ maxNorm: number }> {
  const { P } = args;
  const k = launch(device, 'gradnorm', { P }, undefined, args.maxBindingBytes);
  const checkMaxNorm = (maxNorm: number) => { if (!Number.isFinite(maxNorm)) throw k.error(`maxNorm must be finite, got ${maxNorm}`); };
  checkMaxNorm(args.maxNorm);
  const shards: readonly GradShard[] = 'length' in args.grad ? args.grad : [{ buffer: args.grad, floats: P }];
  const shardFloats = shards.reduce((s, x) => s + x.floats, 0);
  if (shardFloats !== P) throw k.error(`the gradient shards hold ${shardFloats} floats, P is ${P}`);
  const nPartials = gradNormPartialCount(shards);
  for (const [i, x] of shards.entries()) k.check(shards.length > 1 ? `grad shard ${i}` : 'grad', x.buffer, x.floats);
  k.check('partials', args.partials, nPartials);
  k.check('stats', args.stats, STATS_FLOATS);
  const chunk = chunkFloats(k, GRADNORM_PER_GROUP, GRADNORM_PER_GROUP);
  if (chunk < GRADNORM_PER_GROUP) throw k.error(`binding limit of ${k.maxBindingBytes} bytes is below one ${GRADNORM_PER_GROUP * 4}-byte partial`);
  const partials = k.bind('partials', args.partials, nPartials);

  const partial = { key: 'optim_gradnorm_partial', code: GradNormPartialParams.wgsl + reduceWgsl + partialWgsl };
  const dispatches: Dispatch[] = [];
  let base = 0; // first partial slot of the shard
  for (const [i, x] of shards.entries()) {
    for (let start = 0; start < x.floats; start += chunk) {
      const n = Math.min(chunk, x.floats - start);
      const label = `gradnorm_partial${shards.length > 1 ? ` shard ${i}` : ''} [${start}, ${start + n})`;
      const params = k.uniform(GradNormPartialParams, { n, partialBase: base + start / GRADNORM_PER_GROUP }, label);
      dispatches.push(k.dispatch(partial, [range(x.buffer, start, n), partials, params.buffer], k.workgroups(Math.ceil(n / GRADNORM_PER_GROUP)), label));
    }
    base += Math.ceil(x.floats / GRADNORM_PER_GROUP);
  }
  const label = `gradnorm_finish P=${P}`;
  const finish = k.uniform(GradNormFinishParams, { nPartials, maxNorm: args.maxNorm, inf: Infinity }, label);
  const finishSrc = { key: 'optim_gradnorm_finish', code: GradNormFinishParams.wgsl + reduceWgsl + finishWgsl };
  dispatches.push(k.dispatch(finishSrc, [partials, range(args.stats, 0, STATS_FLOATS), finish.buffer], k.workgroups(1), label));
  return {
    dispatches,
    update({ maxNorm }) {
      checkMaxNorm(maxNorm);
      finish.write({ nPartials, maxNorm, inf: Infinity });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

export interface AdamWArgs {
  params: GPUBuffer; // (P) parameter slab, updated in place
  grads: GPUBuffer; // (P) gradient slab, read (scaled by stats' clipScale)
  m: GPUBuffer; // (P) first moment, updated (start at 0)
  v: GPUBuffer; // (P) second moment, updated (start at 0)
  stats: GPUBuffer; // (4) from planGradNorm: [1] clipScale, [2] nonFinite flag (≠ 0 → the whole step is skipped)
  /** Float ranges of the slab to update, offsets multiples of 64; weightDecay 0 for norms and biases. */
  regions: readonly OptimRegion[];
  lr: number;
  /** 1-based step count t. */
  step: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  /** Test override of maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
}

/** One dispatch per (merged region, chunk), independent, in any order; the merged regions it covers; update({ lr,
 *  step }) sets lr and the step count t for the next encodes (rewrites the shared uniform buffer). */
export type AdamWPlan = KernelPlan<{ lr: number; step: number }> & { regions: OptimRegion[] };

export function planAdamW(device: GPUDevice, args: AdamWArgs): AdamWPlan {
  const beta1 = args.beta1 ?? 0.9;
  const beta2 = args.beta2 ?? 0.999;
  const eps = args.eps ?? 1e-8;
  const what = 'adamw';
  if (args.regions.length === 0) throw new Error(`${what}: no regions`);
  for (const [name, b] of [['beta1', beta1], ['beta2', beta2]] as const) {
    if (!(b >= 0 && b < 1)) throw new Error(`${what}: ${name} must be in [0, 1), got ${b}`);
  }
  if (!(eps > 0 && Number.isFinite(eps))) throw new Error(`${what}: eps must be positive, got ${eps}`);
  let end = 0;
  for (const r of args.regions) {
    const rw = `${what} region {offset ${r.offset}, count ${r.count}}`;
    checkInteger(rw, 'offset', r.offset, 0);
    checkInteger(rw, 'count', r.count);
    if (r.offset % SLAB_ALIGN_FLOATS !== 0) throw new Error(`${rw}: offset must be a multiple of ${SLAB_ALIGN_FLOATS} floats (256 bytes)`);
    if (!(Number.isFinite(r.weightDecay) && r.weightDecay >= 0)) throw new Error(`${rw}: weightDecay must be ≥ 0, got ${r.weightDecay}`);
    end = Math.max(end, r.offset + r.count);
  }
  const regions = mergeRegions(args.regions, what);
  const k = launch(device, what, {}, `(regions end at float ${end})`, args.maxBindingBytes);
  for (const name of ['params', 'grads', 'm', 'v'] as const) k.check(name, args[name], end);
  k.check('stats', args.stats, STATS_FLOATS);
  const chunk = chunkFloats(k, SLAB_ALIGN_FLOATS, WG);

  const hyperValues = (lr: number, step: number) => {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`${what}: lr must be finite and ≥ 0, got ${lr}`);
    checkInteger(what, 'step', step);
    return {
      lr, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, eps,
      stepSize: lr / (1 - beta1 ** step),
      invSqrtBc2: 1 / Math.sqrt(1 - beta2 ** step),
    };
  };
  const hyper = k.uniform(AdamWHyperParams, hyperValues(args.lr, args.step), 'adamw hyper');
  const src = { key: 'optim_adamw', code: AdamWHyperParams.wgsl + AdamWRegionParams.wgsl + adamwWgsl };
  const stats = range(args.stats, 0, STATS_FLOATS);
  const dispatches: Dispatch[] = [];
  for (const r of regions) {
    for (let start = r.offset; start < r.offset + r.count; start += chunk) {
      const n = Math.min(chunk, r.offset + r.count - start);
      const label = `adamw [${start}, ${start + n}) wd=${r.weightDecay}`;
      const region = k.uniform(AdamWRegionParams, { n, weightDecay: r.weightDecay }, label);
      const bindings = [range(args.params, start, n), range(args.grads, start, n), range(args.m, start, n), range(args.v, start, n), stats, hyper.buffer, region.buffer];
      dispatches.push(k.dispatch(src, bindings, k.workgroups(Math.ceil(n / WG)), label));
    }
  }
  return { dispatches, regions, update: ({ lr, step }) => hyper.write(hyperValues(lr, step)) };
}

// ---------------------------------------------------------------------------------------------------------------

export interface ZeroArgs {
  buffer: GPUBuffer; // (offset + count) floats; [offset, offset + count) set to 0
  offset?: number; // floats, a multiple of 64; default 0
  count: number; // floats
  maxBindingBytes?: number;
}

/** Zeroes a float range in chunks (e.g. the whole gradient slab before a backward that accumulates). */
export function planZero(device: GPUDevice, args: ZeroArgs): KernelPlan {
  const offset = args.offset ?? 0;
  const k = launch(device, 'zero', { count: args.count }, `[${offset}, ${offset + args.count})`, args.maxBindingBytes);
  checkInteger(k.what, 'offset', offset, 0);
  if (offset % SLAB_ALIGN_FLOATS !== 0) throw k.error(`offset must be a multiple of ${SLAB_ALIGN_FLOATS} floats (256 bytes)`);
  k.check('buffer', args.buffer, offset + args.count);
  const chunk = chunkFloats(k, SLAB_ALIGN_FLOATS, WG);
  const src = { key: 'optim_zero', code: ZeroParams.wgsl + zeroWgsl };
  const dispatches: Dispatch[] = [];
  for (let start = offset; start < offset + args.count; start += chunk) {
    const n = Math.min(chunk, offset + args.count - start);
    const label = `zero [${start}, ${start + n})`;
    const params = k.uniform(ZeroParams, { n }, label);
    dispatches.push(k.dispatch(src, [range(args.buffer, start, n), params.buffer], k.workgroups(Math.ceil(n / WG)), label));
  }
  return { dispatches };
}
