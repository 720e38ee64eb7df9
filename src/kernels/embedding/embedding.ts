// Token-embedding launchers (Llama: no position embedding) and the CPU bucketing the backward needs.
// Forward x[n, :] = wte[ids[n], :]; backward dwte[v, :] += Σ_{n: ids[n] = v} dx[n, :], deterministic: token ids are
// known on the CPU before upload, so positions are grouped by token there (buildEmbeddingBuckets) and the kernel
// gives each distinct token one workgroup that sums its rows in ascending n.
// When the table (V, C) is larger than the binding limit (or `maxBindingBytes`, for tests), it is split into
// chunks of vocab rows, bound as 256-aligned ranges: one forward dispatch per chunk writes the rows whose id falls
// in it; in the backward each chunk handles its own unique tokens. Every storage binding is read_write (tensors
// of one slab may be bound together; WebGPU rejects read-only + writable use of one buffer in a dispatch).
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, offsetOf, subBinding, writeArray, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import backwardWgsl from './embedding_backward.wgsl?raw';
import forwardWgsl from './embedding_forward.wgsl?raw';

export const EmbeddingForwardParams = uniformStruct('Params', { N: 'u32', C: 'u32', v0: 'u32', v1: 'u32' });
export const EmbeddingBackwardParams = uniformStruct('Params', { C: 'u32', v0: 'u32', u0: 'u32', u1: 'u32' });

export interface EmbeddingBuckets {
  /** (U) distinct token ids, ascending. */
  unique: Uint32Array;
  /** (U + 1) positions[offsets[u] .. offsets[u+1]) are the positions of token unique[u]. */
  offsets: Uint32Array;
  /** (N) positions n grouped by token, ascending n within a token. */
  positions: Uint32Array;
}

export interface VocabChunk {
  /** First vocab row. */
  v0: number;
  /** One past the last vocab row. */
  v1: number;
}

export interface EmbeddingForwardArgs {
  ids: Binding; // (N) u32 read: token ids, each < V (checked on the CPU, see checkTokenIds; larger ids are not written)
  wte: Binding; // (V, C) f32 read
  x: Binding;   // (N, C) f32 written
  N: number;    // B·T
  V: number;
  C: number;
  /** Binding-size limit to plan for (default and cap: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
}

export interface EmbeddingBackwardArgs {
  dx: Binding;        // (N, C) f32 read: gradient of the embedding output
  dwte: Binding;      // (V, C) f32 accumulated (+=)
  unique: Binding;    // u32, room for min(N, V) ids: written by update()
  offsets: Binding;   // u32, room for min(N, V) + 1: written by update()
  positions: Binding; // (N) u32: written by update()
  N: number;
  V: number;
  C: number;
  maxBindingBytes?: number;
}

export interface EmbeddingBackwardPlan {
  /** One per vocab chunk; encode them all (after update()). */
  dispatches: Dispatch[];
  /** Writes this batch's buckets into the bucket buffers and each chunk's token range. Call once per batch. */
  update(buckets: EmbeddingBuckets): void;
}

/** Throws naming the first position whose id is not an integer in [0, V). */
export function checkTokenIds(ids: ArrayLike<number>, V: number): void {
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n]!;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`embedding: token id ${id} at position ${n} is out of range [0, ${V})`);
  }
}

/** Groups positions by token (counting sort: O(N + V)). */
export function buildEmbeddingBuckets(ids: Uint32Array, V: number): EmbeddingBuckets {
  checkTokenIds(ids, V);
  const counts = new Uint32Array(V);
  for (const id of ids) counts[id]!++;
  let U = 0;
  for (let v = 0; v < V; v++) if (counts[v]! > 0) U++;
  const unique = new Uint32Array(U);
  const offsets = new Uint32Array(U + 1);
  const start = new Uint32Array(V); // first slot of each token in positions
  for (let v = 0, u = 0, k = 0; v < V; v++) {
    if (counts[v] === 0) continue;
    unique[u] = v;
    offsets[u] = k;
    start[v] = k;
    k += counts[v]!;
    offsets[++u] = k;
  }
  const positions = new Uint32Array(ids.length);
  for (let n = 0; n < ids.length; n++) positions[start[ids[n]!]!++] = n; // ascending n within each token
  return { unique, offsets, positions };
}

