// `cli export --run` of a student trained on the Llama-2-format tokenizer (TinyLlama's family; see
// tests/support/export-readers.ts): a run folder as `cli train` writes it (checkpoint + saveRunTokenizer's files,
// a vocabulary padded past the tokenizer's 32,000) exported to safetensors, ONNX and GGUF F16, each read by its
// runtime: tokenizer.json byte for byte, tokenizer_config.json's fields and chat template kept; HF transformers'
// tokenizers and logits (within 1e-4 of our CPU reference), transformers.js's tokenizer and onnxruntime's logits,
// llama.cpp's SentencePiece tokenizer ids and logits. Before this, loadRun read tokenizer.json with our BPE reader
// only and refused it ('normalizer = {"type":"Sequence",...} is not supported').
// Also: a tokenizer that GGUF cannot carry (Unigram) is refused for GGUF by name, and carried by the other formats.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCommand, saveRunTokenizer } from '../../src/cli/export.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { unpadVocab } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { renderChat } from '../../src/tokenizer/chat-template.ts';
import { loadTokenizerFile } from '../../src/tokenizer/hf.ts';
import type { TextTokenizer } from '../../src/tokenizer/types.ts';
import { encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { closeLlamaCpp } from '../support/llama-cpp.ts';
import {
  CONVERSATION, cliExport, LEGACY_TEXTS, SPACE_ID, TEMPLATE, TEXTS, llama2Files, maxAbsDiff, onnxLogits, readWithHf, readWithLlamaCpp, sameBytes, transformersJsIds, unigramTokenizerBytes, withoutLegacySpaces,
} from '../support/export-readers.ts';

const files = llama2Files();
const tok = loadTokenizerFile(files.bytes, files.config);
/** As `cli train` sizes a model section that sets vocabSize past the tokenizer: the extra rows are padding. */
const config = makeConfig({ vocabSize: 32_128, vocabPadding: 128, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, maxSeqLen: 64, initStd: 0.3 });
const params = initParams(config, 7);
const real = unpadVocab(config, params);
const V = 32_000;
const withBos = (t: TextTokenizer, s: string) => [...t.prefixIds, ...t.encode(s)];
const IDS = withBos(tok, 'Hello world, the student speaks Llama-2 ids.').slice(0, 12);
const ALL = [...TEXTS, ...LEGACY_TEXTS];
const refLogits = (c: ModelConfig, p: Float32Array, ids: number[]) => refForward(c, p, Uint32Array.from(ids), 1, ids.length).logits;

/** A run folder as `cli train` leaves it. */
function writeRun(dir: string, t: TextTokenizer, c: ModelConfig, p: Float32Array): string {
  const run = join(dir, 'run');
  mkdirSync(run, { recursive: true });
  const train = makeTrainConfig({ steps: 2, evalEvery: 0 });
  writeFileSync(join(run, 'latest.ckpt'), encodeCheckpoint({ model: c, train, step: 2, adamStep: 2, cursor: { epoch: 0, row: 0 }, params: p, m: new Float32Array(p.length), v: new Float32Array(p.length) }));
  saveRunTokenizer(run, t);
  return run;
}

const dir = mkdtempSync(join(tmpdir(), 'export-family-run-'));
const out = (f: string) => join(dir, f);

beforeAll(async () => {
  const run = writeRun(dir, tok, config, params);
  expect(sameBytes(readFileSync(join(run, 'tokenizer.json')), files.bytes)).toBe(true);
  for (const f of ['safetensors', 'onnx', 'gguf-f16']) await cliExport(['--run', run, '--format', f, '--out', out(f)]);
}, 120_000);
afterAll(() => closeLlamaCpp());

describe('cli export --run: a student on the Llama-2-format tokenizer', { timeout: 300_000 }, () => {
  it('carries tokenizer.json byte for byte and tokenizer_config.json field for field (chat template included)', () => {
    expect(tok.kind).toBe('hf');
    for (const f of ['safetensors', 'onnx']) {
      expect(sameBytes(readFileSync(join(out(f), 'tokenizer.json')), files.bytes), f).toBe(true);
      const tc = JSON.parse(readFileSync(join(out(f), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      // Every field as the tokenizer came, but the model's own length; bos/eos/pad as its tokenizer_config names them.
      expect(tc).toEqual({ ...JSON.parse(JSON.stringify(files.config)), model_max_length: 64 });
      expect(tc.chat_template).toBe(TEMPLATE);
      const hc = JSON.parse(readFileSync(join(out(f), 'config.json'), 'utf8')) as Record<string, unknown>;
      expect([hc.vocab_size, hc.bos_token_id, hc.eos_token_id, hc.pad_token_id]).toEqual([V, 1, 2, null]);
    }
  });

  it('HF transformers: the same ids (tokenizers; AutoTokenizer but for its legacy-space rule), template, logits within 1e-4', () => {
    const r = readWithHf(out('safetensors'), ALL, IDS);
    expect([r.class, r.tokenizer, r.vocab]).toEqual(['LlamaForCausalLM', 'LlamaTokenizer', V]);
    const ours = ALL.map((t) => withBos(tok, t));
    expect(r.raw).toEqual(ours);
    expect(r.auto.slice(0, TEXTS.length)).toEqual(ours.slice(0, TEXTS.length));
    // transformers 5's LlamaTokenizer drops the lone "▁" after <s> and other special tokens (support file).
    expect(ours.slice(TEXTS.length).every((ids) => ids.filter((id) => id === SPACE_ID).length > 0)).toBe(true);
    expect(r.auto.slice(TEXTS.length)).toEqual(ours.slice(TEXTS.length).map(withoutLegacySpaces));
    expect(r.chat).toBe(renderChat(TEMPLATE, CONVERSATION, { addGenerationPrompt: true, special: tok.namedSpecial }));
    const d = maxAbsDiff(r.logits, refLogits(real.config, real.params, IDS));
    console.log(`HF transformers vs CPU reference (Llama-2-format tokenizer, V = ${V}): max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });

  it('ONNX: transformers.js reads the tokenizer to our ids; onnxruntime-node logits within 1e-4', async () => {
    expect(await transformersJsIds(out('onnx'), ALL)).toEqual(ALL.map((t) => withBos(tok, t)));
    const logits = await onnxLogits(out('onnx'), real.config, IDS);
    expect(logits.length).toBe(IDS.length * V);
    const d = maxAbsDiff(logits, refLogits(real.config, real.params, IDS));
    console.log(`onnxruntime vs CPU reference (Llama-2-format tokenizer): max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });

  it('GGUF F16: SentencePiece "llama" metadata with the template; llama.cpp gives our ids and logits', async () => {
    const g = await readWithLlamaCpp(join(out('gguf-f16'), 'model.gguf'), V, ALL, IDS);
    expect(g.meta).toMatchObject({
      'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.pre': 'default', 'tokenizer.ggml.add_space_prefix': true, 'tokenizer.ggml.add_bos_token': true,
      'tokenizer.ggml.bos_token_id': 1, 'tokenizer.ggml.eos_token_id': 2, 'tokenizer.ggml.unknown_token_id': 0, 'tokenizer.chat_template': TEMPLATE, 'llama.vocab_size': V,
    });
    expect((g.meta['tokenizer.ggml.tokens'] as string[]).length).toBe(V);
    expect(g.ids).toEqual(ALL.map((t) => withBos(tok, t)));
    const ref = refLogits(real.config, real.params, IDS);
    let d = 0;
    g.logits.forEach((row, t) => { d = Math.max(d, maxAbsDiff(row, ref.subarray(t * V, (t + 1) * V))); });
    console.log(`llama.cpp F16 vs CPU reference (Llama-2-format tokenizer): max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(0.05);
  });
});

describe('cli export --run: a tokenizer GGUF cannot carry', () => {
  it('a Unigram tokenizer: GGUF refused, naming the tokenizer model and the formats that carry it; safetensors carries it', async () => {
    const bytes = unigramTokenizerBytes();
    const uni = loadTokenizerFile(bytes);
    expect([uni.kind, uni.encode('the cat sat')]).toEqual(['hf', [3, 11, 12]]);
    const c = makeConfig({ vocabSize: 16, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, maxSeqLen: 32 });
    const run = writeRun(join(dir, 'unigram'), uni, c, initParams(c, 1));
    for (const format of ['gguf', 'gguf-f16']) {
      await expect(exportCommand(['--run', run, '--format', format, '--out', out(`uni-${format}`)])).rejects.toThrow(
        'gguf export: tokenizer model "Unigram" has no GGUF form here (only BPE). GGUF cannot carry this tokenizer; '
        + 'the safetensors, onnx and transformers.js formats carry its tokenizer.json unchanged',
      );
    }
    await cliExport(['--run', run, '--format', 'safetensors', '--out', out('uni-st')]);
    expect(sameBytes(readFileSync(join(out('uni-st'), 'tokenizer.json')), bytes)).toBe(true);
  });
});
