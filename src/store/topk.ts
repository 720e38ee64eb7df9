// Compact per-token top-k distributions for the `topk` store: at k = 32 and any vocabulary up to 262,144 a
// token costs at most 100 bytes (8 + k + 60). One row (one token) is self-delimiting, so a turn's rows are
// simply concatenated (packTopKRows / unpackTopKRows).
//
// Row layout (little-endian; bit streams LSB first):
//   u8  n          entries in the row (1..255)
//   u8  l          Elias–Fano low-bit width (0..31)
//   f32 max        the row's largest logprob
//   f16 step       quantisation step, rounded UP to an f16 so that 255·step ≥ max − min
//   u8  code[n]    round((max − logprob) / step), in ascending-id order
//   bits           Elias–Fano of the ascending ids: high parts in unary (gap zeros, then a one), then n·l low bits
// The ids cost n + n·l + (maxId >> l) bits with the best l: ≤ 479 bits (60 bytes) for n = 32, maxId < 2^18.
//
// Decoding gives the ids exactly and logprob' = max − code·step, so |logprob' − logprob| ≤ step/2
// ≤ (max − min)/510 · (1 + 2^-10) (+ f32 rounding); the top entry (code 0) is exact to f32. Order: entries come
// back sorted by decoded logprob descending; entries whose codes tie (within one step) come back by ascending id,
// which may differ from their original order.

export interface TopKRow {
  /** Token ids, by decoded logprob descending (ties by ascending id). */
  ids: Uint32Array;
  logprobs: Float32Array;
}

const HEADER = 8;

/** Encodes the top `k` entries (by logprob) of one token's candidates. ids must be distinct; logprobs finite. */
export function encodeTopK(ids: Uint32Array, logprobs: Float32Array, k: number): Uint8Array {
  if (ids.length !== logprobs.length) throw new Error(`encodeTopK: ${ids.length} ids but ${logprobs.length} logprobs`);
  if (ids.length === 0) throw new Error('encodeTopK: empty row (need at least one id)');
  if (!Number.isInteger(k) || k < 1 || k > 255) throw new Error(`encodeTopK: k must be an integer in 1..255, got ${k}`);
  for (let i = 0; i < logprobs.length; i++) {
    if (!Number.isFinite(logprobs[i]!)) throw new Error(`encodeTopK: logprobs[${i}] is ${logprobs[i]} (must be finite)`);
  }
  // The top n by logprob (ties by id), then by ascending id for Elias–Fano.
  const order = Array.from(ids.keys()).sort((a, b) => logprobs[b]! - logprobs[a]! || ids[a]! - ids[b]!);
  const n = Math.min(k, ids.length);
  const sel = order.slice(0, n).sort((a, b) => ids[a]! - ids[b]!);
  for (let i = 1; i < n; i++) {
    if (ids[sel[i]!] === ids[sel[i - 1]!]) throw new Error(`encodeTopK: id ${ids[sel[i]!]} appears twice`);
  }
  const maxLp = Math.fround(logprobs[order[0]!]!);
  const minLp = logprobs[order[n - 1]!]!;
  const range = maxLp - minLp;
  const stepBits = range > 0 ? f16RoundUp(range / 255) : 0;
  const step = f16ToNumber(stepBits);

  const maxId = ids[sel[n - 1]!]!;
  let l = 0;
  let best = Infinity;
  for (let cand = 0; cand < 32; cand++) {
    const bits = n * cand + n + Math.floor(maxId / 2 ** cand);
    if (bits < best) { best = bits; l = cand; }
  }
  const out = new Uint8Array(HEADER + n + Math.ceil(best / 8));
  const view = new DataView(out.buffer);
  out[0] = n;
  out[1] = l;
  view.setFloat32(2, maxLp, true);
  view.setUint16(6, stepBits, true);
  for (let i = 0; i < n; i++) {
    const d = maxLp - logprobs[sel[i]!]!;
    out[HEADER + i] = step > 0 ? Math.min(255, Math.max(0, Math.round(d / step))) : 0;
  }
  const w = new BitWriter(out, HEADER + n);
  let prevHigh = 0;
  for (let i = 0; i < n; i++) {
    const high = Math.floor(ids[sel[i]!]! / 2 ** l);
    for (let z = prevHigh; z < high; z++) w.bit(0);
    w.bit(1);
    prevHigh = high;
  }
  for (let i = 0; i < n; i++) w.bits(ids[sel[i]!]! % 2 ** l, l);
  return out;
}

