// Half-precision conversions shared by every exporter (safetensors F16/BF16, GGUF F16) and by the matmul's 16-bit B
// operand (a frozen base stored as bf16/f16 pairs in u32 words): round to nearest, ties to even; NaN stays NaN
// (quiet); overflow becomes ±Infinity. Exhaustively tested in safetensors.test.ts, gguf-export.test.ts and
// half.test.ts (which also compares with torch's .to(torch.bfloat16) / .half()).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE binary16 bits of f32(x). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // the f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal m·2^-24: m = (1.mant)·2^(e-14), rounded; e < -10 is below half the smallest subnormal.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1))) m++; // 1023 + 1 carries into the smallest normal: correct
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent (even to Infinity) is correct
  return sign | h;
}

let f16Table: Float32Array | undefined;
/** Float value of binary16 bits (exact). */
export function f16BitsToF32(h: number): number {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const s = i & 0x8000 ? -1 : 1, e = (i >>> 10) & 0x1f, m = i & 0x3ff;
      f16Table[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return f16Table[h & 0xffff]!;
}

/** bfloat16 bits of f32(x) (the top half of the f32, rounded). */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Packed pairs: a tensor of 16-bit values viewed as u32 words, element e in half (e & 1) of word e >> 1, low half
// first. This is the little-endian byte layout of a bf16/f16 safetensors tensor, so a file's bytes become the words
// as they are, and what the matmul's 16-bit B binding holds (matmul.ts: bFormat).

/** The 16-bit formats: bf16 (the top half of an f32) or IEEE binary16. */
export type HalfFormat = 'bf16' | 'f16';

/** The 16-bit bits of f32(x) in `format` (rounded to nearest even). */
export const halfBits = (x: number, format: HalfFormat): number => (format === 'bf16' ? f32ToBf16Bits(x) : f32ToF16Bits(x));

/** The value of 16-bit `bits` in `format` (exact). */
export const halfValue = (bits: number, format: HalfFormat): number => (format === 'bf16' ? bf16BitsToF32(bits) : f16BitsToF32(bits));

/** u32 words holding n 16-bit values: ceil(n / 2) (an odd count ends in a word whose high half is unused). */
export const halfWords = (n: number): number => Math.ceil(n / 2);

/** `values` rounded to `format` and packed in pairs (an odd length is padded with a zero half). */
export function packHalf(values: ArrayLike<number>, format: HalfFormat): Uint32Array {
  const out = new Uint32Array(halfWords(values.length));
  for (let e = 0; e < values.length; e++) out[e >>> 1] = out[e >>> 1]! | (halfBits(values[e]!, format) << (16 * (e & 1)));
  return out;
}

/** Element e of packed 16-bit `words`, as a number. */
export const halfAt = (words: ArrayLike<number>, e: number, format: HalfFormat): number => halfValue(words[e >>> 1]! >>> (16 * (e & 1)), format);

/** The first n elements of packed 16-bit `words` as f32 (exact: every bf16/f16 is an f32): the dequantized tensor. */
export function unpackHalf(words: ArrayLike<number>, n: number, format: HalfFormat): Float32Array {
  if (words.length < halfWords(n)) throw new Error(`unpackHalf: ${words.length} words hold at most ${2 * words.length} values, asked for ${n}`);
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) out[e] = halfAt(words, e, format);
  return out;
}
