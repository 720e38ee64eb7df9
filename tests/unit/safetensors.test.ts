// safetensors writer and reader (src/export/safetensors.ts): half-precision conversions against an independent
// nearest-value oracle (all 65,536 f16 patterns, random f32s); write → read round trips; the file layout checked by
// an independent parse (plain DataView + JSON.parse, raw bytes compared) and by numpy when python3 has it; every
// header check with its message; and 1,000 seeded hostile files that must each parse consistently or throw a
// plain Error naming the problem (never a RangeError from an allocation, never a non-Error throw).
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, MAX_HEADER_BYTES, readSafetensors, readSafetensorsHeader,
  writeSafetensors, type SafetensorsDtype, type TensorToWrite,
} from '../../src/export/safetensors.ts';
import { Rng } from '../../src/util/rng.ts';
import { hasNumpy, numpyRead } from './safetensors-numpy.ts';

// ------------------------------------------------------------------------------------------------ helpers

const enc = new TextEncoder();

/** A file from a header (object or raw text, unpadded) and a data area; `len` overrides the u64 length field. */
function assemble(header: unknown, data: Uint8Array, len?: number): Uint8Array {
  const json = header instanceof Uint8Array ? header : enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  const v = new DataView(out.buffer);
  const n = len ?? json.length;
  v.setUint32(0, n % 2 ** 32, true);
  v.setUint32(4, Math.floor(n / 2 ** 32) % 2 ** 32, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The independent check: header by plain JSON, data bytes compared with the tensors' own f32 bytes. */
function independentParse(file: Uint8Array) {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const n = Number(v.getBigUint64(0, true));
  const headerText = new TextDecoder().decode(file.subarray(8, 8 + n));
  return { n, headerText, header: JSON.parse(headerText) as Record<string, any>, data: file.subarray(8 + n) };
}

const f16Value = (h: number) => f16BitsToF32(h);

function randomTensors(rng: Rng, count: number, dtypes: SafetensorsDtype[]): TensorToWrite[] {
  return Array.from({ length: count }, (_, i) => {
    const rank = rng.int(4);
    const shape = Array.from({ length: rank }, () => (rng.int(8) === 0 ? 0 : 1 + rng.int(5)));
    const numel = shape.reduce((a, b) => a * b, 1);
    return { name: `t${i}.${rng.int(1000)}`, shape, data: rng.uniformArray(numel, -3, 3), dtype: dtypes[rng.int(dtypes.length)]! };
  });
}

// ------------------------------------------------------------------------------------------------ conversions

describe('half-precision conversions', () => {
  it('f16: every one of the 65,536 patterns survives f16 → f32 → f16 (NaN stays NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16Value(h);
      if (Number.isNaN(x)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        expect(Number.isNaN(f16Value(f32ToF16Bits(x)))).toBe(true);
      } else {
        expect(f32ToF16Bits(x)).toBe(h);
      }
    }
    expect(f16Value(0x3c00)).toBe(1);
    expect(f16Value(0x7bff)).toBe(65504);
    expect(f16Value(0x0001)).toBe(2 ** -24);
    expect(f16Value(0xc000)).toBe(-2);
  });

  it('f16: random f32s round to the nearest f16, ties to even, overflow to ±Infinity (oracle: sorted f16 values)', () => {
    const finite: number[] = []; // non-negative finite f16 values, ascending, with their bit patterns = index
    for (let h = 0; h < 0x7c00; h++) finite.push(f16Value(h));
    const nearest = (x: number): number => {
      const a = Math.abs(x);
      if (a >= 65520) return 0x7c00; // halfway between 65504 and 2^16 and above: Infinity (65520 ties to even = 2^16)
      let lo = 0, hi = finite.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (finite[mid]! <= a) lo = mid; else hi = mid; }
      const dl = a - finite[lo]!, dh = finite[hi]! - a;
      return dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
    };
    const rng = new Rng(11);
    for (let i = 0; i < 40000; i++) {
      const x = Math.fround((rng.next() - 0.5) * 2 ** (rng.int(50) - 30)); // 2^-31 .. 2^19: subnormals and overflow
      const want = nearest(x) | (x < 0 || Object.is(x, -0) ? 0x8000 : 0);
      expect(f32ToF16Bits(x), `x = ${x}`).toBe(want);
    }
    // Exact ties: halfway between 1 and 1 + 2^-10 goes to 1 (even), between 1 + 2^-10 and 1 + 2^-9 up.
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // half the smallest subnormal: ties to even (0)
    expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.0001))).toBe(1);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
  });

  it('bf16: random f32s round to the nearer of the two bf16 neighbours, ties to even; NaN stays NaN', () => {
    const rng = new Rng(12);
    const u = new Uint32Array(1), f = new Float32Array(u.buffer);
    const value = (bits: number) => (bits & 0x7fff) === 0x7f80 ? (bits & 0x8000 ? -1 : 1) * 2 ** 128 : bf16BitsToF32(bits);
    for (let i = 0; i < 40000; i++) {
      u[0] = rng.nextU32();
      const x = f[0]!;
      if (Number.isNaN(x)) { expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(x)))).toBe(true); continue; }
      const t = u[0]! >>> 16; // truncation (towards zero in magnitude) and the next pattern away from zero
      const dl = Math.abs(x - value(t)), dh = Math.abs(value(t + 1) - x);
      const want = dl < dh ? t : dh < dl ? t + 1 : (t & 1 ? t + 1 : t);
      expect(f32ToBf16Bits(x), `bits ${u[0]!.toString(16)}`).toBe(want);
    }
    expect(bf16BitsToF32(f32ToBf16Bits(1.5))).toBe(1.5);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
  });
});

