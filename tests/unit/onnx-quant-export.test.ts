// Quantized ONNX exports (src/export/onnx-quant.ts, quant/onnx-weights.ts) for transformers.js's dtype q8 / q4:
//   - onnxruntime-node and onnxruntime-web (wasm) run them: logits (a prompt, then a KV-cache step) equal refForward
//     of the model whose linear weights are replaced by OUR dequantization of what the file stores, within
//     1e-4 + 1e-4·|ref| — so the graph computes with exactly the weights our CPU reference says (DequantizeLinear
//     per row for q8, com.microsoft MatMulNBits block 32 for q4); their distance to the fp32 model is reported;
//   - the file: names transformers.js loads by dtype, ops and domains, initializer types;
//   - transformers.js loads each folder by its config's dtype (there is no onnx/model.onnx to fall back on) and its
//     greedy generate() equals greedy refForward on the dequantized weights;
//   - on the small fixture teacher and held-out Brown text, the perplexity onnxruntime gives is within 1% (q8) and
//     10% (q4) of fp32's; the differences in logits are printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor as HfTensor } from '@huggingface/transformers';
import { heldOutWindows } from '../../bench/quant.ts';
import { readFolder, writeFiles } from '../../src/cli/export.ts';
import { toHfTensors } from '../../src/export/hf-names.ts';
import { importedExportInput, importHfFolder } from '../../src/export/import.ts';
import { exportModel } from '../../src/export/index.ts';
import { buildOnnxModel, exportOnnxFolder } from '../../src/export/onnx.ts';
import { decodeOnnxModel } from '../../src/export/onnx-proto.ts';
import { isLinearWeight, ONNX_DTYPE_PATH, type OnnxWeights } from '../../src/export/onnx-quant.ts';
import { dequantizeInt8Rows, dequantizeNBits4, NBITS_BLOCK, quantizeInt8Rows, quantizeNBits4 } from '../../src/export/quant/onnx-weights.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { TRAINING_PARAGRAPH } from '../support/text-model.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };
type Quant = Exclude<OnnxWeights, 'fp32'>;

/** The parameter slab with every weight the export quantizes replaced by our dequantization of it. */
function dequantizedParams(c: ModelConfig, params: Float32Array, mode: Quant): Float32Array {
  const p = params.slice();
  for (const t of toHfTensors(c, p)) {
    const [N, K] = t.shape as [number, number];
    if (!isLinearWeight(t.name, c.tieEmbeddings) || (mode === 'q4' && K % NBITS_BLOCK !== 0)) continue;
    t.data.set(mode === 'q8' ? dequantizeInt8Rows(quantizeInt8Rows(t.data, N, K), N, K) : dequantizeNBits4(quantizeNBits4(t.data, N, K), N, K));
  }
  return p;
}

const i64 = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [1, a.length]);

/** Logits (S, V) of one sequence from a fresh cache, then (when `more`) one cached step. */
async function ortLogits(sess: ort.InferenceSession, c: ModelConfig, seq: number[], more?: number): Promise<{ prompt: Float32Array; step?: Float32Array }> {
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(seq), attention_mask: i64(seq.map(() => 1)), position_ids: i64(seq.map((_, i) => i)) };
  for (let l = 0; l < c.layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.kvHeads, 0, c.headDim]);
  const first = await sess.run(feeds);
  if (more === undefined) return { prompt: first.logits!.data as Float32Array };
  const next: Record<string, ort.Tensor> = { input_ids: i64([more]), attention_mask: i64([...seq, more].map(() => 1)), position_ids: i64([seq.length]) };
  for (const [k, v] of Object.entries(first)) if (k.startsWith('present.')) next[k.replace('present', 'past_key_values')] = v;
  return { prompt: first.logits!.data as Float32Array, step: (await sess.run(next)).logits!.data as Float32Array };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const r = compareArrays(actual, expected, TOL);
  expect(r.ok, `${what}: ${r.failures}/${r.count} outside ${TOL.atol} + ${TOL.rtol}·|ref|, max |Δ| ${r.maxAbsErr}`).toBe(true);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

// K of every linear a multiple of 32 (all quantized in q4) when tied; untied with F = 80: down_proj stays fp32 in q4.
const CONFIGS: Array<[string, ModelConfig]> = [
  ['tied C=64 F=96 H=4 Hkv=2', makeConfig({ vocabSize: 67, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, maxSeqLen: 32, initStd: 0.2 })],
  ['untied C=64 F=80 H=4 Hkv=1', makeConfig({ vocabSize: 71, hidden: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 16, intermediate: 80, maxSeqLen: 32, initStd: 0.2, tieEmbeddings: false })],
];
// The families' switches through the quantized linears: Qwen2's q/k/v biases (Gemm's C input for q8, an Add after
// MatMulNBits for q4), Qwen3's per-head q/k norms with heads·head_dim ≠ hidden.
CONFIGS.push(
  ['qwen2 biases C=64 H=4 Hkv=2', makeConfig({ vocabSize: 67, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, maxSeqLen: 32, initStd: 0.2, attentionBias: true })],
  ['qwen3 q/k norms C=64 H=4×32', makeConfig({ vocabSize: 67, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 96, maxSeqLen: 32, initStd: 0.2, qkNorm: true })],
);
const SEQ = [5, 17, 3, 60, 22, 41, 8];

