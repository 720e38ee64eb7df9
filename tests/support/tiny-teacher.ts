// A tiny exported teacher for the local-teacher tests (Node and Chromium): a BPE tokenizer trained on a few
// sentences, a 2-layer GQA student with seeded weights scaled up (so argmaxes are decisive) and norm weights
// perturbed (so a missing norm weight shows), exported by exportOnnxFolder; plus the oracles, all on
// src/model/ref-model.ts's float64 forward: greedy and seeded-sampling loops, and log-softmax rows.
import { rmSync } from 'node:fs';
import { writeFiles } from '../../src/cli/export.ts';
import { exportOnnxFolder } from '../../src/export/onnx.ts';
import type { ExportFile } from '../../src/export/types.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { argmax, sampleToken, type SamplingConfig } from '../../src/model/sampling.ts';
import { trainBpe, type BpeTokenizer } from '../../src/tokenizer/bpe.ts';
import { Rng } from '../../src/util/rng.ts';

export const TINY_TEXT = [
  'The teacher reads the book and the student writes the answer.',
  'A small model learns from a large one, one token at a time.',
  'Distillation moves knowledge from the teacher to the student.',
  'The quick brown fox jumps over the lazy dog near the river bank.',
  'Numbers like 12, 345 and 6789 appear in the text as well.',
];

export interface TinyTeacher {
  config: ModelConfig;
  params: Float32Array;
  tokenizer: BpeTokenizer;
  files: ExportFile[];
  eosId: number;
}

export function tinyTeacher(seed = 11, scale = 20): TinyTeacher {
  const tokenizer = trainBpe(TINY_TEXT, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const config = makeConfig({
    vocabSize: tokenizer.vocabSize, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, maxSeqLen: 64,
  });
  const params = initParams(config, seed);
  const rng = new Rng(seed + 1000);
  for (const e of paramLayout(config).entries) {
    for (let i = e.offset; i < e.offset + e.size; i++) {
      params[i] = e.init === 'normal' ? params[i]! * scale : 1 + 0.3 * (rng.next() * 2 - 1);
    }
  }
  const files = exportOnnxFolder({ config, params, tokenizer });
  return { config, params, tokenizer, files, eosId: tokenizer.tokenToId('<|endoftext|>')! };
}

export function writeFolder(dir: string, files: ExportFile[]): void {
  rmSync(dir, { recursive: true, force: true });
  writeFiles(dir, files);
}

/** float64 logits (T, V) of one sequence. */
export function refLogits(t: TinyTeacher, ids: readonly number[]): Float64Array {
  return refForward(t.config, t.params, Uint32Array.from(ids), 1, ids.length).logits;
}

/** log_softmax of every row of refLogits: (T, V). */
export function refLogprobs(t: TinyTeacher, ids: readonly number[]): Float64Array {
  const V = t.config.vocabSize;
  const lg = refLogits(t, ids);
  const out = new Float64Array(lg.length);
  for (let r = 0; r < ids.length; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, lg[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(lg[r * V + v]! - max);
    const lse = max + Math.log(s);
    for (let v = 0; v < V; v++) out[r * V + v] = lg[r * V + v]! - lse;
  }
  return out;
}

/**
 * The reference decode loop: each step reruns refForward over the whole sequence and picks the next token from
 * the last row, greedily (sampling undefined) or with sampleToken and Rng(seed). Stops after maxNew tokens or
 * at eos (included). Returns the new ids and, per step, the margin between the best and second-best logit.
 */
export function refDecode(t: TinyTeacher, prompt: readonly number[], maxNew: number, sampling?: SamplingConfig & { seed: number }): { ids: number[]; margins: number[] } {
  const V = t.config.vocabSize;
  const seq = [...prompt];
  const ids: number[] = [];
  const margins: number[] = [];
  const rng = sampling ? new Rng(sampling.seed) : undefined;
  for (let s = 0; s < maxNew; s++) {
    const lg = refLogits(t, seq);
    const row = lg.subarray((seq.length - 1) * V, seq.length * V);
    const sorted = Float64Array.from(row).sort().reverse();
    margins.push(sorted[0]! - sorted[1]!);
    const next = sampling && rng
      ? sampleToken(row, { temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP, rng })
      : argmax(row);
    seq.push(next);
    ids.push(next);
    if (next === t.eosId) break;
  }
  return { ids, margins };
}
