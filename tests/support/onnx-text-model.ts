// A TextModel served by a real inference engine: onnxruntime-node running our ONNX export (the transformers.js
// layout: input_ids / attention_mask / position_ids / past_key_values.{i}.key|value → logits / present.*), with our
// tokenizer. The KV cache is kept between calls: when the next context extends the last one (the usual case while
// sampling) only the new tokens run; otherwise the cache restarts from an empty past.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BpeTokenizer } from '../../src/tokenizer/bpe.ts';
import { logSoftmaxRow } from '../../src/util/logsoftmax.ts';
import type { TextModel } from './text-model.ts';

interface HfConfig {
  num_hidden_layers: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
  eos_token_id: number | null;
}

export class OnnxTextModel implements TextModel {
  readonly vocabSize: number;
  readonly endId: number;
  private ids: number[] = [];
  private past = new Map<string, ort.Tensor>();
  private lastLogprobs: Float32Array | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
    private readonly tok: BpeTokenizer,
    private readonly cfg: HfConfig,
  ) {
    this.vocabSize = cfg.vocab_size;
    if (cfg.eos_token_id === null) throw new Error(`${name}: config.json has no eos_token_id`);
    this.endId = cfg.eos_token_id;
  }

  /** Loads `<dir>/onnx/model.onnx`, `config.json` and `tokenizer.json` of an exported folder. */
  static async load(dir: string, name = 'brown-teacher'): Promise<OnnxTextModel> {
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig;
    const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')));
    const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
    return new OnnxTextModel(name, session, tok, cfg);
  }

  encode(text: string): number[] {
    return this.tok.encode(text);
  }
  decode(ids: number[]): string {
    return this.tok.decode(ids.filter((id) => id !== this.endId));
  }
  tokenText(id: number): string {
    return id === this.endId ? '<|endoftext|>' : this.tok.decode([id]);
  }
  tokenBytes(id: number): number[] | null {
    const b = this.tok.idToBytes(id);
    if (b === undefined) throw new Error(`${this.name}: unknown token id ${id}`);
    return id === this.endId ? null : Array.from(b);
  }

  nextLogprobs(ids: number[]): Promise<Float32Array> {
    // One session run at a time: the cache belongs to one sequence.
    const run = this.queue.then(() => this.step(ids));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private emptyPast(): Map<string, ort.Tensor> {
    const m = new Map<string, ort.Tensor>();
    for (let l = 0; l < this.cfg.num_hidden_layers; l++) {
      for (const kv of ['key', 'value']) {
        m.set(`past_key_values.${l}.${kv}`, new ort.Tensor('float32', new Float32Array(0), [1, this.cfg.num_key_value_heads, 0, this.cfg.head_dim]));
      }
    }
    return m;
  }

  private async step(ids: number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new Error(`${this.name}: empty context`);
    const extends_ = ids.length > this.ids.length && this.ids.every((v, i) => ids[i] === v) && this.ids.length > 0;
    if (ids.length === this.ids.length && ids.every((v, i) => this.ids[i] === v) && this.lastLogprobs) return this.lastLogprobs;
    const pastLen = extends_ ? this.ids.length : 0;
    const past = extends_ ? this.past : this.emptyPast();
    const fresh = ids.slice(pastLen);
    const S = fresh.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(fresh, BigInt), [1, S]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(pastLen + S).fill(1n), [1, pastLen + S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(pastLen + i)), [1, S]),
    };
    for (const [k, v] of past) feeds[k] = v;
    const names = new Set(this.session.inputNames);
    for (const k of Object.keys(feeds)) if (!names.has(k)) delete feeds[k];
    const out = await this.session.run(feeds);
    const logits = out.logits!.data as Float32Array;
    const V = this.vocabSize;
    const lp = new Float32Array(V);
    logSoftmaxRow(logits, (S - 1) * V, V, lp);
    const next = new Map<string, ort.Tensor>();
    for (const k of past.keys()) next.set(k, out[k.replace('past_key_values', 'present')]!);
    this.past = next;
    this.ids = ids.slice();
    this.lastLogprobs = lp;
    return lp;
  }
}
