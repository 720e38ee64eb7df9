// safetensors, written and read by hand. Layout: u64 little-endian header length N · N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, ..., "__metadata__": {string: string}} padded with spaces to
// a multiple of 8 · the data area (row-major little-endian tensors, offsets relative to its start, contiguous with
// no gaps, fully covered). We write F32, F16 or BF16; we decode F32/F16/BF16/F64 to Float32Array, or one tensor at a
// time to packed 16-bit words (readHalfTensor: a frozen base for the matmul's 16-bit B, never the model in f32).
// The reader treats the file as hostile: every length, offset, shape and dtype is checked against the file before
// anything is allocated or decoded, and every failure is an Error naming the tensor and the field.

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
/** Dtypes the reader decodes (to Float32Array). F64 loses precision to f32. */
export type DecodedDtype = SafetensorsDtype | 'F64';

/** Bytes per element of every fixed-size dtype of the format (sub-byte dtypes such as F4 are not listed). */
const ITEM_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8, C64: 8,
};
const DECODED = new Set<string>(['F32', 'F16', 'BF16', 'F64']);

/** Largest header accepted (the same bound as the reference implementation). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
export const METADATA_KEY = '__metadata__';

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Storage dtype of this tensor; default the file's (opts.dtype, else F32). */
  dtype?: SafetensorsDtype;
}

export interface WriteOptions {
  dtype?: SafetensorsDtype;
  /** Extra `__metadata__` strings; "format" is always "pt". */
  metadata?: Record<string, string>;
}

export interface ReadTensor {
  dtype: DecodedDtype;
  shape: number[];
  data: Float32Array;
}

/** One header entry after validation. */
export interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range in the data area. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** Byte offset of the data area in the file (8 + N). */
  dataStart: number;
}

export interface ReadResult {
  tensors: Map<string, ReadTensor>;
  metadata: Record<string, string>;
  /** Tensors of a valid but undecoded dtype (I64, U8, ...), only with `skipUnsupported`. */
  skipped: { name: string; dtype: string }[];
}

