// storedWeights (src/export/stored-weights.ts): the weights the Export stage evaluates for a GGUF format are exactly
// the ones the file holds — our GGUF reader dequantizes every tensor of the written file (Q/K rows unpermuted) to
// the same floats, the size is the file's length, vocabulary padding rows stay where the model keeps them — and
// quantization really changes them (else the comparison would measure nothing).
import { describe, expect, it } from 'vitest';
import { buildGguf, ggufName, unpermuteRopeRows, type GgufDtype } from '../../src/export/gguf.ts';
import { decodeGguf, ggufTensorData } from '../../src/export/gguf-format.ts';
import { toHfTensors } from '../../src/export/hf-names.ts';
import { storedWeights } from '../../src/export/stored-weights.ts';
import type { ExportInput } from '../../src/export/types.ts';
import { makeConfig, paddedVocab } from '../../src/model/config.ts';
import { paramLayout, unpadVocab } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';

const tok = trainBpe(['the quick brown fox jumps over the lazy dog; the dog sleeps. 0123456789'], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
// hidden 256: the K-quants' 256-value rows fit (Q4_K_M is not all fallbacks); vocabulary padded to 384.
const config = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, maxSeqLen: 64 });
const params = initParams(config, 3);
const x: ExportInput = { config, params, tokenizer: tok };

describe.each(['F16', 'Q8_0', 'Q4_0', 'Q4_K_M'] as GgufDtype[])('storedWeights %s', (dtype) => {
  it('equals what our reader reads back from the written file, at the file\'s size', () => {
    const s = storedWeights(x, dtype);
    const bytes = buildGguf(x, { dtype });
    expect(s.bytes).toBe(bytes.length);
    const g = decodeGguf(bytes);
    const { config: c, params: unpadded } = unpadVocab(config, s.params);
    expect(c.vocabSize).toBe(tok.vocabSize);
    for (const t of toHfTensors(c, unpadded)) {
      const { name, rope } = ggufName(t.name);
      let read = ggufTensorData(g, name);
      const cols = t.shape[1] ?? 1;
      if (rope) read = unpermuteRopeRows(read, rope === 'q' ? c.heads : c.kvHeads, c.headDim, cols);
      expect(Buffer.from(read.buffer, read.byteOffset, read.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${t.name} (${name})`).toBe(true);
    }
    // The padding rows of the embedding are the model's own, untouched.
    const wte = paramLayout(config).byName.get('wte')!, real = tok.vocabSize * config.hidden;
    expect([...s.params.subarray(wte.offset + real, wte.offset + wte.size)]).toEqual([...params.subarray(wte.offset + real, wte.offset + wte.size)]);
    const worst = s.params.reduce((m, v, i) => Math.max(m, Math.abs(v - params[i]!)), 0);
    expect(worst).toBeGreaterThan(0);
    if (dtype !== 'F16') expect(Object.keys(s.types).some((t) => t.startsWith('Q'))).toBe(true);
  });
});
