// The GGUF container (llama.cpp's model file, version 3), written and read by hand: a header (magic "GGUF",
// version, tensor count, KV count), typed key/value metadata, tensor infos (name, dims innermost first, ggml type,
// offset into the data section), then the tensor data, each tensor at a multiple of `general.alignment` from the
// start of the data section, which itself starts at a multiple of the alignment. Everything little-endian; strings
// are a u64 byte length + UTF-8 bytes; arrays a u32 item type + u64 count + items.
// Tensor types: F32 and F16 (ggml types 0 and 1), and the block-quantized types of quant/ (Q4_0, Q5_0, Q8_0, Q4_K,
// Q6_K: values quantized on write, dequantized by ggufTensorData). The f32 → f16 conversion rounds to nearest even
// and keeps infinities, NaNs and subnormals. The reader checks every length against the bytes left
// before it allocates, so a corrupt or hostile file gives an error naming what and where, never a huge allocation.
// The llama-specific part (names, metadata, RoPE layout) is gguf.ts.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME: tensor names must be shorter. */
export const GGUF_MAX_NAME = 64;
/** llama.cpp's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

/** Metadata value types, by their code in the file. */
export const GGUF_VALUE_TYPES = {
  uint8: 0, int8: 1, uint16: 2, int16: 3, uint32: 4, int32: 5, float32: 6, bool: 7, string: 8, array: 9,
  uint64: 10, int64: 11, float64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, 'array'>;
type ScalarValue = number | bigint | boolean | string;

export type GgufValue =
  | { type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: ScalarValue[] };

export interface GgufKv {
  key: string;
  value: GgufValue;
}

/** Tensor element types this module writes and reads (ggml_type codes). */
export const GGML_TYPES = {
  F32: 0, F16: 1,
  ...Object.fromEntries(Object.entries(BLOCK_CODECS).map(([k, c]) => [k, c.code])) as Record<BlockType, number>,
} as const;
export type GgmlType = 'F32' | 'F16' | BlockType;

/** Bytes of a tensor of `dims` (innermost first) stored as `type`; a block type needs whole blocks per row. */
export function ggmlTensorBytes(name: string, type: GgmlType, dims: readonly number[]): number {
  const count = dims.reduce((a, b) => a * b, 1);
  if (type === 'F32') return 4 * count;
  if (type === 'F16') return 2 * count;
  const { blockSize, blockBytes } = BLOCK_CODECS[type];
  if (dims[0]! % blockSize !== 0) throw new Error(`gguf: tensor '${name}' rows of ${dims[0]} values are not a whole number of ${type} blocks (${blockSize})`);
  return (count / blockSize) * blockBytes;
}

export interface GgufTensor {
  name: string;
  /** ggml order: innermost (contiguous) dimension first, i.e. a row-major [rows, cols] array is [cols, rows]. */
  dims: number[];
  /** How it is stored; the values are converted on write. */
  type: GgmlType;
  /** Row-major values (dims reversed), f32. */
  data: Float32Array;
}

export interface GgufFile {
  kvs: GgufKv[];
  tensors: GgufTensor[];
  /** Written as `general.alignment` (u32) when not 32; default 32. */
  alignment?: number;
}

// f16: the conversions shared with safetensors (src/util/half.ts), under this module's names.
export { f32ToF16Bits as f32ToF16, f16BitsToF32 as f16ToF32 } from '../util/half.ts';
import { f32ToF16Bits as f32ToF16, f16BitsToF32 as f16ToF32 } from '../util/half.ts';
import { BLOCK_CODECS, isBlockType, type BlockType } from './quant/index.ts';

// ---------------------------------------------------------------------------------------------------------------
// Writing

const utf8 = new TextEncoder();
const pad = (n: number, a: number): number => Math.ceil(n / a) * a;

function scalarBytes(t: GgufScalarType, v: ScalarValue): number {
  switch (t) {
    case 'uint8': case 'int8': case 'bool': return 1;
    case 'uint16': case 'int16': return 2;
    case 'uint32': case 'int32': case 'float32': return 4;
    case 'uint64': case 'int64': case 'float64': return 8;
    case 'string': return 8 + utf8.encode(v as string).length;
  }
}

function checkScalar(where: string, t: GgufScalarType, v: ScalarValue): void {
  const int = (lo: number, hi: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new Error(`${where}: ${t} value ${String(v)} is out of range [${lo}, ${hi}]`);
  };
  switch (t) {
    case 'uint8': return int(0, 0xff);
    case 'int8': return int(-0x80, 0x7f);
    case 'uint16': return int(0, 0xffff);
    case 'int16': return int(-0x8000, 0x7fff);
    case 'uint32': return int(0, 0xffffffff);
    case 'int32': return int(-0x80000000, 0x7fffffff);
    case 'float32': case 'float64':
      if (typeof v !== 'number') throw new Error(`${where}: ${t} value must be a number, got ${typeof v}`);
      return;
    case 'uint64': case 'int64':
      if (typeof v !== 'bigint') throw new Error(`${where}: ${t} value must be a bigint, got ${typeof v}`);
      if (t === 'uint64' ? v < 0n || v >= 2n ** 64n : v < -(2n ** 63n) || v >= 2n ** 63n) throw new Error(`${where}: ${t} value ${v} is out of range`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`${where}: bool value must be a boolean, got ${typeof v}`);
      return;
    case 'string':
      if (typeof v !== 'string') throw new Error(`${where}: string value must be a string, got ${typeof v}`);
  }
}

class Writer {
  readonly view: DataView;
  pos = 0;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(v: number): void { this.view.setUint32(this.pos, v, true); this.pos += 4; }
  u64(v: number | bigint): void { this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; }
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.bytes.set(b, this.pos);
    this.pos += b.length;
  }
  scalar(t: GgufScalarType, v: ScalarValue): void {
    const d = this.view, p = this.pos;
    switch (t) {
      case 'uint8': d.setUint8(p, v as number); break;
      case 'int8': d.setInt8(p, v as number); break;
      case 'bool': d.setUint8(p, v ? 1 : 0); break;
      case 'uint16': d.setUint16(p, v as number, true); break;
      case 'int16': d.setInt16(p, v as number, true); break;
      case 'uint32': d.setUint32(p, v as number, true); break;
      case 'int32': d.setInt32(p, v as number, true); break;
      case 'float32': d.setFloat32(p, v as number, true); break;
      case 'uint64': d.setBigUint64(p, v as bigint, true); break;
      case 'int64': d.setBigInt64(p, v as bigint, true); break;
      case 'float64': d.setFloat64(p, v as number, true); break;
      case 'string': this.str(v as string); return;
    }
    this.pos += scalarBytes(t, v);
  }
}

