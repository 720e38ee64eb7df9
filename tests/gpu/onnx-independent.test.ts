// Our GPU engine against independent implementations on the same weights: the GPU forward's logits equal
// onnxruntime-node's on our ONNX export (issue #4's independent check), and transformers.js, loading the exported
// folder, generates the same greedy tokens as our GPU Generator with its KV cache (issue #6).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { exportOnnxFolder } from '../../src/export/onnx.ts';
import { writeArray } from '../../src/gpu/dispatch.ts';
import { allocBuffer } from '../../src/model/activations.ts';
import { makeConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const TEXT = 'The quick brown fox jumps over the lazy dog. A stitch in time saves nine. Many hands make light work; '
  + 'all that glitters is not gold, and the early bird catches the worm. Rome was not built in a day.';
const tok = trainBpe([TEXT, TEXT.toUpperCase()], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });

function model(tied: boolean) {
  const config = makeConfig({ vocabSize: tok.vocabSize + 3, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, maxSeqLen: 48, tieEmbeddings: tied, initStd: 0.25 });
  const slab = initParams(config, tied ? 5 : 6);
  const rng = new Rng(7);
  for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.4 * (rng.next() - 0.5);
  return { config, slab };
}

function writeFolder(files: { path: string; bytes: Uint8Array }[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-indep-'));
  writeFiles(join(dir, 'm'), files);
  return dir;
}

describe('GPU engine vs onnxruntime on our ONNX export', () => {
  it.each([true, false])('tied = %s: GPU forward logits equal onnxruntime-node logits', async (tied) => {
    const { device } = gpu();
    const { config, slab } = model(tied);
    const dir = writeFolder(exportOnnxFolder({ config, params: slab, tokenizer: tok }));
    const B = 2, T = 11;
    const rng = new Rng(3);
    const ids = Uint32Array.from({ length: B * T }, () => rng.int(tok.vocabSize));
    const m = new GpuModel(device, config, B, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
    let ours: Float32Array;
    try {
      m.uploadParams(slab);
      m.setBatch({ ids, labels: ids, weights: new Float32Array(B * T).fill(1) });
      ours = await m.logits();
    } finally {
      m.destroy();
    }
    const session = await ort.InferenceSession.create(join(dir, 'm', 'onnx', 'model.onnx'));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [B, T]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)), [B, T]),
    };
    for (let l = 0; l < config.layers; l++) for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, config.headDim]);
    }
    const out = await session.run(feeds);
    const theirs = out.logits!.data as Float32Array;
    expect(out.logits!.dims).toEqual([B, T, config.vocabSize]);
    const cmp = compareArrays(ours, theirs, { atol: 1e-4, rtol: 1e-4 });
    expect(cmp.ok, describeComparison(cmp)).toBe(true);
  }, 120_000);
});

describe('transformers.js on the exported folder vs our GPU generator', () => {
  it('greedy tokens are identical', async () => {
    const { device } = gpu();
    const { config, slab } = model(true);
    const dir = writeFolder(exportOnnxFolder({ config, params: slab, tokenizer: tok }));
    const params = allocBuffer(device, slab.length, 'params');
    writeArray(device, params, slab);
    const gen = new Generator(device, config, params, config.maxSeqLen);
    const prompt = 'The early fox';
    const promptIds = tok.encode(prompt);
    const eos = tok.tokenToId('<|endoftext|>')!;
    let ours: number[];
    try {
      ours = await gen.generate(promptIds, { maxNewTokens: 16, temperature: 0, stopTokens: [eos] });
    } finally {
      gen.destroy();
      params.destroy();
    }
    const tjs = await import('@huggingface/transformers');
    tjs.env.allowLocalModels = true;
    tjs.env.allowRemoteModels = false;
    tjs.env.localModelPath = dir + '/';
    const tokenizer = await tjs.AutoTokenizer.from_pretrained('m');
    const lm = await tjs.AutoModelForCausalLM.from_pretrained('m', { dtype: 'fp32' });
    const enc = tokenizer(prompt);
    expect(Array.from(enc.input_ids.data as BigInt64Array, Number)).toEqual(promptIds);
    const out = await lm.generate({ ...enc, max_new_tokens: 16, do_sample: false }) as { data: BigInt64Array; dims: number[] };
    const theirs = Array.from(out.data, Number).slice(promptIds.length);
    // transformers.js keeps the eos it stopped at; our generator stops before it.
    expect(theirs.filter((t) => t !== eos)).toEqual(ours);
    expect(ours.length).toBeGreaterThan(3);
    await lm.dispose();
  }, 120_000);
});
