// Re-export of an HF folder with the Llama-2-format tokenizer (TinyLlama's family; tests/support/export-readers.ts)
// through both folder paths — the CLI's `export --from` and the page's `runExport` (the Export stage's picked
// folder) — which give the same files, each read by its runtime: tokenizer.json byte for byte, tokenizer_config.json
// field for field with its chat template; HF transformers' ids and logits within 1e-4 of our CPU reference on the
// imported weights, transformers.js's ids and onnxruntime's logits, llama.cpp's ids. The folder is written by HF
// transformers itself (save_pretrained of a random tiny LlamaForCausalLM) beside the tokenizer's own files.
// Before this, both paths required our BPE reader and said the folder "has no tokenizer.json".
// And what cannot be carried, by exact error: a Unigram tokenizer as GGUF, a tokenizer.json transformers.js cannot
// read, a folder without tokenizer.json.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCommand, readFolder, writeFiles } from '../../src/cli/export.ts';
import { runExport } from '../../src/engine/export.ts';
import { decodeGguf } from '../../src/export/gguf-format.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { exportModel } from '../../src/export/index.ts';
import { makeConfig } from '../../src/model/config.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { renderChat } from '../../src/tokenizer/chat-template.ts';
import { loadTokenizerFile } from '../../src/tokenizer/hf.ts';
import { closeLlamaCpp } from '../support/llama-cpp.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';
import {
  CONVERSATION, cliExport, LEGACY_TEXTS, TEMPLATE, TEXTS, llama2Files, maxAbsDiff, onnxLogits, readWithHf, readWithLlamaCpp, sameBytes, transformersJsIds,
  unigramTokenizerBytes, withoutLegacySpaces,
} from '../support/export-readers.ts';

const SAVE_PY = `
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
req = json.load(sys.stdin)
torch.manual_seed(0)
c = LlamaConfig(vocab_size=32000, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, head_dim=8, max_position_embeddings=64, initializer_range=0.3,
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
LlamaForCausalLM(c).save_pretrained(req['dir'])
print(json.dumps({'ok': True}))
`;

const files = llama2Files();
const tok = loadTokenizerFile(files.bytes, files.config);
const V = 32_000;
const ALL = [...TEXTS, ...LEGACY_TEXTS];
const withBos = (s: string) => [...tok.prefixIds, ...tok.encode(s)];
const IDS = withBos('Hello world, the folder speaks Llama-2 ids.').slice(0, 12);
const FORMATS = ['safetensors', 'onnx', 'gguf-f16'] as const;

const dir = mkdtempSync(join(tmpdir(), 'export-family-folder-'));
const hf = join(dir, 'hf');
const out = (f: string) => join(dir, f);

/** The page's folder export of a folder on disk (as picked files). */
const pageExport = (folder: string, format: string) => runExport({ source: { files: Object.fromEntries(readFolder(folder)) }, format, name: 'picked' });

/** A copy of the HF folder with its tokenizer files replaced (null: left out). */
function variant(name: string, tokenizerJson: Uint8Array | null): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(hf, f), join(d, f));
  if (tokenizerJson) writeFileSync(join(d, 'tokenizer.json'), tokenizerJson);
  return d;
}

beforeAll(async () => {
  runPythonJson(torchPython(), SAVE_PY, { dir: hf });
  writeFileSync(join(hf, 'tokenizer.json'), files.bytes);
  writeFileSync(join(hf, 'tokenizer_config.json'), JSON.stringify(files.config, null, 2));
  for (const f of FORMATS) await cliExport(['--from', hf, '--format', f, '--out', out(f)]);
}, 300_000);
afterAll(() => closeLlamaCpp());