/** Where each tensor's data lands (offset from the start of the data section) and the file's layout. */
export function ggufLayout(f: GgufFile): { headerBytes: number; dataStart: number; offsets: number[]; totalBytes: number } {
  const alignment = f.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`gguf: alignment ${alignment} must be a power of two`);
  }
  let n = 4 + 4 + 8 + 8;
  for (const { key, value } of f.kvs) {
    n += 8 + utf8.encode(key).length + 4;
    if (value.type === 'array') {
      n += 4 + 8;
      for (const v of value.value) n += scalarBytes(value.itemType, v);
    } else n += scalarBytes(value.type, value.value);
  }
  const offsets: number[] = [];
  let data = 0;
  for (const t of f.tensors) {
    n += 8 + utf8.encode(t.name).length + 4 + 8 * t.dims.length + 4 + 8;
    offsets.push(data);
    data += pad(ggmlTensorBytes(t.name, t.type, t.dims), alignment);
  }
  const dataStart = pad(n, alignment);
  return { headerBytes: n, dataStart, offsets, totalBytes: dataStart + data };
}

/** Encodes a GGUF v3 file; throws naming the key or tensor of anything that cannot be written. */
export function encodeGguf(f: GgufFile): Uint8Array {
  const alignment = f.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const keys = new Set<string>();
  const kvs = [...f.kvs];
  for (const { key, value } of kvs) {
    if (key.length === 0) throw new Error('gguf: empty metadata key');
    if (keys.has(key)) throw new Error(`gguf: duplicate metadata key '${key}'`);
    keys.add(key);
    if (value.type === 'array') {
      if (!(value.itemType in GGUF_VALUE_TYPES)) throw new Error(`gguf: '${key}' has unsupported item type '${String(value.itemType)}'`);
      value.value.forEach((v, i) => checkScalar(`gguf: '${key}'[${i}]`, value.itemType, v));
    } else checkScalar(`gguf: '${key}'`, value.type, value.value);
  }
  const given = kvs.find((kv) => kv.key === 'general.alignment');
  if (given && !(given.value.type === 'uint32' && given.value.value === alignment)) {
    throw new Error(`gguf: 'general.alignment' must be the uint32 ${alignment} (the file's alignment), got ${given.value.type} ${String(given.value.value)}`);
  }
  if (!given && alignment !== GGUF_DEFAULT_ALIGNMENT) kvs.push({ key: 'general.alignment', value: { type: 'uint32', value: alignment } });
  const names = new Set<string>();
  for (const t of f.tensors) {
    if (utf8.encode(t.name).length >= GGUF_MAX_NAME) throw new Error(`gguf: tensor name '${t.name}' is ${GGUF_MAX_NAME} bytes or longer`);
    if (names.has(t.name)) throw new Error(`gguf: duplicate tensor name '${t.name}'`);
    names.add(t.name);
    if (!(t.type in GGML_TYPES)) throw new Error(`gguf: tensor '${t.name}' has unsupported type '${String(t.type)}' (${Object.keys(GGML_TYPES).join(', ')})`);
    if (t.dims.length < 1 || t.dims.length > GGUF_MAX_DIMS || t.dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`gguf: tensor '${t.name}' has invalid dims [${t.dims}] (1..${GGUF_MAX_DIMS} positive integers)`);
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`gguf: tensor '${t.name}' dims [${t.dims}] need ${count} values, got ${t.data.length}`);
    ggmlTensorBytes(t.name, t.type, t.dims);
  }
  const file = { ...f, kvs };
  const { dataStart, offsets, totalBytes } = ggufLayout(file);
  const w = new Writer(new Uint8Array(totalBytes));
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(f.tensors.length);
  w.u64(kvs.length);
  for (const { key, value } of kvs) {
    w.str(key);
    w.u32(GGUF_VALUE_TYPES[value.type]);
    if (value.type === 'array') {
      w.u32(GGUF_VALUE_TYPES[value.itemType]);
      w.u64(value.value.length);
      for (const v of value.value) w.scalar(value.itemType, v);
    } else w.scalar(value.type, value.value);
  }
  f.tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPES[t.type]);
    w.u64(offsets[i]!);
  });
  // Padding bytes are already zero (fresh buffer); tensors land at dataStart + offset.
  f.tensors.forEach((t, i) => {
    const at = dataStart + offsets[i]!;
    const d = w.view;
    if (t.type === 'F32') for (let j = 0; j < t.data.length; j++) d.setFloat32(at + 4 * j, t.data[j]!, true);
    else if (t.type === 'F16') for (let j = 0; j < t.data.length; j++) d.setUint16(at + 2 * j, f32ToF16(t.data[j]!), true);
    else w.bytes.set(BLOCK_CODECS[t.type].quantize(t.data), at);
  });
  return w.bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: GgmlType;
  /** From the start of the data section. */
  offset: number;
}

