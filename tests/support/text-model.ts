// The language model behind the test OpenAI server: the `TextModel` interface (so that later our trained student,
// run by onnxruntime-node on our ONNX export, can be served the same way) and `BigramModel`, a real but tiny
// byte-level bigram model (256 byte tokens + an end token, add-one smoothed counts) trained on a fixed paragraph.
// Also the chat-to-prompt rendering and the sampler the server uses, so tests can recompute what it served.

import { Rng } from '../../src/util/rng.ts';

export interface TextModel {
  readonly name: string;
  /** Vocabulary size (ids are 0..vocabSize-1). */
  readonly vocabSize: number;
  /** Id of the end-of-text token (sampling it ends the completion; it is never part of the text). */
  readonly endId: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** Text shown for one token in logprobs (may be a replacement character for part of a UTF-8 sequence). */
  tokenText(id: number): string;
  /** UTF-8 bytes of one token, or null for special tokens. */
  tokenBytes(id: number): number[] | null;
  /** Natural-log probabilities of the next token given the context (length vocabSize); async for real engines. */
  nextLogprobs(ids: number[]): Float32Array | Promise<Float32Array>;
}

/** Public-domain-style English prose (written for this file) the bigram model is trained on. */
export const TRAINING_PARAGRAPH = `
The river ran slowly past the old mill, and the miller's daughter sat on the bank to watch the water turn the wheel.
Every morning she carried bread to the village, and every evening she came home along the same narrow road.
The people of the village were kind to her, for she was honest and quick and never late with the bread.
In the spring the fields were green and the orchards were white with blossom, and the children ran to school.
In the summer the heat lay heavy on the hills, and the farmers worked from dawn until the light was gone.
In the autumn the apples were gathered and the wheat was brought to the mill to be ground into flour.
In the winter the snow fell softly on the roofs, and the river was quiet under a thin sheet of ice.
One year a stranger came to the village with a book of maps and a lantern that never went out.
He asked the miller's daughter the way to the mountains, and she told him to follow the river to its source.
He thanked her and said that he would return when he had found what he was looking for.
The seasons turned, and the stranger did not come back, and the people of the village began to forget him.
But the miller's daughter did not forget, and on clear nights she looked toward the mountains for his light.
At last, on a cold morning, a small light appeared on the far road, moving slowly toward the mill.
It was the stranger, tired and thin, and he carried the lantern and a bag of seeds from a distant valley.
He gave the seeds to the village, and in the spring they grew into tall trees with silver leaves.
The children played in their shade, the old men told stories under them, and the village was glad.
The miller's daughter planted one tree beside the mill, and it grew taller than the roof of the house.
When people asked her why she had waited so long for a stranger, she said that a promise is a kind of seed.
You plant it and you wait, and if the ground is good and the weather is kind, it grows into something true.
`;

const END = 256;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/**
 * Byte-level bigram model: P(next | last) = (count(last, next) + 1) / (count(last) + V), V = 257. The start of a
 * text is conditioned on the end token, so the model knows how sentences begin; each training sentence ends with
 * the end token, so sampling stops by itself. Weights are fixed: the same on every run.
 */
export class BigramModel implements TextModel {

  readonly vocabSize = 257;
  readonly endId = END;
  /** (V, V) row-major: logprob[prev * V + next]. */
  private readonly table: Float32Array;

  /** `name`: what the server serves it as (two models with different corpora make two teachers). */
  constructor(corpus: string = TRAINING_PARAGRAPH, readonly name = 'bigram-test-model') {
    const V = this.vocabSize;
    const counts = new Float64Array(V * V);
    const sentences = corpus.split(/(?<=[.!?])\s+/).map((s) => s.trim()).filter((s) => s !== '');
    for (const sentence of sentences) {
      const ids = [END, ...enc.encode(sentence), END];
      for (let i = 1; i < ids.length; i++) counts[ids[i - 1]! * V + ids[i]!]! += 1;
    }
    this.table = new Float32Array(V * V);
    for (let p = 0; p < V; p++) {
      let row = 0;
      for (let n = 0; n < V; n++) row += counts[p * V + n]!;
      for (let n = 0; n < V; n++) this.table[p * V + n] = Math.log((counts[p * V + n]! + 1) / (row + V));
    }
  }

  encode(text: string): number[] {
    return Array.from(enc.encode(text));
  }
  decode(ids: number[]): string {
    return dec.decode(Uint8Array.from(ids.filter((id) => id !== END)));
  }
  tokenText(id: number): string {
    if (id === END) return '<|end|>';
    return dec.decode(Uint8Array.of(id));
  }
  tokenBytes(id: number): number[] | null {
    return id === END ? null : [id];
  }
  nextLogprobs(ids: number[]): Float32Array {
    const prev = ids.length === 0 ? END : ids[ids.length - 1]!;
    if (!Number.isInteger(prev) || prev < 0 || prev >= this.vocabSize) throw new Error(`BigramModel: token id ${prev} out of range`);
    return this.table.slice(prev * this.vocabSize, (prev + 1) * this.vocabSize);
  }
}

