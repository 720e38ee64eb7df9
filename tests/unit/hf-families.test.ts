// The family switches of ModelConfig (issue #20) in config validation and the HF-folder round trip: makeConfig's
// checks and one JSON form per model; exportHfFolder → importHfFolder gives back the same config (biases, q/k norms,
// llama3 scaling) and the same weights with no warnings; config.json carries the family's architecture and fields.
import { describe, expect, it } from 'vitest';
import { estimateMemory } from '../../src/engine/runs/estimate.ts';
import { modelConfigFromHf } from '../../src/export/hf-config.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { makeConfig, modelFamily, ropeInvFreq } from '../../src/model/config.ts';
import { countParams, paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';

const tok = trainBpe(['a tiny text for a tiny tokenizer'], { vocabSize: 262, specialTokens: ['<|endoftext|>'] });
const BASE = { vocabSize: 263, hidden: 24, layers: 2, heads: 3, kvHeads: 1, headDim: 8, intermediate: 40, maxSeqLen: 32 };
const LLAMA3 = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

describe('family switches in ModelConfig', () => {
  it('validates them and keeps one JSON form (false switches are dropped)', () => {
    expect(JSON.stringify(makeConfig({ ...BASE, attentionBias: false, qkNorm: false }))).toBe(JSON.stringify(makeConfig(BASE)));
    expect(() => makeConfig({ ...BASE, qkNorm: 1 })).toThrow(/qkNorm must be true or false, got 1/);
    expect(() => makeConfig({ ...BASE, qkNorm: true, attentionBias: true })).toThrow(/qkNorm with attentionBias matches no supported family/);
    expect(() => makeConfig({ ...BASE, ropeScaling: { ...LLAMA3, type: 'yarn' } })).toThrow(/ropeScaling: type must be 'llama3'/);
    expect(() => makeConfig({ ...BASE, ropeScaling: { ...LLAMA3, highFreqFactor: 1 } })).toThrow(/highFreqFactor \(1\) must exceed lowFreqFactor \(1\)/);
    expect(() => makeConfig({ ...BASE, ropeScaling: { ...LLAMA3, extra: 1 } })).toThrow(/unknown key\(s\) extra/);
    expect([modelFamily(makeConfig(BASE)), modelFamily({ attentionBias: true }), modelFamily({ qkNorm: true })]).toEqual(['llama', 'qwen2', 'qwen3']);
  });

  it("ropeInvFreq is Llama-3.1's table: high frequencies kept, low ones ÷ factor, smooth in between", () => {
    const f = ropeInvFreq({ headDim: 64, ropeTheta: 500000, ropeScaling: makeConfig({ ...BASE, ropeScaling: LLAMA3 }).ropeScaling });
    const plain = ropeInvFreq({ headDim: 64, ropeTheta: 500000 });
    expect(f[0]).toBe(plain[0]); // wavelength 2π < 8192/4
    expect(f[31]! * 32).toBeCloseTo(plain[31]!, 15); // wavelength > 8192
    const mid = plain.findIndex((p) => 2 * Math.PI / p > 2048 && 2 * Math.PI / p < 8192);
    expect(f[mid]!).toBeLessThan(plain[mid]!);
    expect(f[mid]!).toBeGreaterThan(plain[mid]! / 32);
  });
});

describe('HF folder round trip per family', () => {
  it('import refuses other architectures naming what is supported, Gemma-3 explicitly', () => {
    const folder = (cfg: Record<string, unknown>) => new Map([['config.json', new TextEncoder().encode(JSON.stringify(cfg))]]);
    const base = { vocab_size: 64, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 };
    expect(() => importHfFolder(folder({ ...base, model_type: 'gemma3_text', architectures: ['Gemma3ForCausalLM'] }))).toThrow(/Gemma models \(Gemma-3 included\) are not supported; supported are LlamaForCausalLM.*Qwen2ForCausalLM.*Qwen3ForCausalLM/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'mistral' }))).toThrow(/model_type is "mistral".*supported are LlamaForCausalLM/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'qwen3', attention_bias: true }))).toThrow(/attention_bias is true: Qwen3's attention_bias also puts a bias on o_proj/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'qwen2', use_sliding_window: true }))).toThrow(/use_sliding_window is true/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 4 } }))).toThrow(/type "yarn" is not supported \(only default RoPE and llama3 scaling\)/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'llama', partial_rotary_factor: 0.5 }))).toThrow(/partial_rotary_factor is 0.5: only RoPE over the whole head/);
    expect(() => importHfFolder(folder({ ...base, model_type: 'llama', mlp_bias: true }))).toThrow(/mlp_bias is true/);
  });

  it.each([
    ['Qwen2ForCausalLM', 'qwen2', { attentionBias: true }],
    ['Qwen3ForCausalLM', 'qwen3', { qkNorm: true, headDim: 16 }],
    ['LlamaForCausalLM', 'llama', { ropeScaling: LLAMA3, ropeTheta: 500000 }],
  ] as const)('%s: config.json fields, and the same config and weights back without warnings', (arch, modelType, over) => {
    const config = makeConfig({ ...BASE, ...over });
    const params = initParams(config, 5);
    for (const e of paramLayout(config).entries) if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.01 * (i + 1);
    const files = new Map(exportHfFolder({ config, params, tokenizer: tok }).map((f) => [f.path, f.bytes]));
    const cfg = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
    expect([cfg.architectures, cfg.model_type]).toEqual([[arch], modelType]);
    if (modelType === 'llama') {
      expect(cfg.rope_scaling).toEqual({ rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
      expect((cfg.rope_parameters as Record<string, unknown>).rope_type).toBe('llama3');
    } else {
      expect([cfg.use_sliding_window, cfg.rope_scaling]).toEqual([false, null]);
    }
    const imp = importHfFolder(files);
    expect(imp.config).toEqual(config);
    expect(imp.warnings.filter((w) => !/tokenizer/.test(w))).toEqual([]);
    expect([...imp.params]).toEqual([...params]);
  });
});

describe('the real models of each family', () => {
  // config.json of Qwen2.5-0.5B, Qwen3-0.6B and Llama-3.2-1B (the fields that shape the model); the counts are what
  // HF transformers' Qwen2/Qwen3/LlamaForCausalLM built from these configs hold (sum of numel, tied embeddings once).
  const REAL: Array<[string, Record<string, unknown>, number]> = [
    ['Qwen2.5-0.5B', { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true, use_sliding_window: false, sliding_window: 32768, max_window_layers: 21 }, 494_032_768],
    ['Qwen3-0.6B', { architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960, rope_theta: 1000000, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 28 }, 596_049_920],
    ['Llama-3.2-1B', { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, rope_theta: 500000, rms_norm_eps: 1e-5, tie_word_embeddings: true, attention_bias: false, mlp_bias: false, rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' } }, 1_235_814_400],
  ];

  it.each(REAL)('%s: imports as its family with exactly HF\'s parameter count', (_, json, count) => {
    const c = modelConfigFromHf(json);
    expect(countParams(c)).toBe(count);
    const m = estimateMemory({ model: c, B: 1, T: 256, teacher: { kind: 'none' } });
    console.log(`${_}: ${countParams(c)} parameters (${modelFamily(c)}), training plan at B·T = 256: ${(m.bytes / 2 ** 30).toFixed(2)} GiB (${m.parts.map((p) => `${p.name} ${(p.bytes / 2 ** 20).toFixed(0)} MiB`).join(', ')})`);
  });
});
