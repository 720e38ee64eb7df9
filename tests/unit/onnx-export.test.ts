// ONNX export (src/export/onnx.ts) checked by real runtimes against the CPU reference model (src/model/ref-model.ts):
// - onnxruntime-node runs the graph: logits within |Δ| ≤ 1e-4 + 1e-4·|ref| (atol + rtol·|ref|) of refForward for
//   tiny odd configs (tied and untied, GQA with H ≠ Hkv), B = 2 and odd S; with the KV cache (prompt, then one
//   and several tokens per call, each call compared with refForward on the whole prefix); with left padding in
//   attention_mask and position_ids as transformers.js computes them (cumsum − 1, padding → 1).
// - transformers.js in Node loads the exported folder (AutoModelForCausalLM + AutoTokenizer, and the
//   'text-generation' pipeline) and its greedy generate() yields exactly the ids of a greedy loop over refForward,
//   whose top-1/top-2 margins are asserted wide enough that float32 rounding cannot flip an argmax.
// - The file: opset-17 default-domain ops only, weights as raw_data initializers (no external data), the
//   input/output names and cache shapes transformers.js reads; bad inputs give errors naming what is wrong.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, pipeline, Tensor as HfTensor } from '@huggingface/transformers';
import { writeFiles } from '../../src/cli/export.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { buildOnnxModel, exportOnnxFolder, ONNX_MODEL_PATH, ONNX_OPSET } from '../../src/export/onnx.ts';
import { decodeOnnxModel } from '../../src/export/onnx-proto.ts';
import { trainBpe, type BpeTokenizer } from '../../src/tokenizer/bpe.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { TRAINING_PARAGRAPH } from '../support/text-model.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };

/** Tiny odd shapes: C = 24, H = 3 query heads sharing Hkv = 1 kv head (G = 3), D = 8, F = 40, V = 67. */
function tinyConfig(over: Record<string, unknown> = {}): ModelConfig {
  return makeConfig({ vocabSize: 67, hidden: 24, layers: 2, heads: 3, kvHeads: 1, headDim: 8, intermediate: 40, maxSeqLen: 32, initStd: 0.2, ...over });
}

const CONFIGS: Array<[string, ModelConfig]> = [
  ['tied, H=3 Hkv=1', tinyConfig()],
  ['untied, H=6 Hkv=2, θ=500', tinyConfig({ tieEmbeddings: false, heads: 6, kvHeads: 2, hidden: 20, ropeTheta: 500, rmsNormEps: 1e-3 })],
];

// ------------------------------------------------------------------------------------------ onnxruntime helpers

interface Step {
  logits: Float32Array; // (B, S, V)
  present: Record<string, ort.Tensor>; // renamed past_key_values.{l}.key|value, ready to feed back
}

const i64 = (rows: number[][]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);

/** One call of the graph; `past` null = empty cache (B, Hkv, 0, D), as transformers.js feeds on the first call. */
async function runStep(sess: ort.InferenceSession, c: ModelConfig, ids: number[][], mask: number[][], pos: number[][], past: Record<string, ort.Tensor> | null): Promise<Step> {
  const B = ids.length;
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(mask), position_ids: i64(pos) };
  for (let l = 0; l < c.layers; l++) {
    for (const kv of ['key', 'value']) {
      const name = `past_key_values.${l}.${kv}`;
      feeds[name] = past ? past[name]! : new ort.Tensor('float32', new Float32Array(0), [B, c.kvHeads, 0, c.headDim]);
    }
  }
  const out = await sess.run(feeds);
  const present: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(out)) {
    if (k.startsWith('present.')) {
      const data = v.data as Float32Array;
      expect(data.every(Number.isFinite), `${k} finite`).toBe(true);
      present[k.replace('present', 'past_key_values')] = v;
    }
  }
  const logits = out.logits!.data as Float32Array;
  expect(out.logits!.dims).toEqual([B, ids[0]!.length, c.vocabSize]);
  expect(logits.every(Number.isFinite), 'logits finite (padded rows included)').toBe(true);
  return { logits, present };
}

