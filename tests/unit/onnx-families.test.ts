// ONNX export of the pretrained families (issue #20): Qwen2 (q/k/v biases through Gemm's bias input), Qwen3
// (per-head q/k RMSNorm before RoPE, H·D ≠ C) and Llama with llama3 RoPE scaling, run by onnxruntime-node against
// the CPU reference model (itself proven against HF transformers in tests/gpu/families-hf.test.ts) — without a
// past and through the KV cache — and loaded by transformers.js (model_type qwen2 / qwen3 / llama), whose greedy
// generate() equals a greedy loop over the reference.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor as HfTensor } from '@huggingface/transformers';
import { writeFiles } from '../../src/cli/export.ts';
import { buildOnnxModel, exportOnnxFolder } from '../../src/export/onnx.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { TRAINING_PARAGRAPH } from '../support/text-model.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };
const tokenizer = trainBpe(TRAINING_PARAGRAPH.split('\n').filter((l) => l.trim()), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
const LLAMA3 = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 } as const;
const FAMILIES: Array<[string, Record<string, unknown>]> = [
  ['qwen2', { hidden: 24, heads: 3, kvHeads: 1, headDim: 8, attentionBias: true, tieEmbeddings: true }],
  ['qwen3', { hidden: 20, heads: 4, kvHeads: 2, headDim: 8, qkNorm: true, tieEmbeddings: false, rmsNormEps: 1e-3 }],
  ['llama3', { hidden: 24, heads: 4, kvHeads: 2, headDim: 8, ropeTheta: 5000, ropeScaling: LLAMA3, tieEmbeddings: false }],
];

/** V = 301 > the tokenizer's 300; norm gains 1 ± 0.3 and biases N(0, 0.3) so every tensor matters. */
function model(over: Record<string, unknown>): { config: ModelConfig; params: Float32Array } {
  const config = makeConfig({ vocabSize: 301, layers: 2, intermediate: 40, maxSeqLen: 64, initStd: 0.3, ...over });
  const params = initParams(config, 12);
  const rng = new Rng(13);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) params[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.3 * rng.normal();
  }
  return { config, params };
}

const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);

async function run(sess: ort.InferenceSession, c: ModelConfig, ids: number[][], P: number, past: Record<string, ort.Tensor> | null) {
  const B = ids.length, S = ids[0]!.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64(ids), attention_mask: i64(ids.map(() => Array(P + S).fill(1))), position_ids: i64(ids.map(() => Array.from({ length: S }, (_, s) => P + s))),
  };
  for (let l = 0; l < c.layers; l++) {
    for (const kv of ['key', 'value']) {
      const n = `past_key_values.${l}.${kv}`;
      feeds[n] = past?.[n] ?? new ort.Tensor('float32', new Float32Array(0), [B, c.kvHeads, 0, c.headDim]);
    }
  }
  const out = await sess.run(feeds);
  const present: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k.startsWith('present.')) present[k.replace('present', 'past_key_values')] = v;
  return { logits: out.logits!.data as Float32Array, present };
}

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe.each(FAMILIES)('ONNX export of %s', (family, over) => {
  const { config: c, params } = model(over);
  const V = c.vocabSize;

  it('onnxruntime-node: logits equal refForward without a past (B = 2, S = 7) and through the KV cache', async () => {
    const sess = await ort.InferenceSession.create(buildOnnxModel(c, params));
    const rng = new Rng(3);
    const seqs = [0, 1].map(() => Array.from({ length: 7 }, () => rng.int(V)));
    const full = await run(sess, c, seqs, 0, null);
    seqs.forEach((seq, b) => {
      const r = compareArrays(full.logits.subarray(b * 7 * V, (b + 1) * 7 * V), refForward(c, params, Uint32Array.from(seq), 1, 7).logits, TOL);
      expect(r.ok, `row ${b}: max |Δ| ${r.maxAbsErr}`).toBe(true);
    });
    // Prompt of 5, then 2 tokens on the cache: the last 2 rows of refForward over all 7.
    const first = await run(sess, c, [seqs[0]!.slice(0, 5)], 0, null);
    const next = await run(sess, c, [seqs[0]!.slice(5)], 5, first.present);
    const ref = refForward(c, params, Uint32Array.from(seqs[0]!), 1, 7).logits.subarray(5 * V);
    const r = compareArrays(next.logits, ref, TOL);
    expect(r.ok, `cached step: max |Δ| ${r.maxAbsErr}`).toBe(true);
  });

  it('transformers.js loads the folder as its family and generates the reference\'s greedy ids', async () => {
    const root = mkdtempSync(join(tmpdir(), `onnx-${family}-`));
    dirs.push(root);
    const files = exportOnnxFolder({ config: c, params, tokenizer });
    const cfg = JSON.parse(new TextDecoder().decode(files.find((f) => f.path === 'config.json')!.bytes)) as Record<string, unknown>;
    expect(cfg.model_type).toBe(family === 'llama3' ? 'llama' : family);
    writeFiles(join(root, 'student'), files);
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const tok = await AutoTokenizer.from_pretrained('student');
    const m = await AutoModelForCausalLM.from_pretrained('student');
    try {
      const prompt = tokenizer.encode('The river ran slowly past the');
      const want = [...prompt];
      for (let s = 0; s < 10; s++) {
        const logits = refForward(c, params, Uint32Array.from(want), 1, want.length).logits.subarray((want.length - 1) * V);
        const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
        expect(logits[order[0]!]! - logits[order[1]!]!, 'no near-tie on the greedy path').toBeGreaterThan(1e-3);
        want.push(order[0]!);
      }
      const inputs = tok('The river ran slowly past the') as { input_ids: HfTensor; attention_mask: HfTensor };
      const out = (await m.generate({ ...inputs, max_new_tokens: 10, do_sample: false, eos_token_id: -1 } as never)) as HfTensor;
      expect(out.tolist()[0]!.map(Number)).toEqual(want);
    } finally {
      await m.dispose();
    }
  }, 60_000);
});