/** Decodes one row starting at `offset`; `bytesRead` is its length (rows are self-delimiting). */
export function decodeTopK(bytes: Uint8Array, offset = 0): TopKRow & { bytesRead: number } {
  if (bytes.length - offset < HEADER) throw new Error(`decodeTopK: truncated row at byte ${offset} (no header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes[offset]!;
  const l = bytes[offset + 1]!;
  if (n === 0 || l > 31) throw new Error(`decodeTopK: corrupt row header at byte ${offset} (n=${n}, l=${l})`);
  const maxLp = view.getFloat32(offset + 2, true);
  const step = f16ToNumber(view.getUint16(offset + 6, true));
  const codesAt = offset + HEADER;
  if (bytes.length < codesAt + n) throw new Error(`decodeTopK: truncated row at byte ${offset} (codes)`);
  const r = new BitReader(bytes, codesAt + n);
  const idsAsc = new Array<number>(n);
  let high = 0;
  for (let i = 0; i < n; i++) {
    while (r.bit() === 0) high++;
    idsAsc[i] = high * 2 ** l;
  }
  for (let i = 0; i < n; i++) idsAsc[i]! += r.bits(l);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => bytes[codesAt + a]! - bytes[codesAt + b]! || a - b);
  const ids = new Uint32Array(n);
  const logprobs = new Float32Array(n);
  order.forEach((j, i) => {
    ids[i] = idsAsc[j]!;
    logprobs[i] = maxLp - bytes[codesAt + j]! * step;
  });
  return { ids, logprobs, bytesRead: r.end() - offset };
}

/** Concatenates encoded rows (one per token) into one buffer for a `topk` entry. */
export function packTopKRows(rows: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(rows.reduce((s, r) => s + r.length, 0));
  let at = 0;
  for (const r of rows) { out.set(r, at); at += r.length; }
  return out;
}

/** Splits and decodes a buffer of concatenated rows. */
export function unpackTopKRows(bytes: Uint8Array): TopKRow[] {
  const rows: TopKRow[] = [];
  for (let at = 0; at < bytes.length;) {
    const { ids, logprobs, bytesRead } = decodeTopK(bytes, at);
    rows.push({ ids, logprobs });
    at += bytesRead;
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------- f16, bits

/** The smallest f16 (as its bits) that is ≥ x, for 0 < x ≤ 65504. */
export function f16RoundUp(x: number): number {
  if (!(x > 0) || x > 65504) throw new Error(`topk: logprob range ${x * 255} is out of bounds (step must be in (0, 65504])`);
  if (x < 2 ** -14) return Math.ceil(x / 2 ** -24); // subnormal; 1024 rolls over into the smallest normal
  let e = Math.floor(Math.log2(x));
  if (2 ** e > x) e--;
  if (2 ** (e + 1) <= x) e++;
  let mant = Math.ceil((x / 2 ** e - 1) * 1024);
  if (mant === 1024) { mant = 0; e++; }
  if (e > 15) throw new Error(`topk: step ${x} overflows f16`);
  return ((e + 15) << 10) | mant;
}

export function f16ToNumber(bits: number): number {
  const exp = (bits >> 10) & 31;
  const mant = bits & 1023;
  if (exp === 31) return mant ? NaN : Infinity;
  return exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15);
}

class BitWriter {
  private bit0 = 0;
  constructor(private readonly out: Uint8Array, private readonly start: number) {}
  bit(b: number): void {
    if (b) this.out[this.start + (this.bit0 >> 3)]! |= 1 << (this.bit0 & 7);
    this.bit0++;
  }
  bits(v: number, width: number): void {
    for (let i = 0; i < width; i++) this.bit(Math.floor(v / 2 ** i) & 1);
  }
}

class BitReader {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly start: number) {}
  bit(): number {
    const byte = this.start + (this.pos >> 3);
    if (byte >= this.bytes.length) throw new Error(`decodeTopK: truncated row (bit stream ends at byte ${byte})`);
    const b = (this.bytes[byte]! >> (this.pos & 7)) & 1;
    this.pos++;
    return b;
  }
  bits(width: number): number {
    let v = 0;
    for (let i = 0; i < width; i++) v += this.bit() * 2 ** i;
    return v;
  }
  /** First byte after the bits read so far. */
  end(): number {
    return this.start + Math.ceil(this.pos / 8);
  }
}