/** refForward logits (T, V) of one unpadded sequence. */
function refLogits(c: ModelConfig, params: Float32Array, seq: number[]): Float64Array {
  return refForward(c, params, Uint32Array.from(seq), 1, seq.length).logits;
}

/** Rows [from, to) of a (rows, V) matrix. */
const rows = (a: ArrayLike<number>, V: number, from: number, to: number): number[] => Array.from(a).slice(from * V, to * V);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const r = compareArrays(actual, expected, TOL);
  expect(r.ok, `${what}: ${r.failures}/${r.count} outside ${TOL.atol} + ${TOL.rtol}·|ref|, max |Δ| ${r.maxAbsErr}, worst ${r.worstActual} vs ${r.worstExpected}`).toBe(true);
}

function randomIds(seed: number, n: number, V: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s % V));
}

// ------------------------------------------------------------------------------------------ graph vs reference

describe.each(CONFIGS)('onnxruntime-node runs the export (%s)', (_name, c) => {
  const params = initParams(c, 7);
  const sessP = ort.InferenceSession.create(buildOnnxModel(c, params));
  const V = c.vocabSize;

  it('matches refForward on a batch of 2 × 5 tokens without a past', async () => {
    const sess = await sessP;
    const seqs = [randomIds(1, 5, V), randomIds(2, 5, V)];
    const { logits } = await runStep(sess, c, seqs, seqs.map((s) => s.map(() => 1)), seqs.map((s) => s.map((_, t) => t)), null);
    const ref = refForward(c, params, Uint32Array.from(seqs.flat()), 2, 5).logits;
    expectClose(logits, ref, 'B=2 S=5 logits');
  });

  it('matches refForward on the whole prefix at every KV-cache step (1 and several tokens per call)', async () => {
    const sess = await sessP;
    const full = [randomIds(3, 17, V), randomIds(4, 17, V)];
    let P = 0;
    let past: Record<string, ort.Tensor> | null = null;
    for (const n of [5, 1, 3, 1, 2, 1, 1, 3]) { // prompt of 5, then 12 more tokens in calls of 1–3
      const ids = full.map((s) => s.slice(P, P + n));
      const mask = full.map(() => Array(P + n).fill(1));
      const pos = full.map(() => Array.from({ length: n }, (_, i) => P + i));
      const step = await runStep(sess, c, ids, mask, pos, past);
      for (let b = 0; b < 2; b++) {
        const ref = refLogits(c, params, full[b]!.slice(0, P + n));
        expectClose(rows(step.logits, V, b * n, (b + 1) * n), rows(ref, V, P, P + n), `row ${b}, tokens ${P}..${P + n - 1}`);
      }
      expect(step.present['past_key_values.0.key']!.dims).toEqual([2, c.kvHeads, P + n, c.headDim]);
      past = step.present;
      P += n;
    }
  });

  it('respects left padding in attention_mask, with position_ids as transformers.js computes them', async () => {
    const sess = await sessP;
    // Row 0: 3 pads then 2 tokens; row 1: 5 tokens. Pads use different ids per column: they must not matter.
    const real = [randomIds(5, 2, V), randomIds(6, 5, V)];
    let ids = [[0, 5, 9, ...real[0]!], real[1]!];
    let mask = [[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]];
    const positions = (m: number[][]): number[][] => m.map((r) => { let s = 0; return r.map((v) => (v ? s++ : 1)); }); // cumsum − 1, pads → 1
    let step = await runStep(sess, c, ids, mask, positions(mask), null);
    expectClose(rows(step.logits, V, 3, 5), refLogits(c, params, real[0]!), 'padded row 0');
    expectClose(rows(step.logits, V, 5, 10), refLogits(c, params, real[1]!), 'unpadded row 1');

    // Then decode with the cache: 1, 2, 1 tokens; the mask grows by ones, positions continue per row.
    const more = [randomIds(7, 4, V), randomIds(8, 4, V)];
    let done = 0;
    for (const n of [1, 2, 1]) {
      ids = more.map((m) => m.slice(done, done + n));
      mask = mask.map((r) => [...r, ...Array(n).fill(1)]);
      const pos = positions(mask).map((r) => r.slice(-n));
      step = await runStep(sess, c, ids, mask, pos, step.present);
      done += n;
      for (let b = 0; b < 2; b++) {
        const prefix = [...real[b]!, ...more[b]!.slice(0, done)];
        const ref = refLogits(c, params, prefix);
        expectClose(rows(step.logits, V, b * n, (b + 1) * n), rows(ref, V, prefix.length - n, prefix.length), `row ${b} after ${done} cached steps`);
      }
    }
  });

  it('uses position_ids: shifting them changes the logits exactly as the reference at that offset does', async () => {
    const sess = await sessP;
    // Tokens 0..3 of a sequence are fed as a 4-token past, then token 4 at position 4 — and also at position 9
    // (as if 5 padded slots preceded it): the two runs must differ, and the first one must match the reference.
    const seq = randomIds(9, 5, V);
    const first = await runStep(sess, c, [seq.slice(0, 4)], [[1, 1, 1, 1]], [[0, 1, 2, 3]], null);
    const right = await runStep(sess, c, [seq.slice(4)], [[1, 1, 1, 1, 1]], [[4]], first.present);
    const shifted = await runStep(sess, c, [seq.slice(4)], [[1, 1, 1, 1, 1]], [[9]], first.present);
    expectClose(right.logits, rows(refLogits(c, params, seq), V, 4, 5), 'position 4');
    const maxDiff = right.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - shifted.logits[i]!)), 0);
    expect(maxDiff).toBeGreaterThan(1e-3);
  });
});

