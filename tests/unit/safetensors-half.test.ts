// readHalfTensor: one tensor of a safetensors file as packed 16-bit words (the matmul's bFormat), a copy of its bytes
// when the file stores it in that format, converted tensor by tensor otherwise — on files written by our writer
// (odd element counts, tensors at offsets that are not multiples of 4) and by PyTorch's safetensors (.venv-torch);
// halfTensorsOf: the same over an HF folder's weight files (one file or shards).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { halfTensorsOf } from '../../src/export/import.ts';
import { readHalfTensor, readSafetensorsHeader, writeSafetensors } from '../../src/export/safetensors.ts';
import { halfBits, halfValue, packHalf, unpackHalf } from '../../src/util/half.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

describe('readHalfTensor', () => {
  const rng = new Rng(5);
  // 15 elements (odd) in BF16 first, so the F16 tensor after it starts at byte 30: not a word boundary.
  const w = rng.uniformArray(15).map((v) => v * 3);
  const h = rng.uniformArray(8).map((v) => v * 1000);
  const f = rng.uniformArray(21);
  const file = writeSafetensors([
    { name: 'w', shape: [3, 5], data: w, dtype: 'BF16' },
    { name: 'h', shape: [2, 4], data: h, dtype: 'F16' },
    { name: 'f', shape: [7, 3], data: f, dtype: 'F32' },
  ]);
  const header = readSafetensorsHeader(file);

  it('returns a 16-bit tensor of the asked format as its bytes, in whole words (an odd count padded with a zero half)', () => {
    const t = readHalfTensor(file, header, 'w', 'bf16');
    expect({ dtype: t.dtype, shape: t.shape, count: t.count, format: t.format }).toEqual({ dtype: 'BF16', shape: [3, 5], count: 15, format: 'bf16' });
    expect(t.words).toHaveLength(8);
    expect([...t.words]).toEqual([...packHalf(w, 'bf16')]);
    expect(t.words[7]! >>> 16).toBe(0);
    const at = header.dataStart + header.entries.find((e) => e.name === 'w')!.begin;
    expect([...new Uint8Array(t.words.buffer, 0, 30)]).toEqual([...file.subarray(at, at + 30)]);
    const th = readHalfTensor(file, header, 'h', 'f16');
    expect([...th.words]).toEqual([...packHalf(h, 'f16')]);
  });

  it('converts any other float dtype, rounding to nearest even: F32, and the other 16-bit format', () => {
    for (const format of ['bf16', 'f16'] as const) {
      expect([...readHalfTensor(file, header, 'f', format).words]).toEqual([...packHalf(f, format)]);
    }
    // F16 → bf16 goes through the exact f32 of each f16.
    const hAsF16 = Array.from(h, (v) => halfValue(halfBits(v, 'f16'), 'f16'));
    expect([...readHalfTensor(file, header, 'h', 'bf16').words]).toEqual([...packHalf(hAsF16, 'bf16')]);
    expect([...unpackHalf(readHalfTensor(file, header, 'w', 'f16').words, 15, 'f16')])
      .toEqual(Array.from(w, (v) => halfValue(halfBits(halfValue(halfBits(v, 'bf16'), 'bf16'), 'f16'), 'f16')));
  });

  it('names a missing tensor and a dtype that is not a float', () => {
    expect(() => readHalfTensor(file, header, 'nope', 'bf16', 'model.safetensors')).toThrow("model.safetensors: no tensor 'nope'");
    const ints = { ...header, entries: [{ name: 'ids', dtype: 'I64', shape: [1], begin: 0, end: 8 }] };
    expect(() => readHalfTensor(file, ints, 'ids', 'f16')).toThrow(/tensor 'ids': dtype I64 is not a float/);
  });

  it("reads PyTorch's bf16 and f16 tensors as the words torch holds", () => {
    const dir = mkdtempSync(join(tmpdir(), 'half-'));
    const path = join(dir, 'model.safetensors');
    const torch = runPythonJson<{ bf16: number[]; f16: number[] }>(torchPython(), `
import json, sys, torch
from safetensors.torch import save_file
a = json.load(sys.stdin)
g = torch.Generator().manual_seed(0)
x = torch.randn(37, 71, generator=g)  # (out, in) of an HF linear: 2627 elements, odd
t = {'model.layers.0.mlp.up_proj.weight': x.to(torch.bfloat16), 'model.layers.0.mlp.down_proj.weight': x[:, :53].half().contiguous(),
     'model.norm.weight': torch.ones(3, dtype=torch.bfloat16)}
save_file(t, a['path'])
bits = lambda v: (v.view(torch.int16).int() & 0xffff).flatten().tolist()
print(json.dumps({'bf16': bits(t['model.layers.0.mlp.up_proj.weight']), 'f16': bits(t['model.layers.0.mlp.down_proj.weight'])}))`, { path });
    const bytes = new Uint8Array(readFileSync(path));
    const hdr = readSafetensorsHeader(bytes);
    const up = readHalfTensor(bytes, hdr, 'model.layers.0.mlp.up_proj.weight', 'bf16');
    const down = readHalfTensor(bytes, hdr, 'model.layers.0.mlp.down_proj.weight', 'f16');
    expect([up.shape, down.shape]).toEqual([[37, 71], [37, 53]]);
    const halves = (words: Uint32Array, n: number) => Array.from({ length: n }, (_, e) => (words[e >>> 1]! >>> (16 * (e & 1))) & 0xffff);
    expect(halves(up.words, up.count)).toEqual(torch.bf16);
    expect(halves(down.words, down.count)).toEqual(torch.f16);
  }, 120_000); // starting Python with torch takes seconds
});

describe('halfTensorsOf', () => {
  it("reads an HF folder's tensors from whichever shard holds them, each in the asked format", () => {
    const rng = new Rng(9);
    const q = rng.uniformArray(35), k = rng.uniformArray(7), n = rng.uniformArray(5);
    const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
    const files = new Map<string, Uint8Array>([
      ['m/config.json', enc({})],
      ['m/model-00001-of-00002.safetensors', writeSafetensors([{ name: 'q', shape: [5, 7], data: q, dtype: 'BF16' }, { name: 'norm', shape: [5], data: n }])],
      ['m/model-00002-of-00002.safetensors', writeSafetensors([{ name: 'k', shape: [7], data: k, dtype: 'F16' }])],
    ]);
    const r = halfTensorsOf(files, 'bf16');
    expect(r.names).toEqual(['k', 'norm', 'q']);
    expect([...r.read('q').words]).toEqual([...packHalf(q, 'bf16')]);
    expect([...r.read('norm').words]).toEqual([...packHalf(n, 'bf16')]); // F32, converted
    expect(r.read('k').dtype).toBe('F16');
    expect([...halfTensorsOf(files, 'f16').read('k').words]).toEqual([...packHalf(k, 'f16')]);
    expect(() => r.read('v')).toThrow("import: no tensor 'v' in the weight files");
    const twice = new Map(files).set('m/model-00002-of-00002.safetensors', writeSafetensors([{ name: 'q', shape: [1], data: k.subarray(0, 1) }]));
    expect(() => halfTensorsOf(twice, 'bf16')).toThrow("import: tensor 'q' is in both 'model-00001-of-00002.safetensors' and 'model-00002-of-00002.safetensors'");
  });
});