describe('re-export of an HF folder with the Llama-2-format tokenizer', { timeout: 300_000 }, () => {
  it('the page (runExport) writes exactly the files the CLI (--from) writes', async () => {
    for (const f of FORMATS) {
      const page = await pageExport(hf, f);
      const cli = readFolder(out(f));
      expect(page.files.map((x) => x.path).sort(), f).toEqual([...cli.keys()].sort());
      for (const x of page.files) expect(sameBytes(x.bytes, cli.get(x.path)!), `${f} ${x.path}`).toBe(true);
    }
  });

  it('carries tokenizer.json byte for byte and tokenizer_config.json field for field (chat template included)', () => {
    for (const f of ['safetensors', 'onnx']) {
      expect(sameBytes(readFileSync(join(out(f), 'tokenizer.json')), files.bytes), f).toBe(true);
      const tc = JSON.parse(readFileSync(join(out(f), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      expect(tc).toEqual({ ...JSON.parse(JSON.stringify(files.config)), model_max_length: 64 });
      expect(tc.chat_template).toBe(TEMPLATE);
    }
  });

  it('HF transformers: our ids (AutoTokenizer but for its legacy-space rule), the template, logits within 1e-4 of the imported weights', () => {
    const imp = importHfFolder(readFolder(hf));
    const r = readWithHf(out('safetensors'), ALL, IDS);
    expect([r.class, r.tokenizer, r.vocab]).toEqual(['LlamaForCausalLM', 'LlamaTokenizer', V]);
    expect(r.raw).toEqual(ALL.map(withBos));
    expect(r.auto).toEqual([...TEXTS.map(withBos), ...LEGACY_TEXTS.map((t) => withoutLegacySpaces(withBos(t)))]);
    expect(r.chat).toBe(renderChat(TEMPLATE, CONVERSATION, { addGenerationPrompt: true, special: tok.namedSpecial }));
    const d = maxAbsDiff(r.logits, refForward(imp.config, imp.params, Uint32Array.from(IDS), 1, IDS.length).logits);
    console.log(`HF transformers on the re-exported folder vs CPU reference: max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });

  it('ONNX: transformers.js reads the tokenizer to our ids; onnxruntime-node logits within 1e-4', async () => {
    const imp = importHfFolder(readFolder(hf));
    expect(await transformersJsIds(out('onnx'), ALL)).toEqual(ALL.map(withBos));
    const d = maxAbsDiff(await onnxLogits(out('onnx'), imp.config, IDS), refForward(imp.config, imp.params, Uint32Array.from(IDS), 1, IDS.length).logits);
    console.log(`onnxruntime on the re-exported folder vs CPU reference: max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
  });

  it('GGUF F16: SentencePiece "llama" metadata with the template; llama.cpp gives our ids', async () => {
    const g = await readWithLlamaCpp(join(out('gguf-f16'), 'model.gguf'), V, ALL, IDS);
    expect(g.meta).toMatchObject({
      'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.add_space_prefix': true, 'tokenizer.ggml.add_bos_token': true,
      'tokenizer.ggml.bos_token_id': 1, 'tokenizer.ggml.eos_token_id': 2, 'tokenizer.chat_template': TEMPLATE,
    });
    expect(g.ids).toEqual(ALL.map(withBos));
  });
});

describe('re-export of our own BPE folder', () => {
  it('keeps the special tokens and chat template its tokenizer_config.json names (in GGUF too)', async () => {
    const bpe = trainBpe(['the cat sat on the mat. the dog sat on the log.'], { vocabSize: 280, specialTokens: ['<|endoftext|>', '<|im_end|>'] });
    const c = makeConfig({ vocabSize: 288, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 16 });
    const d = join(dir, 'bpe');
    writeFiles(d, exportModel({ config: c, params: initParams(c, 3), tokenizer: bpe, eosToken: '<|im_end|>', padToken: null, chatTemplate: TEMPLATE }, 'safetensors'));
    const eos = bpe.tokenToId('<|im_end|>')!;
    for (const format of ['safetensors', 'gguf']) {
      const files = new Map((await pageExport(d, format)).files.map((f) => [f.path, f.bytes]));
      if (format === 'gguf') {
        const kvs = decodeGguf(files.get('model.gguf')!).kvs;
        expect([kvs.get('tokenizer.chat_template')?.value, kvs.get('tokenizer.ggml.eos_token_id')?.value, kvs.get('tokenizer.ggml.padding_token_id')]).toEqual([TEMPLATE, eos, undefined]);
        continue;
      }
      const tc = JSON.parse(new TextDecoder().decode(files.get('tokenizer_config.json')));
      expect([tc.chat_template, tc.eos_token, tc.pad_token]).toEqual([TEMPLATE, '<|im_end|>', null]);
      expect(JSON.parse(new TextDecoder().decode(files.get('config.json'))).eos_token_id).toBe(eos);
    }
  });
});

describe('re-export: what cannot be carried, by exact error (CLI --from and the page alike)', () => {
  const refusals = async (folder: string, format: string, message: (where: string) => string) => {
    await expect(exportCommand(['--from', folder, '--format', format, '--out', `${folder}-out`])).rejects.toThrow(message(`export ${folder}`));
    await expect(pageExport(folder, format)).rejects.toThrow(message('export picked'));
  };

  it('a Unigram tokenizer (transformers.js reads it): GGUF refused naming its model and the formats that carry it; those carry it', async () => {
    const bytes = unigramTokenizerBytes();
    const d = variant('unigram', bytes);
    for (const format of ['gguf', 'gguf-f16']) {
      await refusals(d, format, () => 'gguf export: tokenizer model "Unigram" has no GGUF form here (only BPE). GGUF cannot carry this tokenizer; '
        + 'the safetensors, onnx and transformers.js formats carry its tokenizer.json unchanged');
    }
    for (const format of ['safetensors', 'transformers.js']) {
      const page = await pageExport(d, format);
      expect(sameBytes(page.files.find((f) => f.path === 'tokenizer.json')!.bytes, bytes), format).toBe(true);
    }
  });

  it('a tokenizer.json transformers.js cannot read, and none at all: refused with the reason', async () => {
    // The Unigram tokenizer with a model type no reader knows.
    const json = JSON.parse(new TextDecoder().decode(unigramTokenizerBytes())) as Record<string, unknown>;
    const foo = variant('foo', new TextEncoder().encode(JSON.stringify({ ...json, model: { type: 'Foo' } })));
    for (const format of ['safetensors', 'gguf']) {
      await refusals(foo, format, (where) => `${where}: the folder's tokenizer cannot be exported: tokenizer.json: transformers.js's tokenizer cannot read it: `
        + 'Unknown TokenizerModel type: Foo (our BPE reader: tokenizer.json: pre_tokenizer of type "Metaspace" is not supported (only "ByteLevel"))');
    }
    const none = variant('none', null);
    await refusals(none, 'onnx', (where) => `${where}: the folder's tokenizer cannot be exported: no tokenizer.json`);
  });
});