/** Chat messages → the model's prompt: "role: content\n" per message, then "assistant: " to be continued. */
export function renderPrompt(messages: { role: string; content: string }[]): string {
  return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant: ';
}

/** Ids of the k most likely tokens, most likely first (ties: lower id first). */
export function topK(logprobs: Float32Array, k: number): number[] {
  const ids = Array.from(logprobs.keys());
  ids.sort((a, b) => logprobs[b]! - logprobs[a]! || a - b);
  return ids.slice(0, k);
}

/** One sampled completion: the generated ids (end token excluded) and whether the end token stopped it. */
export interface Sampled {
  ids: number[];
  /** Context-conditioned logprob vector at each generated position (for logprobs / top_logprobs). */
  dists: Float32Array[];
  ended: boolean;
}

/**
 * Samples up to maxTokens tokens after the prompt. temperature 0 = greedy; otherwise softmax(logprobs / T) with the
 * given Rng (so the same seed gives the same text). The reported logprobs are the model's own (T = 1).
 */
export async function sample(model: TextModel, promptIds: number[], maxTokens: number, temperature: number, rng: Rng): Promise<Sampled> {
  const ctx = promptIds.slice();
  const out: Sampled = { ids: [], dists: [], ended: false };
  while (out.ids.length < maxTokens) {
    const lp = await model.nextLogprobs(ctx);
    let id: number;
    if (temperature === 0) {
      id = topK(lp, 1)[0]!;
    } else {
      let max = -Infinity;
      for (const v of lp) max = Math.max(max, v / temperature);
      const w = Array.from(lp, (v) => Math.exp(v / temperature - max));
      let u = rng.next() * w.reduce((a, b) => a + b, 0);
      id = w.length - 1;
      for (let i = 0; i < w.length; i++) {
        u -= w[i]!;
        if (u < 0) {
          id = i;
          break;
        }
      }
    }
    if (id === model.endId) {
      out.ended = true;
      break;
    }
    out.ids.push(id);
    out.dists.push(lp);
    ctx.push(id);
  }
  return out;
}

/**
 * Word-level bigram model (a second kind of teacher for the test server): tokens are the lower-cased words of its
 * corpus (each token's text is the word and a space) and an end token; P(next | last) = (count + α) / (row + α·V).
 * A small α gives fluent, self-consistent prose (a good teacher); α = 1 on a small corpus gives near-random words
 * (a weak teacher of the same vocabulary). Words of a prompt that the model does not know are left out.
 */
export class WordBigramModel implements TextModel {
  readonly vocabSize: number;
  readonly endId: number;
  private readonly words: string[];
  private readonly ids: Map<string, number>;
  private readonly table: Float32Array;

  constructor(readonly name: string, alpha: number, corpus: string = TRAINING_PARAGRAPH) {
    const sentences = corpus.split(/(?<=[.!?])\s+/).map((s) => s.toLowerCase().match(/[a-z']+/g) ?? []).filter((s) => s.length > 0);
    this.words = [...new Set(sentences.flat())];
    this.ids = new Map(this.words.map((w, i) => [w, i]));
    const V = (this.vocabSize = this.words.length + 1);
    this.endId = V - 1;
    const counts = new Float64Array(V * V);
    for (const s of sentences) {
      const ids = [this.endId, ...s.map((w) => this.ids.get(w)!), this.endId];
      for (let i = 1; i < ids.length; i++) counts[ids[i - 1]! * V + ids[i]!]! += 1;
    }
    this.table = new Float32Array(V * V);
    for (let p = 0; p < V; p++) {
      let row = 0;
      for (let n = 0; n < V; n++) row += counts[p * V + n]!;
      for (let n = 0; n < V; n++) this.table[p * V + n] = Math.log((counts[p * V + n]! + alpha) / (row + alpha * V));
    }
  }

  encode(text: string): number[] {
    return (text.toLowerCase().match(/[a-z']+/g) ?? []).flatMap((w) => (this.ids.has(w) ? [this.ids.get(w)!] : []));
  }
  decode(ids: number[]): string {
    return ids.filter((id) => id !== this.endId).map((id) => this.tokenText(id)).join('');
  }
  tokenText(id: number): string {
    return id === this.endId ? '<|end|>' : `${this.words[id]!} `;
  }
  tokenBytes(id: number): number[] | null {
    return id === this.endId ? null : Array.from(enc.encode(this.tokenText(id)));
  }
  nextLogprobs(ids: number[]): Float32Array {
    // The prompt's last known word conditions the first answer word (render ends with "assistant:", unknown words
    // dropped): start as at a sentence's beginning.
    const prev = ids.length === 0 ? this.endId : ids[ids.length - 1]!;
    return this.table.slice(prev * this.vocabSize, (prev + 1) * this.vocabSize);
  }
}
