// The 16-bit conversions and packing of src/util/half.ts: exact bit patterns of known values (rounding ties, f16
// overflow and subnormals, NaN), the packed-pair layout (low half first, odd lengths padded, the bytes of a
// safetensors tensor), and agreement with PyTorch (.venv-torch): f32 → bf16 / f16 bits on a few thousand values
// (random, ties, subnormals, overflow) and bf16 / f16 → f32 on all 65536 bit patterns.
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, writeSafetensors } from '../../src/export/safetensors.ts';
import {
  bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, halfAt, halfBits, halfValue, halfWords, packHalf, unpackHalf,
} from '../../src/util/half.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

const f32OfBits = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
const bitsOfF32 = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;

describe('f32 → 16-bit bits', () => {
  it('known values: 1, -2.5, the largest f16, f16 overflow, subnormals, NaN', () => {
    expect([f32ToBf16Bits(1), f32ToF16Bits(1)]).toEqual([0x3f80, 0x3c00]);
    expect([f32ToBf16Bits(-2.5), f32ToF16Bits(-2.5)]).toEqual([0xc020, 0xc100]);
    expect(f32ToF16Bits(65504)).toBe(0x7bff); // the largest f16
    expect(f32ToBf16Bits(65504)).toBe(0x4780); // 65536: bf16 has 8 bits of mantissa
    expect(f32ToF16Bits(65519)).toBe(0x7bff); // below the midpoint to 2^16: rounds down
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // the midpoint, tie to even: +Infinity
    expect(f32ToF16Bits(-65520)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // the smallest f16 subnormal
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 subnormal steps: tie to even
    expect(f32ToF16Bits(2 ** -14 - 2 ** -24)).toBe(0x03ff); // the largest subnormal
    expect(f32ToBf16Bits(f32OfBits(0x00010000))).toBe(0x0001); // the smallest bf16 subnormal (2^-133)
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    // NaN stays NaN (quiet), of either sign.
    for (const bits of [0x7fc00000, 0x7f800001, 0xff812345]) {
      expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(f32OfBits(bits)))), bits.toString(16)).toBe(true);
      expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(f32OfBits(bits)))), bits.toString(16)).toBe(true);
    }
    expect(f32ToBf16Bits(Number.NaN)).toBe(0x7fc0);
    expect(f32ToF16Bits(Number.NaN)).toBe(0x7e00);
  });

  it('rounds half to even', () => {
    // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 → 1 (even); 1 + 3·2^-8 → 1 + 2^-6 (even).
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(f32OfBits(0x3f808001))).toBe(0x3f81); // just above the tie
    // f16: 1 + 2^-11 → 1; 1 + 3·2^-11 → 1 + 2^-9.
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // A tie that carries into the exponent: the largest bf16 below 2 plus half a step → 2.
    expect(f32ToBf16Bits(f32OfBits(0x3fff8000))).toBe(0x4000);
  });

  it('16-bit → f32 is exact and halfBits / halfValue pick the format', () => {
    expect([bf16BitsToF32(0x3f80), bf16BitsToF32(0xc020), f16BitsToF32(0x7bff), f16BitsToF32(0x0001), f16BitsToF32(0x7c00)])
      .toEqual([1, -2.5, 65504, 2 ** -24, Infinity]);
    expect([halfBits(-2.5, 'bf16'), halfBits(-2.5, 'f16')]).toEqual([0xc020, 0xc100]);
    expect([halfValue(0xc020, 'bf16'), halfValue(0xc100, 'f16')]).toEqual([-2.5, -2.5]);
  });
});

