// Quantized GGUF benchmark (issue #22; no GPU): the size of each GGUF export of a model and llama.cpp's perplexity
// with it on held-out Brown text (every 10th Brown file, the split the default teachers were trained without).
// Each format is our export (src/export/gguf.ts), loaded by llama.cpp (npm node-llama-cpp, prebuilt CPU build,
// F32 KV cache); the text is tokenized by our tokenizer, paragraphs joined by the end-of-text token as in training,
// cut into windows of `windowTokens`, each window evaluated from a fresh context; perplexity = exp(mean NLL) over
// every predicted token (log-softmax of llama.cpp's logits, in double). ratio = ppl / ppl(F16).
// The ONNX exports (fp32, q8, q4: src/export/onnx-quant.ts) are measured the same way with onnxruntime-node
// (onnxRows; ratio = ppl / ppl(fp32)).
//   npm run bench:quant -- [--model public/models/brown-teacher]
//        [--windows 16] [--window-tokens 128] [--out bench/quant-<model>-<date>.json]
// bench/quant-brown-teacher-2026-12-06.json: the shipped teacher, --windows 32 (4064 predicted tokens), 2 CPU cores.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { readFolder } from '../src/cli/export.ts';
import { brownParagraphs } from '../src/data/brown-files.ts';
import { buildGguf, type GgufDtype } from '../src/export/gguf.ts';
import { importedExportInput, importHfFolder } from '../src/export/import.ts';
import type { ExportInput } from '../src/export/types.ts';
import * as ort from 'onnxruntime-node';
import { buildOnnxModel } from '../src/export/onnx.ts';
import type { OnnxWeights } from '../src/export/onnx-quant.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { closeLlamaCpp, loadLlamaCppModel } from '../tests/support/llama-cpp.ts';

export const QUANT_BENCH_FORMATS: GgufDtype[] = ['F32', 'F16', 'Q8_0', 'Q4_K_M', 'Q4_0'];

export interface QuantBenchOptions {
  /** An HF Llama folder (config.json, model.safetensors, tokenizer.json). */
  model: string;
  windows: number;
  windowTokens: number;
  formats?: GgufDtype[];
  /** ONNX weight storages to measure too (default none). */
  onnx?: OnnxWeights[];
}

export interface OnnxBenchRow {
  weights: OnnxWeights;
  bytes: number;
  ppl: number;
  /** ppl / ppl(fp32) (null without an fp32 row). */
  ratio: number | null;
}

export interface QuantBenchRow {
  dtype: GgufDtype;
  bytes: number;
  /** Seconds our exporter took to build the file. */
  exportSeconds: number;
  ppl: number;
  /** ppl / ppl(F16) (null without an F16 row). */
  ratio: number | null;
}

export interface QuantBenchResult {
  model: string;
  params: number;
  heldOut: { files: string; windows: number; windowTokens: number; predictedTokens: number };
  rows: QuantBenchRow[];
  onnxRows: OnnxBenchRow[];
}

/** Held-out Brown token windows: every 10th file's paragraphs, encoded, joined by `eos`, cut into windows. */
export function heldOutWindows(x: ExportInput, windows: number, windowTokens: number): number[][] {
  const ids: number[] = [];
  const eos = x.tokenizer.tokenToId('<|endoftext|>');
  if (eos === undefined) throw new Error('quant bench: the tokenizer has no <|endoftext|> to join texts');
  for (const p of brownParagraphs('held-out')) {
    ids.push(...x.tokenizer.encode(p), eos);
    if (ids.length >= windows * windowTokens) return Array.from({ length: windows }, (_, w) => ids.slice(w * windowTokens, (w + 1) * windowTokens));
  }
  throw new Error(`quant bench: the held-out text has only ${ids.length} tokens, ${windows}×${windowTokens} asked`);
}

/** llama.cpp's perplexity on the windows of a GGUF file. */
export async function llamaCppPerplexity(path: string, vocabSize: number, windows: number[][]): Promise<{ ppl: number; tokens: number }> {
  const model = await loadLlamaCppModel(path, vocabSize, Math.max(...windows.map((w) => w.length)));
  try {
    let nll = 0, n = 0;
    for (const ids of windows) {
      const pos = await model.evaluate(ids);
      for (let i = 0; i + 1 < ids.length; i++) {
        const l = pos[i]!.logits;
        let max = -Infinity;
        for (const v of l) if (v > max) max = v;
        let sum = 0;
        for (const v of l) sum += Math.exp(v - max);
        const target = l[ids[i + 1]!]!;
        if (!Number.isFinite(target) || !Number.isFinite(sum)) throw new Error(`quant bench: no finite logit for token ${ids[i + 1]} at position ${i} of ${path}`);
        nll += max + Math.log(sum) - target;
        n++;
      }
    }
    return { ppl: Math.exp(nll / n), tokens: n };
  } finally {
    await model.dispose();
  }
}