// ------------------------------------------------------------------------------------------------ write / read

describe('writeSafetensors / readSafetensors', () => {
  const rng = new Rng(3);
  const tensors = randomTensors(rng, 7, ['F32', 'F16', 'BF16']);
  tensors.push({ name: 'scalar', shape: [], data: Float32Array.of(-0.25), dtype: 'F32' }, { name: 'empty', shape: [3, 0], data: new Float32Array(0) });
  const file = writeSafetensors(tensors, { metadata: { run: 'x', note: 'ünïcode ✓' } });

  it('lays the file out as the format says (independent parse: u64 length, space padding, metadata, contiguous raw bytes)', () => {
    const { n, headerText, header, data } = independentParse(file);
    expect(n % 8).toBe(0);
    expect(headerText.trimEnd()).toBe(JSON.stringify(header));
    expect(headerText.slice(JSON.stringify(header).length)).toMatch(/^ *$/);
    expect(header.__metadata__).toEqual({ format: 'pt', run: 'x', note: 'ünïcode ✓' });
    let at = 0;
    for (const t of tensors) {
      const e = header[t.name];
      const dtype = t.dtype ?? 'F32';
      expect(e).toEqual({ dtype, shape: t.shape, data_offsets: [at, at + t.data.length * (dtype === 'F32' ? 4 : 2)] });
      const raw = data.subarray(e.data_offsets[0], e.data_offsets[1]);
      if (dtype === 'F32') expect([...raw]).toEqual([...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]);
      else {
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        t.data.forEach((x, i) => expect(dv.getUint16(2 * i, true)).toBe(dtype === 'F16' ? f32ToF16Bits(x) : f32ToBf16Bits(x)));
      }
      at = e.data_offsets[1];
    }
    expect(at).toBe(data.length);
  });

  it('reads back every tensor (F32 exact, F16/BF16 the rounded values), shapes, metadata', () => {
    const r = readSafetensors(file, 'rt');
    expect([...r.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const got = r.tensors.get(t.name)!;
      expect(got.shape).toEqual(t.shape);
      const dtype = t.dtype ?? 'F32';
      expect(got.dtype).toBe(dtype);
      const want = Array.from(t.data, (x) => (dtype === 'F32' ? x : dtype === 'F16' ? f16BitsToF32(f32ToF16Bits(x)) : bf16BitsToF32(f32ToBf16Bits(x))));
      expect([...got.data]).toEqual(want);
    }
    expect(r.metadata).toEqual({ format: 'pt', run: 'x', note: 'ünïcode ✓' });
    // The reader does not depend on the input's alignment or on owning the whole buffer.
    const shifted = new Uint8Array(file.length + 3); shifted.set(file, 3);
    expect([...readSafetensors(shifted.subarray(3)).tensors.get(tensors[0]!.name)!.data]).toEqual([...r.tensors.get(tensors[0]!.name)!.data]);
  });

  it('a whole-file dtype option applies to tensors without their own', () => {
    const r = readSafetensors(writeSafetensors([{ name: 'a', shape: [2], data: Float32Array.of(1 / 3, 70000) }], { dtype: 'F16' }));
    expect(r.tensors.get('a')!.dtype).toBe('F16');
    expect([...r.tensors.get('a')!.data]).toEqual([f16BitsToF32(f32ToF16Bits(1 / 3)), Infinity]);
  });

  it('the writer refuses bad input', () => {
    const t = (over: Partial<TensorToWrite>): TensorToWrite => ({ name: 'a', shape: [2], data: new Float32Array(2), ...over });
    expect(() => writeSafetensors([t({ shape: [3] })])).toThrow("tensor 'a' has 2 values, shape [3] needs 3");
    expect(() => writeSafetensors([t({}), t({})])).toThrow("tensor 'a' appears twice");
    expect(() => writeSafetensors([t({ name: '__metadata__' })])).toThrow('invalid tensor name');
    expect(() => writeSafetensors([t({ shape: [-2] })])).toThrow('invalid shape');
    expect(() => writeSafetensors([t({ dtype: 'I8' as SafetensorsDtype })])).toThrow('cannot write dtype "I8"');
    expect(() => writeSafetensors([t({})], { metadata: { format: 'np' } })).toThrow('"format" must be "pt"');
  });

  it('numpy reads the same values (python3, independent of our reader)', () => {
    expect(hasNumpy(), 'python3 with numpy is required: python3 -m pip install numpy (.ci/run does)').toBe(true);
    const got = numpyRead(file);
    expect(got.metadata).toEqual({ format: 'pt', run: 'x', note: 'ünïcode ✓' });
    const mine = readSafetensors(file).tensors;
    expect(Object.keys(got.tensors).sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      expect(got.tensors[t.name]!.shape).toEqual(t.shape);
      expect(got.tensors[t.name]!.values).toEqual([...mine.get(t.name)!.data]);
    }
  });
});

// ------------------------------------------------------------------------------------------------ header checks

describe('readSafetensors: hostile headers', () => {
  const good = { __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F16', shape: [2, 1], data_offsets: [8, 12] } };
  const data = new Uint8Array(12);
  const withEntry = (name: string, entry: unknown, d = data) => assemble({ ...good, [name]: entry }, d);
  const cases: [string, Uint8Array, string | RegExp][] = [
    ['short file', new Uint8Array(5), 'file of 5 bytes is too short'],
    ['length 2^53', assemble(good, data, 2 ** 53), 'header length 9007199254740992 runs past the end'],
    ['length 2^64-1', (() => { const f = assemble(good, data); f.fill(0xff, 0, 8); return f; })(), /header length 1844674407370955\d+ runs past the end/],
    ['length past EOF', assemble(good, data, 200), 'header length 200 runs past the end of the file'],
    ['non-JSON', assemble('{"a": [1, 2', data), /header is not valid JSON/],
    ['JSON array', assemble('[1, 2, 3]', data), "must be a JSON object starting with '{'"],
    ['bad UTF-8', assemble(Uint8Array.of(0x7b, 0xff, 0x7d), data), 'header is not valid UTF-8'],
    ['metadata value not a string', assemble({ ...good, __metadata__: { format: 'pt', n: 3 } }, data), '__metadata__["n"] must be a string, got 3'],
    ['metadata an array', assemble({ ...good, __metadata__: ['x'] }, data), '__metadata__ must be an object of strings'],
    ['entry not an object', withEntry('b', [1]), "tensor 'b': entry must be an object"],
    ['unknown dtype', withEntry('b', { dtype: 'F17', shape: [2, 1], data_offsets: [8, 12] }), `tensor 'b': dtype "F17" is unsupported`],
    ['dtype not a string', withEntry('b', { dtype: 4, shape: [2, 1], data_offsets: [8, 12] }), "tensor 'b': dtype must be a string, got 4"],
    ['undecoded dtype', withEntry('b', { dtype: 'I16', shape: [2, 1], data_offsets: [8, 12] }), "tensor 'b': dtype I16 is unsupported (this reader decodes"],
    ['negative dim', withEntry('b', { dtype: 'F16', shape: [-2, -1], data_offsets: [8, 12] }), "tensor 'b': shape[0] must be a non-negative integer, got -2"],
    ['float dim', withEntry('b', { dtype: 'F16', shape: [2, 0.5], data_offsets: [8, 12] }), "tensor 'b': shape[1] must be a non-negative integer, got 0.5"],
    ['huge dim', withEntry('b', { dtype: 'F16', shape: [2 ** 60], data_offsets: [8, 12] }), "tensor 'b': shape[0] must be a non-negative integer, got 11529215046068"],
    ['string dim', withEntry('b', { dtype: 'F16', shape: ['2'], data_offsets: [8, 12] }), "tensor 'b': shape[0] must be a non-negative integer"],
    ['numel overflow', withEntry('b', { dtype: 'F16', shape: [2 ** 26, 2 ** 26, 2 ** 26], data_offsets: [8, 12] }), "tensor 'b': shape [67108864, 67108864, 67108864] overflows"],
    ['shape not an array', withEntry('b', { dtype: 'F16', shape: 2, data_offsets: [8, 12] }), "tensor 'b': shape must be an array"],
    ['offsets arity', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [8] }), "tensor 'b': data_offsets must be [begin, end]"],
    ['begin after end', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [12, 8] }), "tensor 'b': data_offsets [12, 8] has begin after end"],
    ['negative offset', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [-4, 0] }), "tensor 'b': data_offsets begin must be a non-negative integer, got -4"],
    ['past the data', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [12, 16] }), "tensor 'b': data_offsets [12, 16] runs past the data area (12 bytes)"],
    ['size mismatch', withEntry('b', { dtype: 'F16', shape: [3, 1], data_offsets: [8, 12] }), "tensor 'b': data_offsets [8, 12] span 4 bytes, but dtype F16 with shape [3, 1] needs 6"],
    ['overlap', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [6, 10] }, new Uint8Array(10)), "tensor 'b': data_offsets [6, 10] overlap tensor 'a' [0, 8]"],
    ['gap', withEntry('b', { dtype: 'F16', shape: [2, 1], data_offsets: [10, 14] }, new Uint8Array(14)), "tensor 'b': data_offsets [10, 14] leave a gap of 2 bytes after tensor 'a'"],
    ['trailing bytes', assemble(good, new Uint8Array(15)), '3 bytes after the last tensor are not covered'],
    ['truncated data', assemble(good, new Uint8Array(11)), "tensor 'b': data_offsets [8, 12] runs past the data area (11 bytes)"],
  ];
  for (const [what, file, msg] of cases) {
    it(what, () => {
      let err: unknown;
      try { readSafetensors(file, 'evil.safetensors'); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).constructor).toBe(Error);
      expect((err as Error).message.startsWith('evil.safetensors: ')).toBe(true);
      if (typeof msg === 'string') expect((err as Error).message).toContain(msg);
      else expect((err as Error).message).toMatch(msg);
    });
  }

  it('the header length limit is checked before decoding (a file claiming a 100 MB + 1 header)', () => {
    // A sparse-looking file: 8 + MAX + 1 bytes of zeros would be big; the length check needs the file to be that
    // long, so claim MAX + 1 in a file just long enough (zeros are never decoded).
    const f = new Uint8Array(8 + MAX_HEADER_BYTES + 1);
    new DataView(f.buffer).setUint32(0, MAX_HEADER_BYTES + 1, true);
    expect(() => readSafetensorsHeader(f, 'big')).toThrow(`big: header length ${MAX_HEADER_BYTES + 1} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  });

  it('valid-but-undecoded dtypes can be skipped and are listed', () => {
    const f = assemble({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ids: { dtype: 'I64', shape: [1], data_offsets: [8, 16] } }, new Uint8Array(16));
    const r = readSafetensors(f, 'x', { skipUnsupported: true });
    expect([...r.tensors.keys()]).toEqual(['a']);
    expect(r.skipped).toEqual([{ name: 'ids', dtype: 'I64' }]);
    expect(r.metadata).toEqual({});
  });

  it('a "__proto__" key stays data (no prototype pollution)', () => {
    const f = assemble('{"__metadata__": {"__proto__": "x"}, "__proto__": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', new Uint8Array(4));
    const r = readSafetensors(f);
    expect([...r.tensors.keys()]).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(r.metadata, '__proto__')?.value).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

// ------------------------------------------------------------------------------------------------ fuzz

type Category = 'valid' | 'huge-length' | 'length-past-eof' | 'short-file' | 'truncated-data' | 'overlap' | 'gap' | 'trailing'
  | 'bad-dtype' | 'bad-shape' | 'numel-overflow' | 'non-json' | 'json-non-object' | 'bad-offsets' | 'bad-metadata'
  | 'header-byte-flip' | 'byte-flip';
const CATEGORIES: Category[] = ['valid', 'huge-length', 'length-past-eof', 'short-file', 'truncated-data', 'overlap', 'gap', 'trailing',
  'bad-dtype', 'bad-shape', 'numel-overflow', 'non-json', 'json-non-object', 'bad-offsets', 'bad-metadata', 'header-byte-flip', 'byte-flip'];
/** Categories whose every case must be rejected, and the words the message must contain. */
const MUST_THROW: Partial<Record<Category, RegExp>> = {
  'huge-length': /runs past the end|exceeds the limit/, 'length-past-eof': /runs past the end/, 'short-file': /too short/,
  'truncated-data': /runs past the data area|not covered/, overlap: /overlap/, gap: /gap/, trailing: /not covered/,
  'bad-dtype': /dtype/, 'bad-shape': /shape/, 'numel-overflow': /overflows/, 'non-json': /not valid JSON|JSON object/,
  'json-non-object': /JSON object/, 'bad-offsets': /data_offsets/, 'bad-metadata': /__metadata__/,
};

interface Base { header: Record<string, any>; names: string[]; data: Uint8Array }

function baseFile(rng: Rng): Base {
  const tensors = randomTensors(rng, 1 + rng.int(5), ['F32', 'F16', 'BF16']).filter((t) => t.data.length > 0);
  if (tensors.length === 0) tensors.push({ name: 'one', shape: [1], data: Float32Array.of(1) });
  const file = writeSafetensors(tensors, { metadata: { k: String(rng.int(100)) } });
  const { header, data } = independentParse(file);
  return { header, names: tensors.map((t) => t.name), data: data.slice() };
}

function fuzzCase(rng: Rng, cat: Category): Uint8Array {
  const b = baseFile(rng);
  const pick = () => b.names[rng.int(b.names.length)]!;
  const entry = (n: string) => b.header[n] as { dtype: unknown; shape: unknown; data_offsets: unknown };
  const choose = <T>(xs: T[]): T => xs[rng.int(xs.length)]!;
  switch (cat) {
    case 'valid': return assemble(b.header, b.data);
    case 'huge-length': return assemble(b.header, b.data, choose([2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64 - 2 ** 11, 2 ** 32 + rng.int(100), MAX_HEADER_BYTES + 1, 2 ** 40]));
    case 'length-past-eof': {
      const f = assemble(b.header, b.data);
      return assemble(b.header, b.data, f.length - 8 + 1 + rng.int(1000));
    }
    case 'short-file': return assemble(b.header, b.data).subarray(0, rng.int(8));
    case 'truncated-data': return assemble(b.header, b.data.subarray(0, rng.int(b.data.length)));
    case 'overlap': {
      const spans = b.names.map((n) => entry(n).data_offsets as number[]).filter(([s, e]) => s! > 0 && e! > s!);
      if (spans.length === 0) { // a single tensor: add a second one inside it
        const [, e] = entry(b.names[0]!).data_offsets as number[];
        b.header.extra = { dtype: 'U8', shape: [1], data_offsets: [e! - 1, e!] };
      } else {
        const sp = choose(spans), k = 1 + rng.int(sp[0]!);
        sp[0] = sp[0]! - k; sp[1] = sp[1]! - k;
      }
      return assemble(b.header, b.data);
    }
    case 'gap': {
      const n = pick(), [s] = entry(n).data_offsets as number[], k = 1 + rng.int(16);
      for (const m of b.names) { const o = entry(m).data_offsets as number[]; if (o[0]! >= s!) { o[0]! += k; o[1]! += k; } }
      const d = new Uint8Array(b.data.length + k); d.set(b.data);
      return assemble(b.header, d);
    }
    case 'trailing': {
      const d = new Uint8Array(b.data.length + 1 + rng.int(64)); d.set(b.data);
      return assemble(b.header, d);
    }
    case 'bad-dtype': {
      entry(pick()).dtype = choose(['F17', 'f32', '', 'float32', 'I64X', 12, null, ['F32'], { d: 1 }, 'I64', 'U8', 'BOOL', 'F4', 'toString', 'constructor']);
      return assemble(b.header, b.data);
    }
    case 'bad-shape': {
      const e = entry(pick());
      const bad = choose<unknown>([-1, -(2 ** 31), 0.5, 1e300, 2 ** 53, 2 ** 60, '3', null, true, [2], NaN]);
      if (rng.int(5) === 0) e.shape = choose<unknown>([3, 'x', null, { 0: 1 }]);
      else { const s = [...(e.shape as number[])]; s.splice(rng.int(s.length + 1), 0, bad as number); e.shape = s; }
      return assemble(b.header, b.data);
    }
    case 'numel-overflow': {
      entry(pick()).shape = choose([[2 ** 30, 2 ** 30, 2 ** 30], [2 ** 52, 4], [2 ** 27, 2 ** 27], Array(64).fill(3), [2 ** 53 - 1, 2, 1]]);
      return assemble(b.header, b.data);
    }
    case 'non-json': {
      const t = JSON.stringify(b.header);
      return assemble(choose([t.slice(0, rng.int(t.length)), t + '}', '{' + t, t.replace(':', ''), '{nope}', "{'a': 1}", '{"a": NaN}', '{"a": 1,}']), b.data);
    }
    case 'json-non-object': return assemble(choose(['[]', '[{"a": 1}]', '1', '"str"', 'null', 'true', '  {"a"']), b.data);
    case 'bad-offsets': {
      const e = entry(pick());
      const o = e.data_offsets as number[];
      e.data_offsets = choose<unknown>([[o[1], o[0]! - 1], [o[0]], [o[0], o[1], 0], [-1, o[1]], [o[0], 2 ** 60], [o[0]! + 0.5, o[1]], ['0', o[1]], null, {}, [o[0], (o[1] ?? 0) + 2]]);
      return assemble(b.header, b.data);
    }
    case 'bad-metadata': {
      b.header.__metadata__ = choose<unknown>([['pt'], 'pt', 3, { format: 1 }, { format: 'pt', x: null }, { a: { b: 'c' } }, { a: ['x'] }]);
      return assemble(b.header, b.data);
    }
    case 'header-byte-flip': {
      const f = assemble(b.header, b.data);
      const n = Number(new DataView(f.buffer).getBigUint64(0, true));
      for (let i = 1 + rng.int(4); i > 0; i--) { const j = 8 + rng.int(n); f[j] = f[j]! ^ (1 << rng.int(8)); }
      return f;
    }
    case 'byte-flip': {
      const f = assemble(b.header, b.data);
      for (let i = 1 + rng.int(8); i > 0; i--) f[rng.int(f.length)] = rng.int(256);
      return f;
    }
  }
}

describe('readSafetensors: 1,000 seeded hostile files', () => {
  it('each parses into a consistent result or throws a plain Error with a clear message', () => {
    const rng = new Rng(2026);
    const counts: Record<string, { ok: number; rejected: number }> = {};
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) {
      const cat = CATEGORIES[i % CATEGORIES.length]!;
      const file = fuzzCase(rng, cat);
      const c = (counts[cat] ??= { ok: 0, rejected: 0 });
      let result: ReturnType<typeof readSafetensors> | undefined;
      try {
        result = readSafetensors(file, `fuzz#${i}`);
      } catch (e) {
        if (!(e instanceof Error) || e.constructor !== Error) throw new Error(`case ${i} (${cat}) threw a non-plain error: ${String(e)}`);
        expect(e.message, `case ${i} (${cat})`).toMatch(new RegExp(`^fuzz#${i}: .{10,}`));
        const want = MUST_THROW[cat];
        if (want) expect(e.message, `case ${i} (${cat})`).toMatch(want);
        c.rejected++;
        continue;
      }
      expect(MUST_THROW[cat], `case ${i} (${cat}) should have been rejected`).toBeUndefined();
      // Consistent: every tensor's values fill its shape, and the tensors' bytes tile the data area.
      let bytes = 0;
      for (const [, t] of result.tensors) {
        expect(t.data.length).toBe(t.shape.reduce((a, d) => a * d, 1));
        bytes += t.data.length * (t.dtype === 'F32' ? 4 : t.dtype === 'F64' ? 8 : 2);
      }
      const { n } = independentParse(file);
      expect(bytes).toBe(file.length - 8 - n);
      c.ok++;
    }
    const ms = performance.now() - t0;
    console.log(`safetensors fuzz: ${ms.toFixed(0)} ms;`, Object.entries(counts).map(([k, v]) => `${k} ${v.ok}/${v.rejected}`).join(', '), '(ok/rejected)');
    expect(counts.valid!.ok).toBe(counts.valid!.ok + counts.valid!.rejected);
    expect(Object.values(counts).reduce((a, v) => a + v.ok + v.rejected, 0)).toBe(1000);
    expect(counts['byte-flip']!.ok).toBeGreaterThan(0); // flips in the data area leave a valid file
    expect(counts['header-byte-flip']!.rejected).toBeGreaterThan(0);
    expect(ms).toBeLessThan(20_000);
  });
});
