// Token-embedding checks against the CPU reference at odd shapes: forward x and backward dwte (accumulated onto
// random non-zero values), unchunked and split into vocab chunks by a small binding limit, with repeated ids.
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { buildEmbeddingBuckets, planEmbeddingBackward, planEmbeddingForward } from './embedding.ts';
import { embeddingBackwardRef, embeddingForwardRef } from './embedding.ref.ts';

export interface EmbeddingCheckCase {
  N: number;
  V: number;
  C: number;
  /** 'random' ids, or every position using the same id. */
  ids: 'random' | 'same';
  maxBindingBytes?: number;
}

/** Forward is a copy (exact); backward sums ≤ N f32 terms, relative to Σ|terms|. */
export const EMBEDDING_TOLERANCE: Tolerance = { atol: 1e-7, rtol: 1e-6 };
/** Bit-exact (a bound of the smallest double, so err/bound stays finite in reports). */
export const EXACT: Tolerance = { atol: Number.MIN_VALUE, rtol: 0 };

export const EMBEDDING_CHECK_CASES: readonly EmbeddingCheckCase[] = [
  { N: 1, V: 1, C: 1, ids: 'random' },
  { N: 17, V: 33, C: 65, ids: 'random' },
  { N: 33, V: 7, C: 130, ids: 'random' },
  { N: 17, V: 33, C: 33, ids: 'same' },
  { N: 33, V: 130, C: 7, ids: 'random', maxBindingBytes: 2000 }, // 64-row chunks: 0..63, 64..127, 128..129
];

/** A u32 storage buffer holding `data`. */
export function createU32Storage(device: GPUDevice, data: Uint32Array | number, label?: string): GPUBuffer {
  const n = typeof data === 'number' ? data : data.length;
  const buffer = device.createBuffer({ label, size: Math.max(16, Math.ceil((n * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  if (typeof data !== 'number') device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

export function embeddingCheckIds(rng: Rng, c: EmbeddingCheckCase): Uint32Array {
  const same = rng.int(c.V);
  return Uint32Array.from({ length: c.N }, () => (c.ids === 'same' ? same : rng.int(c.V)));
}

/** Runs forward + backward once; returns the outputs read back (for checks and chunked-vs-unchunked tests). */
export async function runEmbedding(device: GPUDevice, c: EmbeddingCheckCase, ids: Uint32Array, wte: Float32Array, dx: Float32Array, dwte0: Float32Array):
  Promise<{ x: Float32Array; dwte: Float32Array }> {
  const { N, V, C, maxBindingBytes } = c;
  const maxU = Math.min(N, V);
  const bufs = {
    ids: createU32Storage(device, ids), wte: createStorage(device, wte), x: nanStorage(device, N * C),
    dx: createStorage(device, dx), dwte: createStorage(device, dwte0),
    unique: createU32Storage(device, maxU), offsets: createU32Storage(device, maxU + 1), positions: createU32Storage(device, N),
  };
  return runOnGpu(device, `embedding N=${N} V=${V} C=${C}`, bufs, () => {
    const bwd = planEmbeddingBackward(device, { dx: bufs.dx, dwte: bufs.dwte, unique: bufs.unique, offsets: bufs.offsets, positions: bufs.positions, N, V, C, maxBindingBytes });
    bwd.update(buildEmbeddingBuckets(ids, V));
    return [planEmbeddingForward(device, { ids: bufs.ids, wte: bufs.wte, x: bufs.x, N, V, C, maxBindingBytes }), bwd];
  }, { x: N * C, dwte: V * C });
}

export async function checkEmbedding(device: GPUDevice, c: EmbeddingCheckCase, seed: number): Promise<NamedComparison[]> {
  const { N, V, C } = c;
  const rng = new Rng(seed);
  const ids = embeddingCheckIds(rng, c);
  const wte = rng.uniformArray(V * C);
  const dx = rng.uniformArray(N * C);
  const dwte0 = rng.uniformArray(V * C);
  const got = await runEmbedding(device, c, ids, wte, dx, dwte0);
  const contrib = embeddingBackwardRef(ids, dx, V, C);
  const scale = embeddingBackwardRef(ids, dx.map(Math.abs), V, C).map((v, i) => v + Math.abs(dwte0[i]!));
  return [
    { name: 'x', ...compareArrays(got.x, embeddingForwardRef(ids, wte, V, C), EXACT) },
    { name: 'dwte', ...compareArrays(got.dwte, contrib.map((v, i) => v + dwte0[i]!), EMBEDDING_TOLERANCE, scale) },
  ];
}

export const embeddingChecks: KernelCheck[] = EMBEDDING_CHECK_CASES.map((c) => ({
  kernel: 'embedding',
  variant: c.maxBindingBytes ? 'chunked' : 'default',
  shape: `N=${c.N} V=${c.V} C=${c.C}${c.ids === 'same' ? ' one id' : ''}`,
  run: (device: GPUDevice, seed: number) => checkEmbedding(device, c, seed),
}));