export interface ParsedGguf {
  version: number;
  alignment: number;
  kvs: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the data section. */
  dataStart: number;
  bytes: Uint8Array;
}

const TYPE_NAMES = Object.fromEntries(Object.entries(GGUF_VALUE_TYPES).map(([k, v]) => [v, k])) as Record<number, keyof typeof GGUF_VALUE_TYPES>;
const GGML_NAMES = Object.fromEntries(Object.entries(GGML_TYPES).map(([k, v]) => [v, k])) as Record<number, GgmlType>;
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

class Reader {
  readonly view: DataView;
  pos = 0;
  what = 'header';
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(why: string): never {
    throw new Error(`gguf: ${this.what} at byte ${this.pos}: ${why}`);
  }
  need(n: number): void {
    if (n > this.bytes.length - this.pos) this.fail(`needs ${n} bytes, only ${this.bytes.length - this.pos} left`);
  }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`u64 ${v} is too large`);
    this.pos += 8;
    return Number(v);
  }
  str(): string {
    const n = this.u64();
    this.need(n);
    let s: string;
    try {
      s = utf8Strict.decode(this.bytes.subarray(this.pos, this.pos + n));
    } catch {
      this.fail('string is not valid UTF-8');
    }
    this.pos += n;
    return s;
  }
  scalar(t: GgufScalarType): ScalarValue {
    if (t === 'string') return this.str();
    const n = scalarBytes(t, 0);
    this.need(n);
    const d = this.view, p = this.pos;
    this.pos += n;
    switch (t) {
      case 'uint8': return d.getUint8(p);
      case 'int8': return d.getInt8(p);
      case 'bool': {
        const b = d.getUint8(p);
        if (b > 1) this.fail(`bool byte is ${b}`);
        return b === 1;
      }
      case 'uint16': return d.getUint16(p, true);
      case 'int16': return d.getInt16(p, true);
      case 'uint32': return d.getUint32(p, true);
      case 'int32': return d.getInt32(p, true);
      case 'float32': return d.getFloat32(p, true);
      case 'uint64': return d.getBigUint64(p, true);
      case 'int64': return d.getBigInt64(p, true);
      case 'float64': return d.getFloat64(p, true);
    }
  }
  type(): keyof typeof GGUF_VALUE_TYPES {
    const code = this.u32();
    const t = TYPE_NAMES[code];
    if (t === undefined) this.fail(`unknown value type ${code}`);
    return t;
  }
}