/**
 * Splits V rows of C floats into chunks of at most `maxBindingBytes` whose byte offsets are multiples of `align`
 * (one chunk when the whole table fits).
 */
export function embeddingChunks(V: number, C: number, maxBindingBytes: number, align = 256): VocabChunk[] {
  const rowBytes = C * 4;
  if (V * rowBytes <= maxBindingBytes) return [{ v0: 0, v1: V }];
  const rowAlign = align / gcd(rowBytes, align);
  const rows = Math.floor(maxBindingBytes / rowBytes / rowAlign) * rowAlign;
  if (rows < 1) {
    throw new Error(`embedding V=${V} C=${C}: a chunk of ${rowAlign} rows (${rowAlign * rowBytes} bytes, for ${align}-byte aligned offsets) exceeds the binding limit of ${maxBindingBytes} bytes`);
  }
  const chunks: VocabChunk[] = [];
  for (let v0 = 0; v0 < V; v0 += rows) chunks.push({ v0, v1: Math.min(V, v0 + rows) });
  return chunks;
}

export function planEmbeddingForward(device: GPUDevice, a: EmbeddingForwardArgs): Dispatch[] {
  const k = new Checker(device, 'embedding_forward', a.N, a.V, a.C, a.maxBindingBytes);
  const ids = k.bind('ids', a.ids, a.N);
  const x = k.bind('x', a.x, a.N * a.C);
  k.size('wte', a.wte, a.V * a.C);
  if (a.N * a.C >= 2 ** 32) throw new Error(`${k.what}: N·C must be below 2^32`);
  const pipeline = cachedPipeline(device, 'embedding_forward', EmbeddingForwardParams.wgsl + forwardWgsl);
  const workgroups = k.grid(Math.ceil((a.N * a.C) / 256));
  return k.chunks.map(({ v0, v1 }) => {
    const what = `${k.what} rows ${v0}..${v1 - 1}`;
    const uniforms = createUniform(device, EmbeddingForwardParams.pack({ N: a.N, C: a.C, v0, v1 }), `${what} params`);
    const bindGroup = bindBuffers(device, pipeline, [ids, k.chunk(a.wte, v0, v1), x, uniforms], what);
    return { label: what, pipeline, bindGroup, workgroups };
  });
}

