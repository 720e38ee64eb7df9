// GGUF export of the pretrained families (issue #20) loaded by llama.cpp itself (node-llama-cpp's prebuilt CPU
// binaries): general.architecture qwen2 / qwen3 / llama with their hyperparameter keys and tensors (attn_q.bias…,
// attn_q_norm/attn_k_norm, rope_freqs for llama3 scaling), and llama.cpp's next-token logits at every position
// equal the CPU reference model's (itself proven against HF transformers in tests/gpu/families-hf.test.ts).
// qwen2/qwen3 use llama.cpp's NEOX RoPE, (i, i + D/2) pairs like HF: their Q/K rows are written unpermuted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGguf, ggufFile, ggufRopeFreqs } from '../../src/export/gguf.ts';
import { storedWeights } from '../../src/export/stored-weights.ts';
import type { ExportInput } from '../../src/export/types.ts';
import { makeConfig, ropeInvFreq } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { Rng } from '../../src/util/rng.ts';
import { closeLlamaCpp, loadLlamaCppModel } from '../support/llama-cpp.ts';

const TMP = mkdtempSync(join(tmpdir(), 'gguf-families-'));
afterAll(async () => {
  await closeLlamaCpp();
  rmSync(TMP, { recursive: true, force: true });
});

const TEXT = 'The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence.';
const tok = trainBpe([TEXT, 'a small text for a small tokenizer, with some words repeated: small words, small text.'], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
const ids = tok.encode(TEXT);

const LLAMA3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 } as const;
const FAMILIES = {
  // heads·head_dim = hidden, as llama.cpp's qwen2 requires; untied.
  qwen2: { vocabSize: tok.vocabSize + 3, hidden: 48, layers: 2, heads: 3, kvHeads: 1, headDim: 16, intermediate: 80, maxSeqLen: 128, ropeTheta: 1000, rmsNormEps: 1e-6, tieEmbeddings: false, attentionBias: true },
  // heads·head_dim = 64 ≠ hidden = 40 (attention.key_length), tied.
  qwen3: { vocabSize: tok.vocabSize, hidden: 40, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 72, maxSeqLen: 128, ropeTheta: 1000, rmsNormEps: 1e-6, tieEmbeddings: true, qkNorm: true },
  // positions up to ~70 with an original length of 32: high, medium and low frequencies all matter.
  llama3: { vocabSize: tok.vocabSize + 5, hidden: 48, layers: 2, heads: 4, kvHeads: 2, headDim: 12, intermediate: 80, maxSeqLen: 128, ropeTheta: 5000, tieEmbeddings: true, ropeScaling: LLAMA3 },
} as const;
type Family = keyof typeof FAMILIES;

/** The family's model at initStd 0.2 with norm gains 1 ± 0.3 and biases N(0, 0.3): peaked, every tensor matters. */
function input(family: Family): ExportInput {
  const config = makeConfig({ ...FAMILIES[family], initStd: 0.2 });
  const params = initParams(config, 3);
  const rng = new Rng(4);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) params[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.3 * rng.normal();
  }
  return { config, params, tokenizer: tok };
}

/** Max |llama.cpp − reference| over every position and vocabulary entry (logits, and softmax probabilities). */
async function diff(x: ExportInput, bytes: Uint8Array): Promise<{ logits: number; probs: number }> {
  const path = join(TMP, `${Math.random().toString(36).slice(2)}.gguf`);
  writeFileSync(path, bytes);
  const c = x.config;
  const model = await loadLlamaCppModel(path, c.vocabSize, c.maxSeqLen);
  try {
    const got = await model.evaluate(ids);
    const ref = refForward(c, x.params, Uint32Array.from(ids), 1, ids.length).logits;
    const d = { logits: 0, probs: 0 };
    ids.forEach((_, i) => {
      const row = ref.subarray(i * c.vocabSize, (i + 1) * c.vocabSize);
      const m = Math.max(...row), z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      for (let v = 0; v < c.vocabSize; v++) {
        const gl = got[i]!.logits[v]!, gp = got[i]!.probs[v]!;
        d.logits = Math.max(d.logits, Number.isNaN(gl) ? Infinity : Math.abs(row[v]! - gl));
        d.probs = Math.max(d.probs, Number.isNaN(gp) ? Infinity : Math.abs(Math.exp(row[v]! - m) / z - gp));
      }
    });
    return d;
  } finally {
    await model.dispose();
  }
}

