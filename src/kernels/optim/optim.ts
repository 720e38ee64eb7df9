// Optimizer launchers over the parameter / gradient / moment slabs (one f32 buffer each, same layout, tensors at
// 64-float = 256-byte offsets). Everything works on chunks — bindings over 256-byte-aligned byte ranges no larger
// than maxStorageBufferBindingSize (or the `maxBindingBytes` option) — so a slab may exceed the binding limit.
//   planGradNorm: global gradient norm → stats buffer [norm, clipScale, nonFinite, sumSq] (two-stage, fixed order)
//   planAdamW:    AdamW over weight-decay regions, clip scale and skip-on-non-finite read from stats on the GPU
//   planZero:     zero a float range (reset accumulated gradients), inside the step's compute pass
// A step is: planZero (before backward) … backward … planGradNorm, planAdamW, all encoded in one pass; then
// StatsReader (stats-reader.ts) reports the stats without stalling.
import { bindBuffers, cachedPipeline, createUniform, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import adamwWgsl from './adamw.wgsl?raw';
import finishWgsl from './gradnorm_finish.wgsl?raw';
import partialWgsl from './gradnorm_partial.wgsl?raw';
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

/** Floats of the partials buffer planGradNorm needs for a slab of P floats. */
export const gradNormPartialCount = (P: number): number => Math.ceil(P / GRADNORM_PER_GROUP);

/** The byte limit per binding: the device's, or a smaller test override. */
function bindingLimit(device: GPUDevice, maxBindingBytes: number | undefined, what: string): number {
  const dev = device.limits.maxStorageBufferBindingSize;
  if (maxBindingBytes === undefined) return dev;
  if (!Number.isInteger(maxBindingBytes) || maxBindingBytes < 256) {
    throw new Error(`${what}: maxBindingBytes must be an integer ≥ 256, got ${maxBindingBytes}`);
  }
  return Math.min(dev, maxBindingBytes);
}

/** Largest chunk (floats) that is a multiple of `multiple`, fits `limitBytes` and ≤ maxWorkgroups·perGroup. */
function chunkFloats(device: GPUDevice, limitBytes: number, multiple: number, perGroup: number): number {
  const byBinding = Math.floor(limitBytes / 4 / multiple) * multiple;
  const byGroups = Math.floor((device.limits.maxComputeWorkgroupsPerDimension * perGroup) / multiple) * multiple;
  return Math.min(byBinding, byGroups);
}

function checkCount(what: string, name: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${what}: ${name} must be an integer ≥ ${min}, got ${v}`);
}

function checkBuffer(what: string, name: string, buf: GPUBuffer, floats: number): void {
  if (buf.size < floats * 4) throw new Error(`${what}: buffer ${name} has ${buf.size} bytes, needs ${floats * 4} (${floats} floats)`);
}

const range = (buffer: GPUBuffer, offsetFloats: number, countFloats: number): Binding =>
  ({ buffer, offset: offsetFloats * 4, size: countFloats * 4 });

// ---------------------------------------------------------------------------------------------------------------

export interface GradNormArgs {
  grad: GPUBuffer; // (P) gradient slab, read
  P: number; // floats of the slab covered by the norm (the whole slab, padding included: it is 0)
  partials: GPUBuffer; // (gradNormPartialCount(P)) scratch, overwritten
  stats: GPUBuffer; // (4) [norm, clipScale, nonFinite, sumSq], overwritten
  /** Clip threshold; ≤ 0 disables clipping (clipScale 1). */
  maxNorm: number;
  /** Test override of maxStorageBufferBindingSize (≥ 4096 here: a chunk holds whole 1024-float partials). */
  maxBindingBytes?: number;
}

export interface GradNormPlan {
  /** Stage-1 dispatches (one per chunk) then the stage-2 dispatch; encode in this order. */
  dispatches: Dispatch[];
  /** Changes the clip threshold for the next encodes (writes the stage-2 uniform). */
  update(u: { maxNorm: number }): void;
}

export function planGradNorm(device: GPUDevice, args: GradNormArgs): GradNormPlan {
  const what = `gradnorm P=${args.P}`;
  checkCount(what, 'P', args.P);
  if (!Number.isFinite(args.maxNorm)) throw new Error(`${what}: maxNorm must be finite, got ${args.maxNorm}`);
  const { P } = args;
  const nPartials = gradNormPartialCount(P);
  checkBuffer(what, 'grad', args.grad, P);
  checkBuffer(what, 'partials', args.partials, nPartials);
  checkBuffer(what, 'stats', args.stats, STATS_FLOATS);
  const limit = bindingLimit(device, args.maxBindingBytes, what);
  const chunk = chunkFloats(device, limit, GRADNORM_PER_GROUP, GRADNORM_PER_GROUP);
  if (chunk < GRADNORM_PER_GROUP) {
    throw new Error(`${what}: binding limit of ${limit} bytes is below one ${GRADNORM_PER_GROUP * 4}-byte partial`);
  }
  if (nPartials * 4 > limit) throw new Error(`${what}: partials (${nPartials * 4} bytes) exceed the binding limit of ${limit} bytes`);

  const partialPipe = cachedPipeline(device, 'optim_gradnorm_partial', GradNormPartialParams.wgsl + partialWgsl);
  const finishPipe = cachedPipeline(device, 'optim_gradnorm_finish', GradNormFinishParams.wgsl + finishWgsl);
  const dispatches: Dispatch[] = [];
  for (let start = 0; start < P; start += chunk) {
    const n = Math.min(chunk, P - start);
    const label = `gradnorm_partial [${start}, ${start + n})`;
    const uniforms = createUniform(device, GradNormPartialParams.pack({ n, partialBase: start / GRADNORM_PER_GROUP }), label);
    const bindGroup = bindBuffers(device, partialPipe, [range(args.grad, start, n), range(args.partials, 0, nPartials), uniforms], label);
    dispatches.push({ label, pipeline: partialPipe, bindGroup, workgroups: [Math.ceil(n / GRADNORM_PER_GROUP), 1, 1] });
  }
  const pack = (maxNorm: number) => GradNormFinishParams.pack({ nPartials, maxNorm, inf: Infinity });
  const finishUniforms = createUniform(device, pack(args.maxNorm), `gradnorm_finish P=${P}`);
  const finishGroup = bindBuffers(device, finishPipe, [range(args.partials, 0, nPartials), range(args.stats, 0, STATS_FLOATS), finishUniforms], `gradnorm_finish P=${P}`);
  dispatches.push({ label: `gradnorm_finish P=${P}`, pipeline: finishPipe, bindGroup: finishGroup, workgroups: [1, 1, 1] });
  return {
    dispatches,
    update({ maxNorm }) {
      if (!Number.isFinite(maxNorm)) throw new Error(`${what}: maxNorm must be finite, got ${maxNorm}`);
      device.queue.writeBuffer(finishUniforms, 0, pack(maxNorm));
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

export interface AdamWPlan {
  /** One dispatch per (merged region, chunk); independent, any order. */
  dispatches: Dispatch[];
  /** The merged regions the plan covers. */
  regions: OptimRegion[];
  /** Sets lr and the step count t for the next encodes (rewrites the shared uniform buffer). */
  update(h: { lr: number; step: number }): void;
}

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
    checkCount(rw, 'offset', r.offset, 0);
    checkCount(rw, 'count', r.count);
    if (r.offset % SLAB_ALIGN_FLOATS !== 0) throw new Error(`${rw}: offset must be a multiple of ${SLAB_ALIGN_FLOATS} floats (256 bytes)`);
    if (!(Number.isFinite(r.weightDecay) && r.weightDecay >= 0)) throw new Error(`${rw}: weightDecay must be ≥ 0, got ${r.weightDecay}`);
    end = Math.max(end, r.offset + r.count);
  }
  const regions = mergeRegions(args.regions, what);
  for (const name of ['params', 'grads', 'm', 'v'] as const) checkBuffer(`${what} (regions end at float ${end})`, name, args[name], end);
  checkBuffer(what, 'stats', args.stats, STATS_FLOATS);
  const limit = bindingLimit(device, args.maxBindingBytes, what);
  const chunk = chunkFloats(device, limit, SLAB_ALIGN_FLOATS, WG);

  const pipeline = cachedPipeline(device, 'optim_adamw', AdamWHyperParams.wgsl + AdamWRegionParams.wgsl + adamwWgsl);
  const pack = (lr: number, step: number): ArrayBuffer => {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`${what}: lr must be finite and ≥ 0, got ${lr}`);
    checkCount(what, 'step', step);
    return AdamWHyperParams.pack({
      lr, beta1, oneMinusBeta1: 1 - beta1, beta2, oneMinusBeta2: 1 - beta2, eps,
      stepSize: lr / (1 - beta1 ** step),
      invSqrtBc2: 1 / Math.sqrt(1 - beta2 ** step),
    });
  };
  const hyper = createUniform(device, pack(args.lr, args.step), `adamw hyper`);
  const dispatches: Dispatch[] = [];
  for (const r of regions) {
    for (let start = r.offset; start < r.offset + r.count; start += chunk) {
      const n = Math.min(chunk, r.offset + r.count - start);
      const label = `adamw [${start}, ${start + n}) wd=${r.weightDecay}`;
      const uniforms = createUniform(device, AdamWRegionParams.pack({ n, weightDecay: r.weightDecay }), label);
      const bindGroup = bindBuffers(device, pipeline, [
        range(args.params, start, n), range(args.grads, start, n), range(args.m, start, n), range(args.v, start, n),
        range(args.stats, 0, STATS_FLOATS), hyper, uniforms,
      ], label);
      dispatches.push({ label, pipeline, bindGroup, workgroups: [Math.ceil(n / WG), 1, 1] });
    }
  }
  return {
    dispatches,
    regions,
    update({ lr, step }) { device.queue.writeBuffer(hyper, 0, pack(lr, step)); },
  };
}

// ---------------------------------------------------------------------------------------------------------------

export interface ZeroArgs {
  buffer: GPUBuffer; // (offset + count) floats; [offset, offset + count) set to 0
  offset?: number; // floats, a multiple of 64; default 0
  count: number; // floats
  maxBindingBytes?: number;
}

/** Zeroes a float range in chunks (e.g. the whole gradient slab before a backward that accumulates). */
export function planZero(device: GPUDevice, args: ZeroArgs): Dispatch[] {
  const offset = args.offset ?? 0;
  const what = `zero [${offset}, ${offset + args.count})`;
  checkCount(what, 'offset', offset, 0);
  checkCount(what, 'count', args.count);
  if (offset % SLAB_ALIGN_FLOATS !== 0) throw new Error(`${what}: offset must be a multiple of ${SLAB_ALIGN_FLOATS} floats (256 bytes)`);
  checkBuffer(what, 'buffer', args.buffer, offset + args.count);
  const chunk = chunkFloats(device, bindingLimit(device, args.maxBindingBytes, what), SLAB_ALIGN_FLOATS, WG);
  const pipeline = cachedPipeline(device, 'optim_zero', ZeroParams.wgsl + zeroWgsl);
  const dispatches: Dispatch[] = [];
  for (let start = offset; start < offset + args.count; start += chunk) {
    const n = Math.min(chunk, offset + args.count - start);
    const label = `zero [${start}, ${start + n})`;
    const uniforms = createUniform(device, ZeroParams.pack({ n }), label);
    const bindGroup = bindBuffers(device, pipeline, [range(args.buffer, start, n), uniforms], label);
    dispatches.push({ label, pipeline, bindGroup, workgroups: [Math.ceil(n / WG), 1, 1] });
  }
  return dispatches;
}
