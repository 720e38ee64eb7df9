// Token-embedding launchers (Llama: no position embedding) and the CPU bucketing the backward needs.
// Forward x[n, :] = wte[ids[n], :]; backward dwte[v, :] += Σ_{n: ids[n] = v} dx[n, :], deterministic: token ids are
// known on the CPU before upload, so positions are grouped by token there (buildEmbeddingBuckets) and the kernel
// gives each distinct token one workgroup that sums its rows in ascending n.
// When the table (V, C) is larger than the binding limit (or `maxBindingBytes`, for tests), it is split into
// chunks of vocab rows, bound as 256-aligned ranges: one forward dispatch per chunk writes the rows whose id falls
// in it; in the backward each chunk handles its own unique tokens. Checks, pipelines and read_write variants (tensors
// of one slab bound together): the launch helper, src/gpu/launch.ts.
import { bufferOf, offsetOf, subBinding, writeArray, type Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
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

export function planEmbeddingForward(device: GPUDevice, a: EmbeddingForwardArgs): KernelPlan {
  const { k, chunks, rows } = launch(device, 'embedding_forward', a);
  const ids = k.bind('ids', a.ids, a.N);
  const x = k.bind('x', a.x, a.N * a.C);
  k.check('wte', a.wte, a.V * a.C);
  if (a.N * a.C >= 2 ** 32) throw k.error('N·C must be below 2^32');
  const workgroups = k.grid(Math.ceil((a.N * a.C) / 256));
  return {
    dispatches: chunks.map(({ v0, v1 }) => {
      const label = `${k.what} rows ${v0}..${v1 - 1}`;
      const params = k.uniform(EmbeddingForwardParams, { N: a.N, C: a.C, v0, v1 }, `${label} params`);
      const kernel = { key: 'embedding_forward', code: EmbeddingForwardParams.wgsl + forwardWgsl };
      return k.dispatch(kernel, [ids, rows(a.wte, v0, v1), x, params.buffer], workgroups, label);
    }),
  };
}

/** One dispatch per vocab chunk; update(buckets) writes a batch's buckets (call once per batch, before encoding). */
export function planEmbeddingBackward(device: GPUDevice, a: EmbeddingBackwardArgs): KernelPlan<EmbeddingBuckets> {
  const { k, chunks: vocab, rows } = launch(device, 'embedding_backward', a);
  const maxU = Math.min(a.N, a.V);
  const dx = k.bind('dx', a.dx, a.N * a.C);
  const unique = k.bind('unique', a.unique, maxU);
  const offsets = k.bind('offsets', a.offsets, maxU + 1);
  const positions = k.bind('positions', a.positions, a.N);
  k.check('dwte', a.dwte, a.V * a.C);
  const chunks = vocab.map(({ v0, v1 }) => {
    const label = `${k.what} rows ${v0}..${v1 - 1}`;
    const params = k.uniform(EmbeddingBackwardParams, { C: a.C, v0, u0: 0, u1: 0 }, `${label} params`);
    const kernel = { key: 'embedding_backward', code: EmbeddingBackwardParams.wgsl + backwardWgsl };
    // at most min(N, rows in chunk) distinct tokens fall in a chunk
    const dispatch = k.dispatch(kernel, [dx, unique, offsets, positions, rows(a.dwte, v0, v1), params.buffer], k.grid(Math.min(a.N, v1 - v0)), label);
    return { v0, v1, params, dispatch };
  });
  return {
    dispatches: chunks.map((c) => c.dispatch),
    update(b: EmbeddingBuckets) {
      const U = b.unique.length;
      if (b.positions.length !== a.N) throw k.error(`buckets have ${b.positions.length} positions, expected N = ${a.N}`);
      if (U > maxU || b.offsets.length !== U + 1 || b.offsets[U] !== a.N) {
        throw k.error(`inconsistent buckets (${U} unique ids, ${b.offsets.length} offsets ending at ${b.offsets[U]})`);
      }
      if (U > 0 && b.unique[U - 1]! >= a.V) throw k.error(`token id ${b.unique[U - 1]} is out of range [0, ${a.V})`);
      const write = (dst: Binding, data: Uint32Array) => {
        if (data.length === 0) return;
        writeArray(device, bufferOf(dst), data, offsetOf(dst));
      };
      write(a.unique, b.unique);
      write(a.offsets, b.offsets);
      write(a.positions, b.positions);
      for (const c of chunks) c.params.write({ C: a.C, v0: c.v0, u0: lowerBound(b.unique, c.v0), u1: lowerBound(b.unique, c.v1) });
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

/** The launch of either plan, with the vocab chunks of its (V, C) table. */
function launch(device: GPUDevice, kernel: string, a: { N: number; V: number; C: number; maxBindingBytes?: number }) {
  const k = new Launch(device, kernel, { N: a.N, V: a.V, C: a.C }, { maxBindingBytes: a.maxBindingBytes });
  const chunks = embeddingChunks(a.V, a.C, k.maxBindingBytes, device.limits.minStorageBufferOffsetAlignment);
  /** Rows v0..v1−1 of a (V, C) table. */
  const rows = (b: Binding, v0: number, v1: number): Binding => subBinding(b, v0 * a.C * 4, (v1 - v0) * a.C * 4);
  return { k, chunks, rows };
}