// Half-precision conversions live in src/util/half.ts (shared with GGUF and the matmul); re-exported for callers of this module.
export { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../util/half.ts';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, halfWords, packHalf, type HalfFormat } from '../util/half.ts';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------------------------
// Writing

/** A safetensors file of these tensors, in this order, contiguous. */
export function writeSafetensors(tensors: readonly TensorToWrite[], opts: WriteOptions = {}): Uint8Array {
  const fileDtype = opts.dtype ?? 'F32';
  const meta = opts.metadata ?? {};
  if (meta.format !== undefined && meta.format !== 'pt') throw new Error(`writeSafetensors: metadata "format" must be "pt", got ${JSON.stringify(meta.format)}`);
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata "${k}" must be a string, got ${typeof v}`);
  }
  const header: Record<string, unknown> = { [METADATA_KEY]: { format: 'pt', ...meta } };
  const seen = new Set<string>();
  let offset = 0;
  const placed = tensors.map((t) => {
    const dtype = t.dtype ?? fileDtype;
    if (!t.name || t.name === METADATA_KEY) throw new Error(`writeSafetensors: invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new Error(`writeSafetensors: tensor '${t.name}' appears twice`);
    seen.add(t.name);
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`writeSafetensors: tensor '${t.name}': cannot write dtype ${JSON.stringify(dtype)} (F32, F16, BF16)`);
    const numel = t.shape.reduce((a, d) => {
      if (!Number.isSafeInteger(d) || d < 0) throw new Error(`writeSafetensors: tensor '${t.name}' has invalid shape [${t.shape}]`);
      return a * d;
    }, 1);
    if (numel !== t.data.length) throw new Error(`writeSafetensors: tensor '${t.name}' has ${t.data.length} values, shape [${t.shape}] needs ${numel}`);
    const begin = offset;
    offset += numel * ITEM_SIZE[dtype]!;
    header[t.name] = { dtype, shape: t.shape, data_offsets: [begin, offset] };
    return { t, dtype, begin };
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const dataStart = 8 + json.length;
  const out = new Uint8Array(dataStart + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  view.setUint32(4, Math.floor(json.length / 2 ** 32), true);
  out.set(json, 8);
  for (const { t, dtype, begin } of placed) {
    const at = dataStart + begin;
    const n = t.data.length;
    if (dtype === 'F32') {
      if (LITTLE_ENDIAN && at % 4 === 0) new Float32Array(out.buffer, at, n).set(t.data);
      else for (let i = 0; i < n; i++) view.setFloat32(at + 4 * i, t.data[i]!, true);
    } else {
      const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < n; i++) view.setUint16(at + 2 * i, conv(t.data[i]!), true);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses and validates the header only: lengths, JSON, metadata, every entry's dtype/shape/offsets, and that the
 * tensors tile the data area exactly (no overlap, no gap, nothing after the last). Allocates nothing the size of
 * a tensor.
 */
export function readSafetensorsHeader(bytes: Uint8Array, where = 'safetensors'): SafetensorsHeader {
  const fail = (why: string): never => { throw new Error(`${where}: ${why}`); };
  if (bytes.length < 8) fail(`file of ${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32; // exact below 2^53; above, still huge
  if (n > bytes.length - 8) fail(`header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or not a safetensors file`);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  if (n < 2) fail(`header length ${n} is too small for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(`header must be a JSON object starting with '{', starts with ${JSON.stringify(text.slice(0, 16))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) return fail('header must be a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const rawMeta = json[METADATA_KEY];
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isObject(rawMeta)) fail(`${METADATA_KEY} must be an object of strings, got ${JSON.stringify(rawMeta).slice(0, 40)}`);
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`${METADATA_KEY}["${k}"] must be a string, got ${JSON.stringify(v)?.slice(0, 40)}`);
      metadata[k] = v as string;
    }
  }

  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) continue;
    const bad = (field: string, why: string): never => fail(`tensor '${name}': ${field} ${why}`);
    if (!isObject(raw)) bad('entry', 'must be an object {dtype, shape, data_offsets}');
    const r = raw as Record<string, unknown>;
    const dtype = r.dtype;
    if (typeof dtype !== 'string') return bad('dtype', `must be a string, got ${JSON.stringify(dtype)}`);
    const itemSize = ITEM_SIZE[dtype];
    if (itemSize === undefined || !Object.hasOwn(ITEM_SIZE, dtype)) return bad('dtype', `${JSON.stringify(dtype)} is unsupported (known: ${Object.keys(ITEM_SIZE).join(', ')})`);
    const shape = r.shape;
    if (!Array.isArray(shape)) return bad('shape', `must be an array, got ${JSON.stringify(shape)?.slice(0, 40)}`);
    if (shape.length > 64) bad('shape', `has ${shape.length} dimensions (at most 64)`);
    let numel = 1;
    shape.forEach((d: unknown, i: number) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) bad(`shape[${i}]`, `must be a non-negative integer, got ${JSON.stringify(d)}`);
      numel *= d as number;
      if (numel > Number.MAX_SAFE_INTEGER) bad('shape', `[${shape.join(', ')}] overflows: more than 2^53 elements`);
    });
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2) return bad('data_offsets', `must be [begin, end], got ${JSON.stringify(off)?.slice(0, 40)}`);
    const [begin, end] = off as unknown[];
    for (const [k, v] of [['begin', begin], ['end', end]] as const) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`data_offsets ${k}`, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    const b = begin as number, e = end as number;
    if (b > e) bad('data_offsets', `[${b}, ${e}] has begin after end`);
    if (e > dataLen) bad('data_offsets', `[${b}, ${e}] runs past the data area (${dataLen} bytes): truncated file?`);
    if (numel * itemSize !== e - b) bad('data_offsets', `[${b}, ${e}] span ${e - b} bytes, but dtype ${dtype} with shape [${shape.join(', ')}] needs ${numel * itemSize}`);
    entries.push({ name, dtype, shape: shape as number[], begin: b, end: e });
  }

  // The tensors must tile [0, dataLen) exactly: sorted by range, each begins where the previous ended.
  const sorted = entries.slice().sort((x, y) => x.begin - y.begin || x.end - y.end);
  let expected = 0;
  let prev: HeaderEntry | undefined;
  for (const t of sorted) {
    if (t.begin < expected) fail(`tensor '${t.name}': data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev!.name}' [${prev!.begin}, ${prev!.end}]`);
    if (t.begin > expected) fail(`tensor '${t.name}': data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - expected} bytes after ${prev ? `tensor '${prev.name}'` : 'the header'} (the data must be contiguous)`);
    expected = t.end;
    prev = t;
  }
  if (expected !== dataLen) fail(`${dataLen - expected} bytes after the last tensor are not covered by any tensor (the data area has ${dataLen} bytes, the tensors end at ${expected})`);
  return { entries, metadata, dataStart };
}

/** Decodes one entry to Float32Array (copies; the input may be unaligned). */
function decode(bytes: Uint8Array, at: number, e: HeaderEntry): Float32Array {
  const n = (e.end - e.begin) / ITEM_SIZE[e.dtype]!;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, e.end - e.begin);
  switch (e.dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * n));
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(view.getUint16(2 * i, true));
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    default:
      throw new Error(`decode: dtype ${e.dtype}`); // unreachable: filtered by the caller
  }
  return out;
}