/** Mean NLL of each next token of `ids` under row-major logits (ids.length, V). */
function windowNll(logits: ArrayLike<number>, ids: number[], V: number): number {
  let nll = 0;
  for (let i = 0; i + 1 < ids.length; i++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[i * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[i * V + v]! - max);
    nll += max + Math.log(sum) - logits[i * V + ids[i + 1]!]!;
  }
  return nll;
}

/** onnxruntime-node's perplexity on the windows of an ONNX export (each window from an empty KV cache). */
export async function onnxPerplexity(bytes: Uint8Array, c: ModelConfig, windows: number[][]): Promise<number> {
  const sess = await ort.InferenceSession.create(bytes);
  const i64 = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [1, a.length]);
  let nll = 0, n = 0;
  for (const ids of windows) {
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(ids.map(() => 1)), position_ids: i64(ids.map((_, i) => i)) };
    for (let l = 0; l < c.layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.kvHeads, 0, c.headDim]);
    nll += windowNll((await sess.run(feeds)).logits!.data as Float32Array, ids, c.vocabSize);
    n += ids.length - 1;
  }
  await sess.release();
  return Math.exp(nll / n);
}

export async function runQuantBench(o: QuantBenchOptions): Promise<QuantBenchResult> {
  const x = importedExportInput(importHfFolder(readFolder(o.model)), 'quant bench');
  const windows = heldOutWindows(x, o.windows, o.windowTokens);
  const dir = join(tmpdir(), `quant-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const rows: QuantBenchRow[] = [];
  let tokens = 0;
  for (const dtype of o.formats ?? QUANT_BENCH_FORMATS) {
    const t0 = performance.now();
    const bytes = buildGguf(x, { dtype });
    const exportSeconds = (performance.now() - t0) / 1000;
    const path = join(dir, `model-${dtype}.gguf`);
    writeFileSync(path, bytes);
    const r = await llamaCppPerplexity(path, x.config.vocabSize, windows);
    tokens = r.tokens;
    rows.push({ dtype, bytes: bytes.length, exportSeconds: Math.round(exportSeconds * 100) / 100, ppl: r.ppl, ratio: null });
  }
  const f16 = rows.find((r) => r.dtype === 'F16');
  for (const r of rows) r.ratio = f16 ? r.ppl / f16.ppl : null;
  const onnxRows: OnnxBenchRow[] = [];
  for (const weights of o.onnx ?? []) {
    const bytes = buildOnnxModel(x.config, x.params, weights);
    onnxRows.push({ weights, bytes: bytes.length, ppl: await onnxPerplexity(bytes, x.config, windows), ratio: null });
  }
  const fp32 = onnxRows.find((r) => r.weights === 'fp32');
  for (const r of onnxRows) r.ratio = fp32 ? r.ppl / fp32.ppl : null;
  return {
    model: o.model, params: x.params.length,
    heldOut: { files: 'Brown files numbered 10, 20, … (every 10th)', windows: o.windows, windowTokens: o.windowTokens, predictedTokens: tokens },
    rows, onnxRows,
  };
}

async function main(argv: string[]): Promise<void> {
  const get = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
  const model = get('model') ?? 'public/models/brown-teacher';
  const res = await runQuantBench({ model, windows: Number(get('windows') ?? 16), windowTokens: Number(get('window-tokens') ?? 128), onnx: ['fp32', 'q8', 'q4'] });
  await closeLlamaCpp();
  for (const r of res.rows) console.log(`${r.dtype.padEnd(7)} ${(r.bytes / 1e6).toFixed(2).padStart(7)} MB  ppl ${r.ppl.toFixed(3).padStart(8)}  ×F16 ${r.ratio?.toFixed(4)}  (export ${r.exportSeconds} s)`);
  for (const r of res.onnxRows) console.log(`onnx ${r.weights.padEnd(4)} ${(r.bytes / 1e6).toFixed(2).padStart(7)} MB  ppl ${r.ppl.toFixed(3).padStart(8)}  ×fp32 ${r.ratio?.toFixed(4)}`);
  const out = get('out') ?? `bench/quant-${basename(model)}-${new Date().toISOString().slice(0, 10)}.json`;
  writeFileSync(out, JSON.stringify({ suite: 'quant', date: new Date().toISOString(), ...res }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

if (process.argv[1] && /quant\.(mjs|ts)$/.test(process.argv[1])) await main(process.argv.slice(2));