/** Parses a GGUF v2/v3 file (header, metadata, tensor infos; data left in place); throws naming what and where. */
export function decodeGguf(bytes: Uint8Array): ParsedGguf {
  const r: Reader = new Reader(bytes);
  if (bytes.length < 4 || r.view.getUint32(0, true) !== GGUF_MAGIC) r.fail('not a GGUF file (no "GGUF" magic)');
  r.pos = 4;
  const version = r.u32();
  if (version !== 2 && version !== 3) r.fail(`unsupported version ${version} (2 or 3)`);
  const nTensors = r.u64();
  const nKv = r.u64();
  // Each KV takes ≥ 13 bytes and each tensor info ≥ 29: counts beyond that are corrupt (and are never allocated).
  if (nKv * 13 > bytes.length || nTensors * 29 > bytes.length) r.fail(`counts (${nKv} KVs, ${nTensors} tensors) exceed the file size`);
  const kvs = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    r.what = `metadata entry ${i}`;
    const key = r.str();
    r.what = `metadata '${key}'`;
    if (kvs.has(key)) r.fail('duplicate key');
    const t = r.type();
    if (t === 'array') {
      const itemType = r.type();
      if (itemType === 'array') r.fail('nested arrays are not supported');
      const n = r.u64();
      r.need(n * (itemType === 'string' ? 8 : scalarBytes(itemType, 0)));
      const items: ScalarValue[] = [];
      for (let j = 0; j < n; j++) items.push(r.scalar(itemType));
      kvs.set(key, { type: 'array', itemType, value: items });
    } else {
      kvs.set(key, { type: t, value: r.scalar(t) } as GgufValue);
    }
  }
  const al = kvs.get('general.alignment');
  if (al !== undefined && al.type !== 'uint32') r.fail(`'general.alignment' must be uint32, is ${al.type}`);
  const alignment = al?.type === 'uint32' ? al.value : GGUF_DEFAULT_ALIGNMENT;
  if (alignment < 1 || (alignment & (alignment - 1)) !== 0) r.fail(`alignment ${alignment} is not a power of two`);
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    r.what = `tensor info ${i}`;
    const name = r.str();
    r.what = `tensor info '${name}'`;
    if (names.has(name)) r.fail('duplicate tensor name');
    names.add(name);
    const nDims = r.u32();
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) r.fail(`n_dims ${nDims} is not in 1..${GGUF_MAX_DIMS}`);
    const dims: number[] = [];
    for (let j = 0; j < nDims; j++) dims.push(r.u64());
    const code = r.u32();
    const type = GGML_NAMES[code];
    if (type === undefined) r.fail(`ggml type ${code} is not supported by this reader (${Object.entries(GGML_TYPES).map(([k, v]) => `${k} = ${v}`).join(', ')})`);
    const offset = r.u64();
    if (offset % alignment !== 0) r.fail(`offset ${offset} is not a multiple of the alignment ${alignment}`);
    tensors.push({ name, dims, type, offset });
  }
  r.what = 'tensor data';
  const dataStart = pad(r.pos, alignment);
  for (const t of tensors) {
    let n: number;
    try {
      n = ggmlTensorBytes(t.name, t.type, t.dims);
    } catch (e) {
      throw new Error(`${(e as Error).message} (in the file)`);
    }
    if (!Number.isSafeInteger(n) || dataStart + t.offset + n > bytes.length) {
      throw new Error(`gguf: tensor '${t.name}' [${t.dims}] ${t.type} at offset ${t.offset} runs past the end of the file (${bytes.length} bytes)`);
    }
  }
  return { version, alignment, kvs, tensors, dataStart, bytes };
}

/** A tensor's values as f32 (F16 widened, block types dequantized by our CPU reference), row-major. */
export function ggufTensorData(g: ParsedGguf, name: string): Float32Array {
  const t = g.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`gguf: no tensor '${name}'`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const at = g.bytes.byteOffset + g.dataStart + t.offset, size = ggmlTensorBytes(t.name, t.type, t.dims);
  if (isBlockType(t.type)) return BLOCK_CODECS[t.type].dequantize(new Uint8Array(g.bytes.buffer, at, size), n);
  const view = new DataView(g.bytes.buffer, at, size);
  const out = new Float32Array(n);
  if (t.type === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  return out;
}