/** Seeded weights with the biases and q/k norm gains moved off their 0 / 1 start, so a graph that drops them shows. */
function familyParams(c: ModelConfig): Float32Array {
  const p = initParams(c, 3);
  const layout = paramLayout(c);
  for (const e of layout.entries) if (/\.(bq|bk|bv|q_norm|k_norm)$/.test(e.name)) for (let i = 0; i < e.size; i++) p[e.offset + i] = p[e.offset + i]! + 0.3 * Math.sin(7 * i + e.offset);
  return p;
}

describe.each(CONFIGS)('onnxruntime runs the quantized export (%s)', (_n, c) => {
  const params = familyParams(c);
  it.each(['q8', 'q4'] as const)('%s: logits = refForward on our dequantized weights (prompt + cached step; node and wasm)', async (mode) => {
    const bytes = buildOnnxModel(c, params, mode);
    const deq = dequantizedParams(c, params, mode);
    const ref = refForward(c, deq, Uint32Array.from([...SEQ, 9]), 1, SEQ.length + 1).logits;
    const V = c.vocabSize;
    const got = await ortLogits(await ort.InferenceSession.create(bytes), c, SEQ, 9);
    expectClose(got.prompt, ref.subarray(0, SEQ.length * V), `${mode} prompt`);
    expectClose(got.step!, ref.subarray(SEQ.length * V), `${mode} cached step`);
    const fp32 = refForward(c, params, Uint32Array.from([...SEQ, 9]), 1, SEQ.length + 1).logits;
    const dq = maxAbsDiff(deq, params), dl = maxAbsDiff(got.prompt, fp32.subarray(0, SEQ.length * V));
    console.log(`${_n} ${mode}: max |Δw| ${dq.toExponential(2)}, max |Δlogit| vs fp32 ${dl.toExponential(2)} (logits span ±${maxAbsDiff(fp32, new Float64Array(fp32.length)).toFixed(2)})`);
    expect(dl).toBeGreaterThan(0); // the weights really are quantized
    ortWeb.env.wasm.numThreads = 1;
    const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    const feeds: Record<string, ortWeb.Tensor> = {
      input_ids: new ortWeb.Tensor('int64', BigInt64Array.from(SEQ, BigInt), [1, SEQ.length]),
      attention_mask: new ortWeb.Tensor('int64', BigInt64Array.from(SEQ, () => 1n), [1, SEQ.length]),
      position_ids: new ortWeb.Tensor('int64', BigInt64Array.from(SEQ, (_, i) => BigInt(i)), [1, SEQ.length]),
    };
    for (let l = 0; l < c.layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ortWeb.Tensor('float32', new Float32Array(0), [1, c.kvHeads, 0, c.headDim]);
    expectClose((await web.run(feeds)).logits!.data as Float32Array, ref.subarray(0, SEQ.length * V), `${mode} wasm prompt`);
  });

  it('the files: transformers.js names, ops, domains and initializer types', () => {
    const linears = toHfTensors(c, params).filter((t) => isLinearWeight(t.name, c.tieEmbeddings));
    const q8 = decodeOnnxModel(buildOnnxModel(c, params, 'q8')).graph;
    expect(q8.node.filter((n) => n.opType === 'DequantizeLinear').length).toBe(linears.length);
    expect(q8.initializer.filter((t) => t.dataType === 3).map((t) => t.name).sort()).toEqual(linears.map((t) => `${t.name}_quantized`).sort()); // 3 = INT8
    const q4m = decodeOnnxModel(buildOnnxModel(c, params, 'q4'));
    const nbits = q4m.graph.node.filter((n) => n.opType === 'MatMulNBits');
    expect(nbits.length).toBe(linears.filter((t) => t.shape[1]! % 32 === 0).length);
    expect(nbits.every((n) => n.domain === 'com.microsoft')).toBe(true);
    expect(q4m.model.opsetImport.map((o) => `${o.domain}:${Number(o.version)}`)).toEqual([':17', 'com.microsoft:1']);
    expect(ONNX_DTYPE_PATH).toEqual({ fp32: 'onnx/model.onnx', q8: 'onnx/model_quantized.onnx', q4: 'onnx/model_q4.onnx' });
  });
});

describe('transformers.js loads the q8 and q4 folders by dtype', { timeout: 120_000 }, () => {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const tokenizer = trainBpe(TRAINING_PARAGRAPH.split('\n').filter((l) => l.trim()), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const config = makeConfig({ vocabSize: 300, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, maxSeqLen: 64, initStd: 0.3, tieEmbeddings: false });
  const params = initParams(config, 12);

  it.each(['q8', 'q4'] as const)('%s: generate() = greedy refForward on the dequantized weights', async (mode) => {
    const files = exportModel({ config, params, tokenizer }, mode === 'q8' ? 'onnx-q8' : 'onnx-q4');
    expect(files.map((f) => f.path).filter((p) => p.startsWith('onnx/'))).toEqual([ONNX_DTYPE_PATH[mode]]);
    expect(JSON.parse(new TextDecoder().decode(files.find((f) => f.path === 'config.json')!.bytes))['transformers.js_config']).toEqual({ dtype: mode });
    const root = mkdtempSync(join(tmpdir(), 'onnx-quant-'));
    dirs.push(root);
    writeFiles(join(root, 'student'), files);
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const tok = await AutoTokenizer.from_pretrained('student');
    const model = await AutoModelForCausalLM.from_pretrained('student');
    try {
      const deq = dequantizedParams(config, params, mode);
      const ids = tokenizer.encode('The river ran slowly past the');
      let minMargin = Infinity;
      for (let s = 0; s < 8; s++) {
        const l = refForward(config, deq, Uint32Array.from(ids), 1, ids.length).logits.subarray((ids.length - 1) * 300);
        const order = [...l.keys()].sort((a, b) => l[b]! - l[a]!);
        minMargin = Math.min(minMargin, l[order[0]!]! - l[order[1]!]!);
        ids.push(order[0]!);
      }
      expect(minMargin, 'no near-ties on the greedy path').toBeGreaterThan(1e-3);
      const inputs = tok('The river ran slowly past the') as { input_ids: HfTensor; attention_mask: HfTensor };
      const out = (await model.generate({ ...inputs, max_new_tokens: 8, do_sample: false })) as HfTensor;
      expect(out.tolist()[0]!.map(Number)).toEqual(ids);
    } finally {
      await model.dispose();
    }
  });
});

describe('fixture teacher: quantized ONNX vs fp32 on held-out text (onnxruntime-node)', { timeout: 120_000 }, () => {
  const x = importedExportInput(importHfFolder(readFolder('tests/fixtures/brown-teacher-small')));
  const c = x.config;
  const [window] = heldOutWindows(x, 1, 96);
  const nllOf = (logits: Float32Array, ids: number[]) => {
    let nll = 0;
    for (let i = 0; i + 1 < ids.length; i++) {
      const row = logits.subarray(i * c.vocabSize, (i + 1) * c.vocabSize);
      let m = -Infinity;
      for (const v of row) m = Math.max(m, v);
      let s = 0;
      for (const v of row) s += Math.exp(v - m);
      nll += m + Math.log(s) - row[ids[i + 1]!]!;
    }
    return nll / (ids.length - 1);
  };
  const run = async (mode: OnnxWeights) => (await ortLogits(await ort.InferenceSession.create(buildOnnxModel(c, x.params, mode)), c, window!)).prompt;

  it('perplexity within 1% (q8) and 10% (q4) of fp32; logit differences reported', async () => {
    const fp32 = await run('fp32');
    const ppl = { fp32: Math.exp(nllOf(fp32, window!)) } as Record<OnnxWeights, number>;
    for (const mode of ['q8', 'q4'] as const) {
      const q = await run(mode);
      ppl[mode] = Math.exp(nllOf(q, window!));
      let agree = 0;
      for (let i = 0; i < window!.length; i++) {
        const arg = (a: Float32Array) => { let b = 0; for (let v = 1; v < c.vocabSize; v++) if (a[i * c.vocabSize + v]! > a[i * c.vocabSize + b]!) b = v; return b; };
        if (arg(q) === arg(fp32)) agree++;
      }
      let sum = 0;
      for (let i = 0; i < q.length; i++) sum += Math.abs(q[i]! - fp32[i]!);
      console.log(`fixture teacher ${mode}: ppl ${ppl[mode].toFixed(3)} vs fp32 ${ppl.fp32.toFixed(3)} (×${(ppl[mode] / ppl.fp32).toFixed(4)}), max |Δlogit| ${maxAbsDiff(q, fp32).toFixed(4)}, mean ${(sum / q.length).toFixed(4)}, top-1 agreement ${agree}/${window!.length}`);
    }
    expect(Math.abs(ppl.q8 / ppl.fp32 - 1)).toBeLessThan(0.01);
    expect(Math.abs(ppl.q4 / ppl.fp32 - 1)).toBeLessThan(0.1);
  });

  it('exportOnnxFolder writes only the dtype\'s graph', () => {
    expect(exportOnnxFolder(x, 'q4').map((f) => f.path).filter((p) => p.endsWith('.onnx'))).toEqual(['onnx/model_q4.onnx']);
  });
});