describe('onnxruntime-web (wasm, the browser backend) runs the export', () => {
  it('with the same logits as refForward, including a cached step', async () => {
    ortWeb.env.wasm.numThreads = 1;
    const c = CONFIGS[1]![1];
    const params = initParams(c, 5);
    const sess = await ortWeb.InferenceSession.create(buildOnnxModel(c, params), { executionProviders: ['wasm'] });
    const seq = randomIds(10, 6, c.vocabSize);
    const web = (data: BigInt64Array | Float32Array, dims: number[]) => new ortWeb.Tensor(data instanceof Float32Array ? 'float32' : 'int64', data, dims) as ortWeb.Tensor;
    const ids = (a: number[]) => web(BigInt64Array.from(a, (v) => BigInt(v)), [1, a.length]);
    const feeds: Record<string, ortWeb.Tensor> = { input_ids: ids(seq.slice(0, 5)), attention_mask: ids([1, 1, 1, 1, 1]), position_ids: ids([0, 1, 2, 3, 4]) };
    for (let l = 0; l < c.layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = web(new Float32Array(0), [1, c.kvHeads, 0, c.headDim]);
    const first = await sess.run(feeds);
    const ref = refLogits(c, params, seq);
    expectClose(first.logits!.data as Float32Array, rows(ref, c.vocabSize, 0, 5), 'wasm prompt');
    const next: Record<string, ortWeb.Tensor> = { input_ids: ids([seq[5]!]), attention_mask: ids([1, 1, 1, 1, 1, 1]), position_ids: ids([5]) };
    for (const [k, v] of Object.entries(first)) if (k.startsWith('present.')) next[k.replace('present', 'past_key_values')] = v;
    const second = await sess.run(next);
    expectClose(second.logits!.data as Float32Array, rows(ref, c.vocabSize, 5, 6), 'wasm cached step');
    await sess.release();
  });
});

// ------------------------------------------------------------------------------------------ the file itself

describe('the ONNX file', () => {
  const c = tinyConfig({ tieEmbeddings: false });
  const params = initParams(c, 3);
  const { model, graph: g } = decodeOnnxModel(buildOnnxModel(c, params));

  it('uses only standard opset-17 ops of the default domain', () => {
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', ONNX_OPSET]]);
    const allowed = new Set(['Add', 'Cast', 'Concat', 'Cos', 'Equal', 'Gather', 'Gemm', 'Greater', 'MatMul', 'Mul', 'Neg', 'Or', 'Range',
      'Reciprocal', 'ReduceMean', 'Reshape', 'Shape', 'Sigmoid', 'Sin', 'Softmax', 'Split', 'Sqrt', 'Sub', 'Transpose', 'Unsqueeze', 'Where']);
    for (const n of g.node) {
      expect(n.domain ?? '').toBe('');
      expect(allowed.has(n.opType!), `op ${n.opType}`).toBe(true);
    }
  });

  it('declares the inputs, outputs and cache shapes transformers.js reads', () => {
    const dims = (v: (typeof g.input)[number]) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(g.input.map((v) => v.name)).toEqual(['input_ids', 'attention_mask', 'position_ids',
      'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    expect(g.output.map((v) => v.name).sort()).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
    // An empty cache is built from these: 'batch_size' → B, other names → 0; Hkv and D must be numbers.
    expect(dims(g.input[3]!)).toEqual(['batch_size', c.kvHeads, 'past_sequence_length', c.headDim]);
    expect(dims(g.output.find((o) => o.name === 'logits')!)).toEqual(['batch_size', 'sequence_length', c.vocabSize]);
  });

  it('stores every weight as raw float32 data under its HF name, nothing external', () => {
    const inits = new Map(g.initializer.map((t) => [t.name!, t]));
    const wq = inits.get('model.layers.1.self_attn.q_proj.weight')!;
    expect(wq.dims!.map(Number)).toEqual([c.heads * c.headDim, c.hidden]);
    expect(inits.has('lm_head.weight')).toBe(true);
    for (const t of g.initializer) {
      expect((t.externalData ?? []).length, t.name!).toBe(0);
      expect(t.rawData?.length ?? 0, t.name!).toBeGreaterThan(0);
    }
    const tied = decodeOnnxModel(buildOnnxModel(tinyConfig(), initParams(tinyConfig(), 3))).graph;
    expect(tied.initializer.some((t) => t.name === 'lm_head.weight')).toBe(false); // tied: wte serves both
  });

  it('rejects bad inputs with errors that say what is wrong', () => {
    expect(() => buildOnnxModel(c, params.subarray(0, 100))).toThrow(/slab has 100 floats/);
    expect(() => decodeOnnxModel(Uint8Array.of(0xff, 0xff, 0xff, 0x0f), 'x.onnx')).toThrow(/x\.onnx: not a valid ONNX protobuf/);
  });
});

// ------------------------------------------------------------------------------------------ transformers.js

describe('transformers.js generates from the exported folder', () => {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  const tokenizer: BpeTokenizer = trainBpe(TRAINING_PARAGRAPH.split('\n').filter((l) => l.trim()), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const EOS = tokenizer.tokenToId('<|endoftext|>')!;

  /** Writes the export into a fresh temp dir and points transformers.js at it (local files only). */
  function writeFolder(config: ModelConfig, params: Float32Array): string {
    const root = mkdtempSync(join(tmpdir(), 'onnx-export-'));
    dirs.push(root);
    writeFiles(join(root, 'student'), exportOnnxFolder({ config, params, tokenizer }));
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = root;
    return 'student';
  }

  /** Greedy decoding by refForward over the whole prefix; also the smallest top-1 − top-2 logit margin seen. */
  function refGreedy(c: ModelConfig, params: Float32Array, prompt: number[], steps: number): { ids: number[]; minMargin: number } {
    const ids = [...prompt];
    let minMargin = Infinity;
    for (let s = 0; s < steps; s++) {
      const logits = refLogits(c, params, ids);
      const last = logits.subarray((ids.length - 1) * c.vocabSize, ids.length * c.vocabSize);
      let best = 0;
      for (let v = 1; v < last.length; v++) if (last[v]! > last[best]!) best = v;
      let second = -Infinity;
      for (let v = 0; v < last.length; v++) if (v !== best) second = Math.max(second, last[v]!);
      minMargin = Math.min(minMargin, last[best]! - second);
      ids.push(best);
      if (best === EOS) break;
    }
    return { ids, minMargin };
  }

  // V = 301 > the tokenizer's 300 (an unused embedding row, as after vocabulary padding); GQA, untied.
  const config = makeConfig({ vocabSize: 301, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, maxSeqLen: 64, initStd: 0.3, tieEmbeddings: false });
  const params = initParams(config, 12); // seed picked so neither prompt reaches EOS within 12 steps (margins ≥ 0.05)
  const PROMPTS = ['The river ran slowly past the', 'In the winter'];
  const NEW = 12;

  it('AutoModelForCausalLM.generate (greedy, batch of 1 and a left-padded batch of 2) = greedy refForward', async () => {
    const name = writeFolder(config, params);
    const tok = await AutoTokenizer.from_pretrained(name);
    const model = await AutoModelForCausalLM.from_pretrained(name);
    try {
      const want: number[][] = [];
      for (const prompt of PROMPTS) {
        const prompt_ids = tokenizer.encode(prompt);
        const ref = refGreedy(config, params, prompt_ids, NEW);
        expect(ref.minMargin, 'no near-ties on the greedy path').toBeGreaterThan(1e-3);
        expect(ref.ids.length, 'no EOS in the reference continuation (the comparison covers all 12 steps)').toBe(prompt_ids.length + NEW);
        want.push(ref.ids);

        const inputs = tok(prompt) as { input_ids: HfTensor; attention_mask: HfTensor };
        expect(Array.from(inputs.input_ids.data as BigInt64Array, Number)).toEqual(prompt_ids);
        const out = (await model.generate({ ...inputs, max_new_tokens: NEW, do_sample: false })) as HfTensor;
        expect(out.tolist()[0]!.map(Number)).toEqual(ref.ids);
      }

      // Batched: the shorter prompt is left-padded (pad = EOS id); position_ids come from the mask.
      tok.padding_side = 'left';
      const batch = tok(PROMPTS, { padding: true }) as { input_ids: HfTensor; attention_mask: HfTensor };
      const width = batch.input_ids.dims[1]!;
      const out = ((await model.generate({ ...batch, max_new_tokens: NEW, do_sample: false })) as HfTensor).tolist() as bigint[][];
      for (let b = 0; b < 2; b++) {
        const pad = width - (want[b]!.length - NEW);
        expect(out[b]!.slice(pad).map(Number), `batch row ${b}`).toEqual(want[b]);
      }
    } finally {
      await model.dispose();
    }
  }, 120_000);

  it("pipeline('text-generation') continues the prompt with the reference's greedy text", async () => {
    const name = writeFolder(config, params);
    const generator = await pipeline('text-generation', name);
    try {
      const prompt = PROMPTS[0]!;
      const ref = refGreedy(config, params, tokenizer.encode(prompt), NEW);
      const out = (await generator(prompt, { max_new_tokens: NEW, do_sample: false })) as Array<{ generated_text: string }>;
      expect(out[0]!.generated_text).toBe(tokenizer.decode(ref.ids));
    } finally {
      await generator.dispose();
    }
  }, 120_000);

  it('writes the folder layout transformers.js expects (fp32 model.onnx, no external data)', () => {
    const files = exportOnnxFolder({ config, params, tokenizer });
    expect(files.map((f) => f.path).sort()).toEqual(['config.json', 'generation_config.json', ONNX_MODEL_PATH, 'tokenizer.json', 'tokenizer_config.json']);
    const cfg = JSON.parse(new TextDecoder().decode(files.find((f) => f.path === 'config.json')!.bytes)) as Record<string, unknown>;
    expect(cfg['transformers.js_config']).toEqual({ dtype: 'fp32' });
    expect(cfg.num_key_value_heads).toBe(2);
    expect(cfg.head_dim).toBe(8);
    const small = makeConfig({ ...config, vocabSize: 200 });
    expect(() => exportOnnxFolder({ config: small, params: initParams(small, 1), tokenizer })).toThrow(/tokenizer has 300 tokens/);
  });
});