export function planEmbeddingBackward(device: GPUDevice, a: EmbeddingBackwardArgs): EmbeddingBackwardPlan {
  const k = new Checker(device, 'embedding_backward', a.N, a.V, a.C, a.maxBindingBytes);
  const maxU = Math.min(a.N, a.V);
  const dx = k.bind('dx', a.dx, a.N * a.C);
  const unique = k.bind('unique', a.unique, maxU);
  const offsets = k.bind('offsets', a.offsets, maxU + 1);
  const positions = k.bind('positions', a.positions, a.N);
  k.size('dwte', a.dwte, a.V * a.C);
  const pipeline = cachedPipeline(device, 'embedding_backward', EmbeddingBackwardParams.wgsl + backwardWgsl);
  const chunks = k.chunks.map(({ v0, v1 }) => {
    const what = `${k.what} rows ${v0}..${v1 - 1}`;
    const uniforms = createUniform(device, EmbeddingBackwardParams.pack({ C: a.C, v0, u0: 0, u1: 0 }), `${what} params`);
    const bindGroup = bindBuffers(device, pipeline, [dx, unique, offsets, positions, k.chunk(a.dwte, v0, v1), uniforms], what);
    // at most min(N, rows in chunk) distinct tokens fall in a chunk
    const dispatch: Dispatch = { label: what, pipeline, bindGroup, workgroups: k.grid(Math.min(a.N, v1 - v0)) };
    return { v0, v1, uniforms, dispatch };
  });
  return {
    dispatches: chunks.map((c) => c.dispatch),
    update(b: EmbeddingBuckets) {
      const U = b.unique.length;
      if (b.positions.length !== a.N) throw new Error(`${k.what}: buckets have ${b.positions.length} positions, expected N = ${a.N}`);
      if (U > maxU || b.offsets.length !== U + 1 || b.offsets[U] !== a.N) {
        throw new Error(`${k.what}: inconsistent buckets (${U} unique ids, ${b.offsets.length} offsets ending at ${b.offsets[U]})`);
      }
      if (U > 0 && b.unique[U - 1]! >= a.V) throw new Error(`${k.what}: token id ${b.unique[U - 1]} is out of range [0, ${a.V})`);
      const write = (dst: Binding, data: Uint32Array) => {
        if (data.length === 0) return;
        writeArray(device, bufferOf(dst), data, offsetOf(dst));
      };
      write(a.unique, b.unique);
      write(a.offsets, b.offsets);
      write(a.positions, b.positions);
      for (const c of chunks) {
        const u0 = lowerBound(b.unique, c.v0);
        const u1 = lowerBound(b.unique, c.v1);
        device.queue.writeBuffer(c.uniforms, 0, EmbeddingBackwardParams.pack({ C: a.C, v0: c.v0, u0, u1 }));
      }
    },
  };
}

/** First index i with sorted[i] ≥ v. */
function lowerBound(sorted: Uint32Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Shape, size and limit checks shared by the two plans. */
class Checker {
  readonly what: string;
  readonly maxBytes: number;
  readonly chunks: VocabChunk[];
  constructor(private readonly device: GPUDevice, kernel: string, N: number, V: number, private readonly C: number, maxBindingBytes?: number) {
    for (const [name, v] of [['N', N], ['V', V], ['C', C]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${name} must be a positive integer, got ${v}`);
    }
    this.what = `${kernel} N=${N} V=${V} C=${C}`;
    const limit = device.limits.maxStorageBufferBindingSize;
    this.maxBytes = Math.min(limit, maxBindingBytes ?? limit);
    this.chunks = embeddingChunks(V, C, this.maxBytes, device.limits.minStorageBufferOffsetAlignment);
  }

  /** Byte offset of a binding, checked for alignment, and its size checked against `elems`. */
  size(name: string, b: Binding, elems: number): { buffer: GPUBuffer; offset: number } {
    const buffer = bufferOf(b);
    const offset = offsetOf(b);
    const have = bindingBytes(b);
    if (have < elems * 4) throw new Error(`${this.what}: ${name} has ${have} bytes, needs ${elems * 4}`);
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (offset % align !== 0) throw new Error(`${this.what}: ${name} offset ${offset} is not a multiple of ${align}`);
    return { buffer, offset };
  }

  /** The exact range of `elems` 4-byte values at the start of `b`, within the binding limit. */
  bind(name: string, b: Binding, elems: number): Binding {
    const { buffer, offset } = this.size(name, b, elems);
    if (elems * 4 > this.maxBytes) throw new Error(`${this.what}: ${name} is ${elems * 4} bytes, over the binding limit of ${this.maxBytes}`);
    return { buffer, offset, size: elems * 4 };
  }

  /** Rows v0..v1−1 of a (V, C) table. */
  chunk(b: Binding, v0: number, v1: number): Binding {
    const C = this.C;
    return subBinding(b, v0 * C * 4, (v1 - v0) * C * 4);
  }

  /** `groups` workgroups on a 1-D grid, or 2-D past the per-dimension limit. */
  grid(groups: number): [number, number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const gy = Math.ceil(groups / max);
    if (gy > max) throw new Error(`${this.what}: too many workgroups for one dispatch`);
    return [Math.ceil(groups / gy), gy, 1];
  }
}
