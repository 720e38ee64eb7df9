// The family switches of ModelConfig (issue #20) in config validation and the HF-folder round trip: makeConfig's
// checks and one JSON form per model; exportHfFolder → importHfFolder gives back the same config (biases, q/k norms,
// llama3 scaling) and the same weights with no warnings; config.json carries the family's architecture and fields.
import { describe, expect, it } from 'vitest';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { makeConfig, modelFamily, ropeInvFreq } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
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
