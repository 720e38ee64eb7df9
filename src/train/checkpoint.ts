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
  /** AdamW moments of every trained float: the slab, then W_h when present. */
  m: Float32Array;
  v: Float32Array;
  /** The hidden-state projection W_h (Ct, C), when the run uses hidden-state distillation. */
  hiddenProjection?: Float32Array;
}

const MAGIC = 'DSTLCKPT';
const VERSION = 1;

export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({
    model: c.model, train: c.train, step: c.step, adamStep: c.adamStep, cursor: c.cursor,
    tensors: { params: c.params.length, m: c.m.length, v: c.v.length, wh: c.hiddenProjection?.length ?? 0 },
  }));
  const dataStart = Math.ceil((16 + header.length) / 4) * 4;
  const wh = c.hiddenProjection ?? new Float32Array(0);
  const floats = c.params.length + c.m.length + c.v.length + wh.length;
  const out = new Uint8Array(dataStart + floats * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, header.length, true);
  out.set(header, 16);
  const f = new Float32Array(out.buffer, dataStart, floats);
  f.set(c.params, 0);
  f.set(c.m, c.params.length);
  f.set(c.v, c.params.length + c.m.length);
  f.set(wh, c.params.length + c.m.length + c.v.length);
  return out;
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
    ...(nw ? { hiddenProjection: f.subarray(np + nm + nv) } : {}),
  };
}

/** In-memory store (tests, and the default when nothing is configured). */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly items = new Map<string, Uint8Array>();
  async put(name: string, bytes: Uint8Array) { this.items.set(name, bytes.slice()); }
  async get(name: string) { return this.items.get(name)?.slice(); }
  async list() { return [...this.items.keys()].sort(); }
}
