// A parameter-shaped slab on the GPU split across several buffers, so that no buffer passes the adapter's
// maxBufferSize (Qwen3-0.6B's slab is 2.22 GiB; many adapters stop at 2 GiB or 4 GiB). The host keeps one flat
// layout (params.ts: tensors at 64-float offsets; checkpoints and exports are unchanged): shards are contiguous
// ranges of that flat layout, cut only where a tensor starts, so every tensor lives whole in one buffer and binds
// as today. Parameters, gradients and the two AdamW moments are four slabs with the same shards, so a tensor's
// gradient and moments sit at the same (shard, offset) as its weight.
//   shardRanges(cuts, total, maxFloats)   greedy: each shard as long as fits, cut at tensor starts
//   SlabShards                             the buffers of one slab; bindings, writes and reads by flat offset
import { readF32Into, writeArray, type Binding } from '../gpu/dispatch.ts';
import { allocBuffer } from './activations.ts';

export interface ShardRange {
  /** First float of the shard in the flat layout (a tensor's offset). */
  start: number;
  floats: number;
}

/**
 * Splits the flat range [0, total) into shards of at most `maxFloats`, cutting only at `cuts` (the offsets where a
 * tensor starts, ascending, 0 first). A tensor longer than maxFloats cannot be placed: the error names it.
 */
export function shardRanges(cuts: readonly { offset: number; name: string }[], total: number, maxFloats: number): ShardRange[] {
  if (!(maxFloats > 0)) throw new Error(`shardRanges: maxFloats must be positive, got ${maxFloats}`);
  const out: ShardRange[] = [];
  let start = 0;
  for (let i = 0; i < cuts.length; i++) {
    const end = i + 1 < cuts.length ? cuts[i + 1]!.offset : total;
    const size = end - cuts[i]!.offset;
    if (size > maxFloats) {
      throw new Error(`tensor '${cuts[i]!.name}' takes ${size * 4} bytes, more than this GPU's largest buffer (${maxFloats * 4} bytes): it cannot be placed`);
    }
    // Close the current shard before this tensor when the tensor would push it past the limit.
    if (end - start > maxFloats) {
      out.push({ start, floats: cuts[i]!.offset - start });
      start = cuts[i]!.offset;
    }
  }
  if (total > start) out.push({ start, floats: total - start });
  return out;
}

/** One slab (parameters, gradients or a moment) in the buffers of its shards. */
export class SlabShards {
  readonly buffers: GPUBuffer[];

  constructor(readonly device: GPUDevice, readonly ranges: readonly ShardRange[], label: string) {
    this.buffers = ranges.map((r, i) => allocBuffer(device, r.floats, ranges.length > 1 ? `${label}.${i}` : label));
  }

  /** Total floats. */
  get floats(): number {
    const last = this.ranges[this.ranges.length - 1];
    return last ? last.start + last.floats : 0;
  }

  /** The shard holding flat float `offset`. */
  private shardOf(offset: number): number {
    for (let i = this.ranges.length - 1; i >= 0; i--) if (offset >= this.ranges[i]!.start) return i;
    throw new Error(`SlabShards: offset ${offset} before the first shard`);
  }

  /** `size` floats from flat `offset` as one binding: the range must lie in one shard (a tensor always does). */
  binding(offset: number, size: number): Binding {
    const i = this.shardOf(offset), r = this.ranges[i]!;
    if (offset + size > r.start + r.floats) throw new Error(`SlabShards: floats [${offset}, ${offset + size}) cross the end of shard ${i} at ${r.start + r.floats}`);
    return { buffer: this.buffers[i]!, offset: (offset - r.start) * 4, size: size * 4 };
  }

  /** Calls fn for each piece of the flat range [offset, offset + count) that lies in one shard. */
  private pieces(offset: number, count: number, fn: (buffer: GPUBuffer, shardOffset: number, at: number, n: number) => void): void {
    if (offset < 0 || offset + count > this.floats) throw new Error(`SlabShards: floats [${offset}, ${offset + count}) outside the slab of ${this.floats}`);
    for (const [i, r] of this.ranges.entries()) {
      const from = Math.max(offset, r.start), to = Math.min(offset + count, r.start + r.floats);
      if (from < to) fn(this.buffers[i]!, from - r.start, from - offset, to - from);
    }
  }

  /** Writes `data` at flat float `offset`, split across shards. */
  write(data: Float32Array, offset = 0): void {
    this.pieces(offset, data.length, (buffer, at, i, n) => writeArray(this.device, buffer, data.subarray(i, i + n), at * 4));
  }

  /** Reads `into.length` floats from flat `offset` straight into `into`, shard by shard. */
  async readInto(into: Float32Array, offset = 0): Promise<void> {
    const jobs: [GPUBuffer, number, number, number][] = [];
    this.pieces(offset, into.length, (buffer, at, i, n) => jobs.push([buffer, at, i, n]));
    for (const [buffer, at, i, n] of jobs) await readF32Into(this.device, buffer, into.subarray(i, i + n), at);
  }

  async read(count = this.floats, offset = 0): Promise<Float32Array> {
    const out = new Float32Array(count);
    await this.readInto(out, offset);
    return out;
  }

  /** Clears every shard (encoded: gradients before a backward). */
  clear(enc: GPUCommandEncoder): void {
    for (const b of this.buffers) enc.clearBuffer(b);
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
