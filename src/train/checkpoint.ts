// Checkpoints: everything needed to continue a run exactly — model config, train config, step counters, data
// cursor, parameters and AdamW moments — in one binary blob, behind a storage interface (files in Node,
// IndexedDB in the app). Layout: "DSTLCKPT" · u32 version · u32 header bytes · JSON header · pad to 4 · f32 data.
import type { ModelConfig } from '../model/config.ts';
import type { DataCursor } from './batches.ts';
import type { TrainConfig } from './config.ts';

export interface CheckpointStore {
  put(name: string, bytes: Uint8Array): Promise<void>;
  get(name: string): Promise<Uint8Array | undefined>;
  list(): Promise<string[]>;
}

export interface Checkpoint {
  model: ModelConfig;
  train: TrainConfig;
  /** Optimizer steps taken (including skipped ones) and AdamW's own count (skipped steps excluded). */
  step: number;
  adamStep: number;
  cursor: DataCursor;
  params: Float32Array;
  /** AdamW moments of every trained float: the slab, then its tail when present. */
  m: Float32Array;
  v: Float32Array;
  /** The trained slab's tail: the hidden-state projection W_h (Ct, C) of hidden-state distillation, or a reward
   *  model's score head (C). */
  tail?: Float32Array;
}

const MAGIC = 'DSTLCKPT';
const VERSION = 1;

/** Float counts of a checkpoint's tensors. */
export interface CheckpointSizes {
  params: number;
  m: number;
  v: number;
  /** The tail (W_h or a score head), 0 when absent. */
  wh: number;
}

export type CheckpointMeta = Omit<Checkpoint, 'params' | 'm' | 'v' | 'tail'>;

/** Blobs made by checkpointBlob, by the checkpoint whose tensors are views of them: encoding those copies nothing. */
const blobs = new WeakMap<Checkpoint, Uint8Array>();

/**
 * An encoded checkpoint allocated once, its tensors zero and returned as views to fill (a trainer reads the GPU
 * straight into them): the bytes are then the checkpoint, with no second copy of the weights and moments.
 */
export function checkpointBlob(meta: CheckpointMeta, n: CheckpointSizes): { bytes: Uint8Array; checkpoint: Checkpoint } {
  const header = new TextEncoder().encode(JSON.stringify({
    model: meta.model, train: meta.train, step: meta.step, adamStep: meta.adamStep, cursor: meta.cursor,
    tensors: { params: n.params, m: n.m, v: n.v, wh: n.wh },
  }));
  const dataStart = Math.ceil((16 + header.length) / 4) * 4;
  const floats = n.params + n.m + n.v + n.wh;
  const bytes = new Uint8Array(dataStart + floats * 4);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, header.length, true);
  bytes.set(header, 16);
  const f = new Float32Array(bytes.buffer, dataStart, floats);
  const checkpoint: Checkpoint = {
    ...meta, cursor: { ...meta.cursor },
    params: f.subarray(0, n.params), m: f.subarray(n.params, n.params + n.m), v: f.subarray(n.params + n.m, n.params + n.m + n.v),
    ...(n.wh ? { tail: f.subarray(n.params + n.m + n.v) } : {}),
  };
  blobs.set(checkpoint, bytes);
  return { bytes, checkpoint };
}

export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const made = blobs.get(c);
  const own = (t: Float32Array | undefined) => t === undefined || t.buffer === made?.buffer;
  if (made && own(c.params) && own(c.m) && own(c.v) && own(c.tail)) return made;
  const { bytes, checkpoint } = checkpointBlob(c, { params: c.params.length, m: c.m.length, v: c.v.length, wh: c.tail?.length ?? 0 });
  checkpoint.params.set(c.params);
  checkpoint.m.set(c.m);
  checkpoint.v.set(c.v);
  if (c.tail) checkpoint.tail!.set(c.tail);
  return bytes;
}

/** A checkpoint read from its blob; its tensors are views of `bytes` (do not reuse the bytes for something else). */
export function decodeCheckpoint(bytes: Uint8Array, where = 'checkpoint'): Checkpoint {
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw new Error(`${where}: not a checkpoint (bad magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new Error(`${where}: version ${version}, this build reads ${VERSION}`);
  const hlen = view.getUint32(12, true);
  if (16 + hlen > bytes.length) throw new Error(`${where}: header of ${hlen} bytes runs past the end (${bytes.length} bytes): truncated file?`);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + hlen)));
  const dataStart = Math.ceil((16 + hlen) / 4) * 4;
  const { params: np, m: nm, v: nv, wh: nw = 0 } = h.tensors as { params: number; m: number; v: number; wh?: number };
  const total = np + nm + nv + nw;
  if (dataStart + total * 4 !== bytes.length) throw new Error(`${where}: expected ${dataStart + total * 4} bytes, got ${bytes.length}: truncated or corrupt`);
  // Views of the blob's floats, not copies (a checkpoint of a pretrained student is hundreds of MB): the bytes are read
  // in place when 4-byte aligned (as IndexedDB and files return them), else copied once to an aligned buffer.
  const at = bytes.byteOffset + dataStart;
  const f = at % 4 === 0 ? new Float32Array(bytes.buffer, at, total) : new Float32Array(bytes.slice(dataStart).buffer, 0, total);
  return {
    model: h.model, train: h.train, step: h.step, adamStep: h.adamStep, cursor: h.cursor,
    params: f.subarray(0, np), m: f.subarray(np, np + nm), v: f.subarray(np + nm, np + nm + nv),
    ...(nw ? { tail: f.subarray(np + nm + nv) } : {}),
  };
}

/** In-memory store (tests, and the default when nothing is configured). */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly items = new Map<string, Uint8Array>();
  async put(name: string, bytes: Uint8Array) { this.items.set(name, bytes.slice()); }
  async get(name: string) { return this.items.get(name)?.slice(); }
  async list() { return [...this.items.keys()].sort(); }
}
