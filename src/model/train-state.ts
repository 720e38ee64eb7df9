// What training keeps per trained float — parameters, gradients, AdamW's m and v — as four slabs with the same
// shards (slab-shards.ts: no buffer over the adapter's maxBufferSize), and the optimizer step over them: the global
// gradient norm over every shard (one partials buffer, each shard from its own slot), then AdamW per shard over the
// regions (tensors) that lie in it. The model plans its kernels on bindings from here (params.binding / grads.binding
// at a tensor's flat offset); the host sees one flat layout, as checkpoints and exports store it.
import type { Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf } from '../gpu/launch.ts';
import { gradNormPartialCount, planAdamW, planGradNorm, type AdamWPlan, type OptimRegion } from '../kernels/optim/optim.ts';
import { allocBuffer } from './activations.ts';
import { shardRanges, SlabShards } from './slab-shards.ts';

export interface TrainStateSpec {
  /** Where each tensor starts in the flat layout (ascending, first at 0): the only places a shard may be cut. */
  cuts: readonly { offset: number; name: string }[];
  /** Floats of the flat layout (padding included). */
  floats: number;
  /** What AdamW updates: float ranges of tensors (offset a multiple of 64) with their weight decay. */
  regions: readonly OptimRegion[];
  /** Largest buffer in bytes (the device's maxBufferSize, or smaller to test the shards). */
  maxBufferBytes: number;
  optimizer: { clipNorm: number; beta1?: number; beta2?: number; eps?: number };
}

export class TrainState {
  readonly params: SlabShards;
  readonly grads: SlabShards;
  readonly m: SlabShards;
  readonly v: SlabShards;
  private readonly partials: GPUBuffer;
  /** [norm, clipScale, nonFinite, sumSq] of the last optimizer step. */
  readonly stats: GPUBuffer;
  private readonly adamw: AdamWPlan[];
  /** Gradient norm (with clipping) then AdamW on every shard: encode after a backward. */
  readonly optimize: Dispatch[];

  constructor(readonly device: GPUDevice, spec: TrainStateSpec) {
    // Shards end on 256-byte multiples already (tensors start at 64-float offsets); a buffer is a multiple of 16 bytes.
    const maxFloats = Math.floor(spec.maxBufferBytes / 256) * 64;
    const ranges = shardRanges(spec.cuts, spec.floats, maxFloats);
    this.params = new SlabShards(device, ranges, 'params');
    this.grads = new SlabShards(device, ranges, 'grads');
    this.m = new SlabShards(device, ranges, 'adam.m');
    this.v = new SlabShards(device, ranges, 'adam.v');
    const shards = ranges.map((r, i) => ({ buffer: this.grads.buffers[i]!, floats: r.floats }));
    this.partials = allocBuffer(device, gradNormPartialCount(shards), 'gradnorm.partials');
    this.stats = allocBuffer(device, 4, 'gradnorm.stats');
    const o = spec.optimizer;
    const gn = planGradNorm(device, { grad: shards, P: spec.floats, partials: this.partials, stats: this.stats, maxNorm: o.clipNorm });
    // Each region is one tensor, so it lies in one shard: AdamW per shard over its regions at shard offsets.
    this.adamw = [];
    for (const [i, r] of ranges.entries()) {
      const regions = spec.regions.filter((x) => x.offset >= r.start && x.offset < r.start + r.floats).map((x) => ({ ...x, offset: x.offset - r.start }));
      for (const x of regions) if (x.offset + x.count > r.floats) throw new Error(`TrainState: region at ${x.offset + r.start} crosses the end of shard ${i}`);
      if (regions.length === 0) continue;
      this.adamw.push(planAdamW(device, {
        params: this.params.buffers[i]!, grads: this.grads.buffers[i]!, m: this.m.buffers[i]!, v: this.v.buffers[i]!, stats: this.stats,
        regions, lr: 0, step: 1, beta1: o.beta1, beta2: o.beta2, eps: o.eps,
      }));
    }
    this.optimize = dispatchesOf(gn, ...this.adamw);
  }

  /** Floats trained (the flat layout's length). */
  get floats(): number {
    return this.params.floats;
  }

  /** Number of buffers each slab is split into. */
  get shardCount(): number {
    return this.params.ranges.length;
  }

  /** Sets the learning rate and the 1-based step count of the next optimizer step. */
  setStep(u: { lr: number; step: number }): void {
    for (const a of this.adamw) a.update(u);
  }

  /** Clears the moments (a fresh optimizer). */
  resetOptimizer(): void {
    const enc = this.device.createCommandEncoder();
    this.m.clear(enc);
    this.v.clear(enc);
    this.device.queue.submit([enc.finish()]);
  }

  destroy(): void {
    for (const s of [this.params, this.grads, this.m, this.v]) s.destroy();
    this.partials.destroy();
    this.stats.destroy();
  }
}