/**
 * Reads a safetensors file: validated header (readSafetensorsHeader), then every tensor decoded to Float32Array.
 * Tensors of a valid dtype this reader does not decode (I64, U8, ...) throw "unsupported dtype", or with
 * `skipUnsupported` are listed in `skipped`.
 */
export function readSafetensors(bytes: Uint8Array, where = 'safetensors', opts: { skipUnsupported?: boolean } = {}): ReadResult {
  const h = readSafetensorsHeader(bytes, where);
  const tensors = new Map<string, ReadTensor>();
  const skipped: { name: string; dtype: string }[] = [];
  for (const e of h.entries) {
    if (!DECODED.has(e.dtype)) {
      if (!opts.skipUnsupported) throw new Error(`${where}: tensor '${e.name}': dtype ${e.dtype} is unsupported (this reader decodes F32, F16, BF16, F64)`);
      skipped.push({ name: e.name, dtype: e.dtype });
      continue;
    }
    tensors.set(e.name, { dtype: e.dtype as DecodedDtype, shape: e.shape, data: decode(bytes, h.dataStart + e.begin, e) });
  }
  return { tensors, metadata: { ...h.metadata }, skipped };
}

/** One tensor as packed 16-bit words (readHalfTensor). */
/** One tensor of a file decoded to f32 (F32, F16, BF16, F64), the others left unread. */
export function readF32Tensor(bytes: Uint8Array, header: SafetensorsHeader, name: string, where = 'safetensors'): ReadTensor {
  const e = header.entries.find((x) => x.name === name);
  if (!e) throw new Error(`${where}: no tensor '${name}'`);
  if (!DECODED.has(e.dtype)) throw new Error(`${where}: tensor '${name}': dtype ${e.dtype} is not a float (F32, F16, BF16, F64)`);
  return { dtype: e.dtype as DecodedDtype, shape: e.shape, data: decode(bytes, header.dataStart + e.begin, e) };
}

export interface HalfTensor {
  /** The file's dtype for it (F32, F16, BF16, F64). */
  dtype: DecodedDtype;
  shape: number[];
  format: HalfFormat;
  /** Elements (the product of shape). */
  count: number;
  /** halfWords(count) words, element e in half (e & 1) of word e >> 1, low half first; an odd count ends in a zero half. */
  words: Uint32Array;
}

const HALF_DTYPE: Record<HalfFormat, string> = { bf16: 'BF16', f16: 'F16' };

/**
 * Tensor `name` of a safetensors file as packed 16-bit words in `format` (src/util/half.ts; what the matmul's
 * bFormat takes), holding only this tensor: a BF16 tensor read as bf16 (F16 as f16) is a copy of its bytes, which
 * already are the words; any other float dtype (F32, F64, the other 16-bit format) is decoded and rounded to
 * nearest even. A caller builds a 16-bit base buffer tensor by tensor, never holding the model in f32. `header` is
 * readSafetensorsHeader(bytes), parsed once per file.
 */
export function readHalfTensor(bytes: Uint8Array, header: SafetensorsHeader, name: string, format: HalfFormat, where = 'safetensors'): HalfTensor {
  const e = header.entries.find((x) => x.name === name);
  if (!e) throw new Error(`${where}: no tensor '${name}'`);
  if (!DECODED.has(e.dtype)) throw new Error(`${where}: tensor '${name}': dtype ${e.dtype} is not a float (F32, F16, BF16, F64 convert to ${format})`);
  const count = (e.end - e.begin) / ITEM_SIZE[e.dtype]!;
  const at = header.dataStart + e.begin;
  let words: Uint32Array;
  if (e.dtype === HALF_DTYPE[format]) {
    // The file's bytes may sit at any even offset: copied into whole words (the padding half stays zero).
    words = new Uint32Array(halfWords(count));
    if (LITTLE_ENDIAN) new Uint8Array(words.buffer).set(bytes.subarray(at, at + 2 * count));
    else {
      const view = new DataView(bytes.buffer, bytes.byteOffset + at, 2 * count);
      for (let i = 0; i < count; i++) words[i >>> 1] = words[i >>> 1]! | (view.getUint16(2 * i, true) << (16 * (i & 1)));
    }
  } else {
    words = packHalf(decode(bytes, at, e), format); // this tensor alone in f32, for the moment of its conversion
  }
  return { dtype: e.dtype as DecodedDtype, shape: e.shape, format, count, words };
}