describe('packed pairs', () => {
  it('element e is half (e & 1) of word e >> 1, low half first; an odd length is padded with a zero half', () => {
    const w = packHalf([1, -2.5, 0.5], 'bf16');
    expect(w).toHaveLength(2);
    expect([...w]).toEqual([(0xc020 << 16 | 0x3f80) >>> 0, 0x3f00]);
    expect([...packHalf([1, -2.5, 0.5], 'f16')]).toEqual([(0xc100 << 16 | 0x3c00) >>> 0, 0x3800]);
    expect([halfWords(0), halfWords(1), halfWords(2), halfWords(7)]).toEqual([0, 1, 1, 4]);
    expect(halfAt(w, 1, 'bf16')).toBe(-2.5);
    expect([...unpackHalf(w, 3, 'bf16')]).toEqual([1, -2.5, 0.5]);
    expect(() => unpackHalf(w, 5, 'bf16')).toThrow(/2 words hold at most 4 values, asked for 5/);
  });

  it('round-trips the rounded values, and are the bytes of a safetensors BF16 / F16 tensor', () => {
    const x = new Rng(3).uniformArray(101).map((v) => v * 300);
    for (const [format, dtype] of [['bf16', 'BF16'], ['f16', 'F16']] as const) {
      const words = packHalf(x, format);
      expect([...unpackHalf(words, x.length, format)]).toEqual(Array.from(x, (v) => halfValue(halfBits(v, format), format)));
      const file = writeSafetensors([{ name: 'w', shape: [101], data: x, dtype }]);
      const { dataStart } = readSafetensorsHeader(file);
      const bytes = new Uint8Array(words.buffer, 0, 2 * x.length);
      expect([...file.subarray(dataStart, dataStart + 202)]).toEqual([...bytes]);
    }
  });
});

describe('agreement with PyTorch', () => {
  it('f32 → bf16 (.to(torch.bfloat16)) and → f16 (.half()) bits on 6000 values; 16-bit → f32 on every pattern', () => {
    const rng = new Rng(21);
    const bits: number[] = [];
    for (let i = 0; i < 2000; i++) bits.push(bitsOfF32((rng.next() - 0.5) * 8)); // typical weights
    for (let i = 0; i < 2000; i++) bits.push(rng.nextU32()); // any bits: every exponent, NaN, Inf
    for (let i = 0; i < 1000; i++) { // exact ties of both formats, and their neighbours
      const top = Math.floor(rng.next() * 0x7f00) << 16;
      bits.push((top | 0x8000) >>> 0, (top | 0x8001) >>> 0);
    }
    for (let i = 0; i < 1000; i++) { // f16's edges: subnormals, the overflow boundary
      const x = i < 500 ? (rng.next() - 0.5) * 2 ** -13 : 65000 + rng.next() * 1000;
      bits.push(bitsOfF32(x));
    }
    const py = torchPython();
    const got = runPythonJson<{ bf16: number[]; f16: number[]; bf16Values: number[]; f16Values: number[] }>(py, `
import json, sys, numpy as np, torch
bits = np.array(json.load(sys.stdin), dtype=np.uint32)
x = torch.from_numpy(bits.view(np.float32))
pattern = torch.arange(65536, dtype=torch.int32).to(torch.int16)
values = lambda t: [None if v != v else ('inf' if v == float('inf') else '-inf' if v == -float('inf') else v) for v in t.float().tolist()]
print(json.dumps({
  'bf16': (x.to(torch.bfloat16).view(torch.int16).int() & 0xffff).tolist(),
  'f16': (x.half().view(torch.int16).int() & 0xffff).tolist(),
  'bf16Values': values(pattern.view(torch.bfloat16)),
  'f16Values': values(pattern.view(torch.float16)),
}))`, bits);
    const isNanBf16 = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    const isNanF16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    let nans = 0;
    bits.forEach((b, i) => {
      const x = f32OfBits(b), ours = [f32ToBf16Bits(x), f32ToF16Bits(x)];
      // NaN payloads differ between libraries (torch's bf16 NaN is 0xffff here); NaN must stay NaN.
      if (Number.isNaN(x)) {
        nans++;
        expect([isNanBf16(ours[0]!), isNanF16(ours[1]!)], b.toString(16)).toEqual([isNanBf16(got.bf16[i]!), isNanF16(got.f16[i]!)]);
        return;
      }
      expect(ours, `f32 bits ${b.toString(16)}`).toEqual([got.bf16[i], got.f16[i]]);
    });
    expect(nans).toBeGreaterThan(0);
    const asNumber = (v: number | string | null) => (v === null ? Number.NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v);
    const differ: string[] = [];
    for (let h = 0; h < 65536; h++) {
      if (!Object.is(bf16BitsToF32(h), asNumber(got.bf16Values[h]!))) differ.push(`bf16 ${h.toString(16)}`);
      if (!Object.is(f16BitsToF32(h), asNumber(got.f16Values[h]!))) differ.push(`f16 ${h.toString(16)}`);
    }
    expect(differ.slice(0, 10)).toEqual([]);
  }, 120_000); // starting Python with torch takes seconds
});