describe('GGUF export per family, loaded by llama.cpp', { timeout: 60_000 }, () => {
  it('writes the family\'s architecture, keys and tensors', () => {
    const names = (f: Family) => ggufFile(input(f)).tensors.map((t) => t.name);
    const kv = (f: Family, key: string) => ggufFile(input(f)).kvs.find((k) => k.key === key)?.value.value;
    expect(kv('qwen2', 'general.architecture')).toBe('qwen2');
    expect(kv('qwen2', 'qwen2.attention.head_count_kv')).toBe(1);
    expect(names('qwen2')).toEqual(expect.arrayContaining(['blk.1.attn_q.bias', 'blk.1.attn_k.bias', 'blk.1.attn_v.bias', 'output.weight']));
    expect(kv('qwen3', 'general.architecture')).toBe('qwen3');
    expect(kv('qwen3', 'qwen3.attention.key_length')).toBe(16);
    expect(names('qwen3')).toEqual(expect.arrayContaining(['blk.0.attn_q_norm.weight', 'blk.0.attn_k_norm.weight']));
    expect(names('qwen3').some((n) => n.endsWith('.bias'))).toBe(false);
    expect(kv('llama3', 'general.architecture')).toBe('llama');
    const freqs = ggufFile(input('llama3')).tensors.find((t) => t.name === 'rope_freqs.weight')!;
    expect(freqs.dims).toEqual([6]);
    // θ^(−2j/D) / rope_freqs_j is the scaled inverse frequency; the highest frequency is unscaled, the lowest ÷ factor.
    const c = input('llama3').config, plain = ropeInvFreq({ headDim: 12, ropeTheta: 5000 }), scaled = ropeInvFreq(c);
    Array.from(ggufRopeFreqs(c)).forEach((f, j) => expect(plain[j]! / f).toBeCloseTo(scaled[j]!, 7));
    expect(ggufRopeFreqs(c)[0]).toBe(1);
    expect(ggufRopeFreqs(c)[5]).toBeCloseTo(8, 5);
    expect(names('qwen2')).not.toContain('rope_freqs.weight');
  });

  it.each(Object.keys(FAMILIES) as Family[])('%s (F32): llama.cpp\'s logits at every position equal the reference model\'s', async (family) => {
    const x = input(family);
    expect(ids.length).toBeGreaterThan(24);
    const d = await diff(x, buildGguf(x));
    console.log(`llama.cpp F32 ${family} vs reference: max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}`);
    expect(d.probs).toBeLessThan(1e-3);
    expect(d.logits).toBeLessThan(1e-4);
  });

  it.each(Object.keys(FAMILIES) as Family[])('%s (Q8_0 mix): llama.cpp runs the weights the file stores (storedWeights), biases, norms and rope_freqs kept F32', async (family) => {
    const x = input(family);
    const stored = storedWeights(x, 'Q8_0');
    const f = ggufFile(x, { dtype: 'Q8_0' });
    for (const t of f.tensors) if (t.dims.length === 1) expect(t.type, t.name).toBe('F32');
    const d = await diff({ ...x, params: stored.params }, buildGguf(x, { dtype: 'Q8_0' }));
    console.log(`llama.cpp Q8_0 ${family} vs reference on the stored weights (${JSON.stringify(stored.types)}): max |Δlogit| ${d.logits.toExponential(2)}, max |Δp| ${d.probs.toExponential(2)}`);
    expect(d.probs).toBeLessThan(2e-2);
    expect(d.logits).toBeLessThan(0.1);
  });

  it('refuses a qwen2 whose heads·head_dim ≠ hidden (llama.cpp sizes its biases by the hidden width)', () => {
    const config = makeConfig({ ...FAMILIES.qwen2, hidden: 40 });
    expect(() => buildGguf({ config, params: initParams(config, 1), tokenizer: tok })).toThrow(/qwen2 needs heads·head_dim = hidden \(got 3·16 ≠ 40\)/);
  });
});
