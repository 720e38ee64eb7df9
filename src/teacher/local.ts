// LocalTeacher: a text-generation model run by transformers.js (ONNX Runtime: WebGPU in a browser that has an
// adapter, else WASM; onnxruntime-node's CPU backend in Node), in the teacher's own tokenizer. Loads from a URL
// folder served with the app, a Hub id, or files the user picked (local-source.ts). It offers
//   generate(prompt | ids)    transformers.js's own generate() with its KV cache: greedy search as is; sampling by
//                             a logits processor that draws with our seeded sampler (src/model/sampling.ts:
//                             temperature, top-k, top-p, one Rng per call), so a seed gives the same tokens here,
//                             in the worker and in our GPU Generator;
//   distributions(ids, {k})   one forward pass over the whole sequence; per position the top-k ids and
//                             log-probabilities (log-softmax computed here in float64 from the logits), the
//                             log-probability of the next given token, and optionally the dense (T, V) rows;
//   checkTokenAlignment(student)  whether those distributions are in the student's ids (src/tokenizer/align.ts:
//                             every id's token and probe texts compared), with the message to show when they are
//                             not (token-level KD unavailable: SeqKD instead); tokenizerFiles() gives the
//                             teacher's own tokenizer.json/tokenizer_config.json to build such a student on;
//   chat(messages, opts)      the TeacherLike interface of the elicitation strategies (src/elicit/types.ts), with
//                             the remote teacher's ChatResult shapes: generation, then one forward pass for the
//                             per-token logprobs and top alternatives. Messages go through the tokenizer's chat
//                             template when it has one, else their contents are joined by blank lines (a base LM).
// Hidden states: only if the ONNX graph outputs them; our exports output logits and present.* only, so
// hiddenStates() throws a 'not available for this model' error instead of inventing them.
import {
  AutoConfig, AutoModelForCausalLM, AutoTokenizer, BaseStreamer, InterruptableStoppingCriteria, LogitsProcessor, LogitsProcessorList,
  StoppingCriteriaList, Tensor, type PreTrainedModel, type PreTrainedTokenizer, type ProgressInfo,
} from '@huggingface/transformers';
import { sampleToken, resolveSampling, type SamplingConfig } from '../model/sampling.ts';
import { isNode } from '../platform/env.ts';
import { probeWebGpu } from '../platform/webgpu-probe.ts';
import { checkTokenAlignment, type AlignmentSide, type TokenAlignment } from '../tokenizer/align.ts';
import { symbolsToBytes } from '../tokenizer/byte-level.ts';
import { logSumExp } from '../util/logsoftmax.ts';
import { Rng } from '../util/rng.ts';
import { validateChatCall } from './config.ts';
import { resolveSource, withSourceEnv, type LocalModelSource, type ResolvedSource } from './local-source.ts';
import { TeacherError } from './types.ts';
import type { ChatChoice, ChatMessage, ChatOptions, ChatResult, TokenLogprob } from './types.ts';

export type { LocalModelSource } from './local-source.ts';
export type LocalDevice = 'webgpu' | 'wasm' | 'cpu';

export interface LocalLoadProgress {
  /** 'files' while files load (bytes), 'session' while ONNX Runtime builds the session, 'ready' at the end. */
  stage: 'files' | 'session' | 'ready';
  /** The file being loaded (stage 'files'). */
  file?: string;
  /** Bytes loaded / known total over the files seen so far. */
  loaded: number;
  total: number;
  message: string;
}

export interface LocalTeacherOptions {
  /** 'auto' (default): 'webgpu' when this context has a WebGPU adapter, else 'wasm'; 'cpu' in Node. */
  device?: 'auto' | LocalDevice;
  /** ONNX weights to pick (transformers.js dtype; our exports are 'fp32' = onnx/model.onnx). Default 'fp32'. */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'q4' | 'q4f16';
  /** Base URL for a relative folder location (the page's document.baseURI). */
  baseUrl?: string;
  onProgress?: (p: LocalLoadProgress) => void;
  /** Alternatives per token that chat() returns when the call does not say (0–20). Default 5. */
  topLogprobs?: number;
}

export interface LocalTeacherInfo {
  model: string;
  source: LocalModelSource['kind'];
  device: LocalDevice;
  dtype: string;
  /** Width of the logits (config.json's vocab_size). */
  vocabSize: number;
  eosIds: number[];
  bosId: number | null;
  chatTemplate: boolean;
  /** Why the requested or preferred WebGPU backend is not the one in use ('' when it is, or was not wanted). */
  deviceNote: string;
  hiddenStates: boolean;
  hiddenStatesNote: string;
  inputNames: string[];
  outputNames: string[];
}

export interface LocalGenerateOptions {
  /** New tokens at most (1–4096). Default 64. */
  maxNewTokens?: number;
  /** Argmax at every step (transformers.js's greedy search). Default: true when temperature is 0, else false. */
  greedy?: boolean;
  /** Sampling (greedy false): as src/model/sampling.ts. Defaults 1, 0 (no limit), 1 (no limit). */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Seed of the sampler's Rng; default a random one. */
  seed?: number;
  signal?: AbortSignal;
  /** Called with each new token id as it is generated. */
  onToken?: (id: number) => void;
}

export interface LocalGeneration {
  promptIds: number[];
  /** The generated ids (an end-of-sequence id, when one ended the generation, included). */
  ids: number[];
  /** The generated text (special tokens skipped). */
  text: string;
  finishReason: 'stop' | 'length';
}

export interface TokenDistributions {
  /** Positions T (= ids given) and logits width V. Row t is the distribution of the token after ids[0..t]. */
  T: number;
  V: number;
  k: number;
  /** (T, k) ids by decreasing log-probability (ties: lowest id first). */
  topIds: Int32Array;
  /** (T, k) their log-probabilities. */
  topLogprobs: Float32Array;
  /** (T − 1): log p(ids[t + 1] | ids[0..t]). */
  nextLogprobs: Float32Array;
  /** (T, V) every log-probability, when asked for (dense: true). */
  dense?: Float32Array;
}

/** Dense rows at most (T·V floats) in one distributions() call: 256 MiB. */
export const MAX_DENSE_FLOATS = 64 * 1024 * 1024;
const MAX_NEW_TOKENS = 4096;
const MAX_TOP_K = 1024;

const bad = (msg: string): never => {
  throw new TeacherError('config', `local teacher: ${msg}`);
};

function intOpt(v: unknown, name: string, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(`${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v as number;
}

/** Our seeded sampler as a transformers.js logits processor: every row keeps only its drawn token (logit 0). */
class SeededSampler extends LogitsProcessor {
  readonly cfg: SamplingConfig;
  readonly rng: Rng;
  constructor(cfg: SamplingConfig, rng: Rng) {
    super();
    this.cfg = cfg;
    this.rng = rng;
  }
  override _call(_inputIds: bigint[][], logits: Tensor): Tensor {
    const V = logits.dims.at(-1)!;
    const data = logits.data as Float32Array;
    for (let r = 0; r < data.length / V; r++) {
      const row = data.subarray(r * V, (r + 1) * V);
      const id = sampleToken(row, { ...this.cfg, rng: this.rng });
      row.fill(-Infinity);
      row[id] = 0;
    }
    return logits;
  }
}

/** Reports each generated token (generate() first puts the prompt, then one id per step). */
class TokenStreamer extends BaseStreamer {
  readonly onToken: (id: number) => void;
  sawPrompt = false;
  constructor(onToken: (id: number) => void) {
    super();
    this.onToken = onToken;
  }
  override put(value: bigint[][]): void {
    if (!this.sawPrompt) {
      this.sawPrompt = true;
      return;
    }
    for (const id of value[0] ?? []) this.onToken(Number(id));
  }
  override end(): void {}
}

const idsTensor = (ids: readonly number[]) => new Tensor('int64', BigInt64Array.from(ids, (i) => BigInt(i)), [1, ids.length]);
const onesTensor = (n: number) => new Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);

function toIdList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export class LocalTeacher {
  readonly info: LocalTeacherInfo;
  /** What the elicitation layer records as provenance (TeacherLike). */
  readonly settings: { readonly model: string; readonly baseURL: string; readonly kind: 'transformers-js' };
  readonly #model: PreTrainedModel;
  readonly #tok: PreTrainedTokenizer;
  readonly #topLogprobs: number;
  /** id → UTF-8 bytes, for byte-level BPE tokenizers (null otherwise, or for special tokens). */
  readonly #bytes: Array<Uint8Array | null> | null;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;

  private constructor(model: PreTrainedModel, tok: PreTrainedTokenizer, info: LocalTeacherInfo, src: ResolvedSource, topLogprobs: number) {
    this.#model = model;
    this.#tok = tok;
    this.info = info;
    this.settings = Object.freeze({ model: src.label, baseURL: src.baseURL, kind: 'transformers-js' as const });
    this.#topLogprobs = topLogprobs;
    this.#bytes = byteTable(tok, info.vocabSize);
  }

  /** Loads tokenizer and model; WebGPU failures fall back to WASM (info.deviceNote says why). */
  static async load(source: LocalModelSource, opts: LocalTeacherOptions = {}): Promise<LocalTeacher> {
    const device = opts.device ?? 'auto';
    if (!['auto', 'webgpu', 'wasm', 'cpu'].includes(device)) bad(`device must be auto, webgpu, wasm or cpu, got ${String(device)}`);
    const dtype = opts.dtype ?? 'fp32';
    const topLogprobs = intOpt(opts.topLogprobs, 'topLogprobs', 0, 20, 5);
    let src: ResolvedSource;
    try {
      src = resolveSource(source, opts.baseUrl);
    } catch (e) {
      throw new TeacherError('config', (e as Error).message);
    }

    let chosen: LocalDevice;
    let deviceNote = '';
    if (device !== 'auto') chosen = device;
    else if (isNode()) chosen = 'cpu';
    else {
      const probe = await probeWebGpu();
      chosen = probe.available ? 'webgpu' : 'wasm';
      if (!probe.available) deviceNote = `WASM instead of WebGPU: ${probe.reason}`;
    }

    const files = new Map<string, { loaded: number; total: number }>();
    const report = (p: LocalLoadProgress) => opts.onProgress?.(p);
    const sum = () => [...files.values()].reduce((a, f) => ({ loaded: a.loaded + f.loaded, total: a.total + f.total }), { loaded: 0, total: 0 });
    const progress_callback = (p: ProgressInfo) => {
      if (p.status === 'progress') {
        files.set(p.file, { loaded: p.loaded, total: p.total });
        report({ stage: 'files', file: p.file, ...sum(), message: `loading ${p.file}: ${Math.round(p.progress)}%` });
      } else if (p.status === 'done') {
        const f = files.get(p.file);
        if (f) f.loaded = f.total;
        report({ stage: 'files', file: p.file, ...sum(), message: `loaded ${p.file}` });
      } else if (p.status === 'initiate') {
        report({ stage: 'files', file: p.file, ...sum(), message: `loading ${p.file}` });
      }
    };

    const where = `${src.kind} ${JSON.stringify(src.label)}`;
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        throw new Error(`${what}: ${(e as Error)?.message ?? String(e)}`);
      }
    };
    // Config and tokenizer do not depend on the device; only the session is retried on WASM when WebGPU fails.
    const options = { progress_callback, ...(src.revision !== undefined ? { revision: src.revision } : {}) };
    const loaded = await withSourceEnv(src, async () => {
      const config = await step('config.json', () => AutoConfig.from_pretrained(src.modelId, options));
      const tok = await step('the tokenizer (tokenizer.json, tokenizer_config.json)', () => AutoTokenizer.from_pretrained(src.modelId, options));
      const session = (dev: LocalDevice) => {
        report({ stage: 'session', ...sum(), message: `creating the ONNX Runtime session (${dev}, ${dtype})` });
        return step(`the ONNX model on ${dev} (${dtype})`, () => AutoModelForCausalLM.from_pretrained(src.modelId, { ...options, config, device: dev, dtype }));
      };
      try {
        return { tok, model: await session(chosen) };
      } catch (e) {
        if (chosen !== 'webgpu' || device === 'webgpu') throw e;
        deviceNote = `WASM instead of WebGPU: ${(e as Error).message}`;
        chosen = 'wasm';
        return { tok, model: await session('wasm') };
      }
    }).catch((e: unknown) => {
      const picked = src.virtual ? ` (picked: ${src.virtual.paths.join(', ')})` : '';
      throw new TeacherError('config', `local teacher: could not load ${where}: ${(e as Error)?.message ?? String(e)}${picked}`);
    });

    const { model, tok } = loaded;
    const cfg = model.config as unknown as Record<string, unknown>;
    const gen = (model.generation_config ?? {}) as unknown as Record<string, unknown>;
    if (typeof cfg.vocab_size !== 'number') {
      await model.dispose();
      bad(`${where}: config.json has no vocab_size`);
    }
    const vocabSize = cfg.vocab_size as number;
    const session = (model.sessions as Record<string, { inputNames?: string[]; outputNames?: string[] } | undefined>).model;
    const inputNames = [...(session?.inputNames ?? [])];
    const outputNames = [...(session?.outputNames ?? [])];
    const hidden = outputNames.filter((n) => /hidden/i.test(n));
    const eosIds = toIdList(gen.eos_token_id ?? cfg.eos_token_id);
    const bos = gen.bos_token_id ?? cfg.bos_token_id;
    const info: LocalTeacherInfo = {
      model: src.label, source: src.kind, device: chosen, dtype, vocabSize, eosIds,
      bosId: typeof bos === 'number' ? bos : null,
      chatTemplate: typeof (tok as unknown as { chat_template?: unknown }).chat_template === 'string',
      deviceNote,
      hiddenStates: false,
      hiddenStatesNote: hidden.length
        ? `the graph outputs ${hidden.join(', ')}, but reading hidden states is not wired up for this model yet`
        : `hidden states are not available for this model: its ONNX graph outputs only ${outputNames.filter((n) => !n.startsWith('present')).join(', ') || 'logits'} (and the KV cache)`,
      inputNames, outputNames,
    };
    report({ stage: 'ready', ...sum(), message: `ready on ${chosen}` });
    return new LocalTeacher(model, tok, info, src, topLogprobs);
  }

  // ----------------------------------------------------------------------------------------------- tokenizer

  /** The teacher's tokenizer: text → ids (with its special tokens unless addSpecial is false). */
  encode(text: string, addSpecial = true): number[] {
    if (typeof text !== 'string') bad('encode: text must be a string');
    return this.#tok.encode(text, { add_special_tokens: addSpecial });
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    return this.#tok.decode([...ids], { skip_special_tokens: skipSpecial });
  }

  /** One token as text (special tokens by their content; a partial UTF-8 character decodes to U+FFFD). */
  tokenText(id: number): string {
    return this.#tok.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** One token's bytes for byte-level BPE tokenizers; undefined otherwise or for special tokens. */
  tokenBytes(id: number): number[] | undefined {
    const b = this.#bytes?.[id];
    return b ? Array.from(b) : undefined;
  }

  /** The teacher's tokenizer.json and tokenizer_config.json, as loaded (a student built on them shares its ids). */
  tokenizerFiles(): { json: Record<string, unknown>; config: Record<string, unknown> } {
    const t = this.#tok as unknown as { _tokenizerJSON: Record<string, unknown>; _tokenizerConfig: Record<string, unknown> };
    return { json: t._tokenizerJSON, config: t._tokenizerConfig };
  }

  /**
   * Whether this teacher's per-token distributions (top-k and dense rows, by id) are in `student`'s ids: checked
   * on every id and on probe texts (plus `samples`), never assumed from names. Not aligned → token-level KD is
   * unavailable for this pair and `message` says to use SeqKD.
   */
  checkTokenAlignment(student: Pick<AlignmentSide, 'vocabSize' | 'encode' | 'idToToken'>, samples: readonly string[] = []): TokenAlignment {
    const core = (this.#tok as unknown as { _tokenizer: { get_vocab(withAdded: boolean): Map<string, number>; id_to_token(id: number): string | undefined } })._tokenizer;
    let max = -1;
    for (const id of core.get_vocab(true).values()) if (id > max) max = id;
    const teacher: AlignmentSide = { vocabSize: max + 1, encode: (t) => this.encode(t, false), idToToken: (id) => core.id_to_token(id) };
    return checkTokenAlignment(teacher, student, { teacherWidth: this.info.vocabSize, samples, specialTokens: this.#tok.all_special_tokens ?? [] });
  }

  // ---------------------------------------------------------------------------------------------- generation

  generate(prompt: string | readonly number[], opts: LocalGenerateOptions = {}): Promise<LocalGeneration> {
    return this.#serial(() => this.#generate(prompt, opts));
  }

  async #generate(prompt: string | readonly number[], opts: LocalGenerateOptions): Promise<LocalGeneration> {
    if (typeof opts !== 'object' || opts === null) bad('generate: options must be an object');
    const known = ['maxNewTokens', 'greedy', 'temperature', 'topK', 'topP', 'seed', 'signal', 'onToken'];
    for (const k of Object.keys(opts)) if (!known.includes(k)) bad(`generate: unknown option '${k}' (known: ${known.join(', ')})`);
    const maxNew = intOpt(opts.maxNewTokens, 'generate: maxNewTokens', 1, MAX_NEW_TOKENS, 64);
    if (opts.greedy !== undefined && typeof opts.greedy !== 'boolean') bad('generate: greedy must be true or false');
    let sampling: SamplingConfig;
    try {
      sampling = resolveSampling({ temperature: opts.temperature, topK: opts.topK, topP: opts.topP }, 'local teacher: generate');
    } catch (e) {
      return bad((e as Error).message.replace(/^local teacher: /, ''));
    }
    const greedy = opts.greedy ?? sampling.temperature === 0;
    if (!greedy && sampling.temperature === 0) sampling.temperature = 1;
    const seed = opts.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : intOpt(opts.seed, 'generate: seed', -(2 ** 53 - 1), 2 ** 53 - 1, 0);

    let promptIds = typeof prompt === 'string' ? this.encode(prompt) : this.#checkIds(prompt, 'generate: prompt');
    if (promptIds.length === 0) {
      if (this.info.bosId === null) bad('generate: the prompt is empty and the model has no bos token to start from');
      promptIds = [this.info.bosId!];
    }
    const signal = opts.signal;
    if (signal?.aborted) throw new TeacherError('aborted', 'local teacher: generation aborted');

    const processors = new LogitsProcessorList();
    if (!greedy) processors.push(new SeededSampler(sampling, new Rng(seed % 2 ** 32)));
    const interrupt = new InterruptableStoppingCriteria();
    const criteria = new StoppingCriteriaList();
    criteria.push(interrupt);
    const onAbort = () => interrupt.interrupt();
    signal?.addEventListener('abort', onAbort);
    let out: unknown;
    try {
      out = await this.#model.generate({
        input_ids: idsTensor(promptIds), attention_mask: onesTensor(promptIds.length),
        max_new_tokens: maxNew, do_sample: false, logits_processor: processors, stopping_criteria: criteria,
        ...(opts.onToken ? { streamer: new TokenStreamer(opts.onToken) } : {}),
      } as Parameters<PreTrainedModel['generate']>[0]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw new TeacherError('aborted', 'local teacher: generation aborted');
    const seq = (out as Tensor).tolist() as bigint[][];
    const ids = (seq[0] ?? []).slice(promptIds.length).map(Number);
    const last = ids.at(-1);
    const finishReason = last !== undefined && this.info.eosIds.includes(last) ? 'stop' : 'length';
    return { promptIds, ids, text: this.decode(ids), finishReason };
  }

  // ---------------------------------------------------------------------------------------------- distributions

  /** One forward pass over `ids` (see TokenDistributions). k in [1, 1024], default 20. */
  distributions(ids: readonly number[], opts: { k?: number; dense?: boolean } = {}): Promise<TokenDistributions> {
    return this.#serial(async () => {
      const k = intOpt(opts.k, 'distributions: k', 1, MAX_TOP_K, 20);
      const seq = this.#checkIds(ids, 'distributions: ids');
      if (seq.length === 0) bad('distributions: ids is empty');
      const { logits, V } = await this.#forward(seq);
      if (opts.dense && seq.length * V > MAX_DENSE_FLOATS) {
        bad(`distributions: dense rows for ${seq.length} positions × ${V} tokens exceed ${MAX_DENSE_FLOATS} floats; ask for top-k or fewer positions`);
      }
      return logprobRows(logits, seq, V, Math.min(k, V), opts.dense === true);
    });
  }

  /** Hidden states: only when the graph outputs them (see info.hiddenStatesNote). */
  async hiddenStates(_ids: readonly number[]): Promise<never> {
    throw new TeacherError('config', `local teacher ${JSON.stringify(this.info.model)}: ${this.info.hiddenStatesNote}`);
  }

  async #forward(ids: number[]): Promise<{ logits: Float32Array; V: number }> {
    const out = (await this.#model({ input_ids: idsTensor(ids), attention_mask: onesTensor(ids.length) })) as Record<string, Tensor>;
    const lt = out.logits;
    if (!lt) bad(`the model returned no logits (outputs: ${Object.keys(out).join(', ')})`);
    for (const [name, t] of Object.entries(out)) if (name !== 'logits' && t.location === 'gpu-buffer') t.dispose();
    const f32 = lt!.type === 'float32' ? lt! : lt!.to('float32');
    const V = f32.dims.at(-1)!;
    if (f32.dims.length !== 3 || f32.dims[1] !== ids.length) bad(`logits have shape [${f32.dims.join(', ')}], expected [1, ${ids.length}, V]`);
    return { logits: f32.data as Float32Array, V };
  }

  #checkIds(ids: readonly number[], where: string): number[] {
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) bad(`${where} must be a list of token ids`);
    const V = this.info.vocabSize;
    const out = Array.from(ids as ArrayLike<number>);
    out.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) bad(`${where}[${i}] = ${String(id)} is not a token id in [0, ${V})`);
    });
    return out;
  }

  // ---------------------------------------------------------------------------------------------- chat

  /** The prompt text for chat messages: the chat template when the tokenizer has one, else the contents joined. */
  promptFor(messages: ChatMessage[]): { text: string; special: boolean } {
    if (this.info.chatTemplate) {
      const text = this.#tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
      return { text: String(text), special: false };
    }
    return { text: messages.map((m) => m.content).join('\n\n'), special: true };
  }

  /** TeacherLike.chat: n generations (seeds seed, seed + 1, …), each with per-token logprobs and alternatives. */
  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    validateChatCall(messages, opts, 'local teacher chat');
    const n = opts.n ?? 1;
    const k = opts.topLogprobs ?? this.#topLogprobs;
    const temperature = opts.temperature ?? 1;
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    const { text: prompt, special } = this.promptFor(messages);
    const promptIds = this.encode(prompt, special);
    const stops = opts.stop ?? [];
    const warnings: string[] = [];
    if ((opts.maxTokens ?? 0) > MAX_NEW_TOKENS) warnings.push(`maxTokens ${opts.maxTokens} clamped to ${MAX_NEW_TOKENS} (the local teacher's limit)`);
    const choices: ChatChoice[] = [];
    let completionTokens = 0;
    for (let index = 0; index < n; index++) {
      const g = await this.generate(promptIds, {
        maxNewTokens: Math.min(opts.maxTokens ?? 128, MAX_NEW_TOKENS), temperature, seed: seed + index,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      completionTokens += g.ids.length;
      const all = [...g.promptIds, ...g.ids];
      const d = g.ids.length > 0 ? await this.distributions(all, { k: Math.max(k, 1) }) : null;
      let tokens: TokenLogprob[] = g.ids.map((id, j) => {
        const row = g.promptIds.length - 1 + j;
        const t: TokenLogprob = { token: this.tokenText(id), logprob: d!.nextLogprobs[row]!, top: [] };
        const bytes = this.tokenBytes(id);
        if (bytes) t.bytes = bytes;
        for (let r = 0; r < Math.min(k, d!.k); r++) t.top.push({ token: this.tokenText(d!.topIds[row * d!.k + r]!), logprob: d!.topLogprobs[row * d!.k + r]! });
        return t;
      });
      // End-of-sequence tokens are not text (servers do not report them); a stop sequence cuts the text before its
      // first occurrence and keeps the tokens whose decoded prefix lies within the cut text.
      const textIds = g.ids.filter((id) => !this.info.eosIds.includes(id));
      tokens = tokens.filter((_, j) => !this.info.eosIds.includes(g.ids[j]!));
      let text = g.text;
      let finishReason: string = g.finishReason;
      const at = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
      if (Number.isFinite(at)) {
        text = text.slice(0, at);
        let kept = 0;
        for (let j = 1; j <= textIds.length; j++) {
          const prefix = this.decode(textIds.slice(0, j));
          if (text.startsWith(prefix)) kept = j;
          else if (prefix.length > text.length + 8) break;
        }
        tokens = tokens.slice(0, kept);
        finishReason = 'stop';
      }
      const choice: ChatChoice = { index, text, finishReason, tokens };
      choices.push(choice);
      if (opts.stream !== false) opts.onDelta?.({ index, text, tokens });
    }
    return {
      model: this.settings.model, choices,
      usage: { promptTokens: promptIds.length, completionTokens, totalTokens: promptIds.length + completionTokens, reported: true },
      cost: 0, logprobsAvailable: true, warnings, attempts: 1,
    };
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#queue.catch(() => undefined);
    await this.#model.dispose();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(new TeacherError('config', 'local teacher: already disposed'));
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}

/** Log-softmax rows (float64 sums) → top-k per row, the next given token's logprob, optionally the dense rows. */
export function logprobRows(logits: Float32Array, ids: readonly number[], V: number, k: number, dense: boolean): TokenDistributions {
  const T = ids.length;
  const topIds = new Int32Array(T * k);
  const topLogprobs = new Float32Array(T * k);
  const nextLogprobs = new Float32Array(Math.max(T - 1, 0));
  const out = dense ? new Float32Array(T * V) : undefined;
  const best: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      const x = row[v]!;
      if (Number.isNaN(x) || x === Infinity) throw new TeacherError('malformed', `local teacher: logits[${t}, ${v}] is ${x}`);
      if (x > max) max = x;
    }
    if (max === -Infinity) throw new TeacherError('malformed', `local teacher: every logit of row ${t} is -Infinity`);
    const lse = logSumExp(row, 0, V);
    if (out) for (let v = 0; v < V; v++) out[t * V + v] = row[v]! - lse;
    if (t + 1 < T) nextLogprobs[t] = row[ids[t + 1]!]! - lse;
    // Top-k by insertion into a sorted list (k ≪ V): larger logit first, lower id first on ties.
    best.length = 0;
    for (let v = 0; v < V; v++) {
      const x = row[v]!;
      let i: number;
      if (best.length < k) i = best.push(v) - 1;
      else if (x > row[best[k - 1]!]!) i = k - 1;
      else continue;
      while (i > 0 && x > row[best[i - 1]!]!) { best[i] = best[i - 1]!; i--; }
      best[i] = v;
    }
    for (let r = 0; r < k; r++) {
      topIds[t * k + r] = best[r]!;
      topLogprobs[t * k + r] = row[best[r]!]! - lse;
    }
  }
  return { T, V, k, topIds, topLogprobs, nextLogprobs, ...(out ? { dense: out } : {}) };
}

/** id → bytes for a byte-level BPE vocabulary (every token string made of GPT-2 byte symbols); else null. */
function byteTable(tok: PreTrainedTokenizer, V: number): Array<Uint8Array | null> | null {
  let vocab: Map<string, number>;
  try {
    vocab = tok.get_vocab();
  } catch {
    return null;
  }
  const space = vocab.get('Ġ');
  if (space === undefined || tok.decode([space], { clean_up_tokenization_spaces: false }) !== ' ') return null;
  const special = new Set(tok.all_special_ids ?? []);
  const table: Array<Uint8Array | null> = new Array<Uint8Array | null>(V).fill(null);
  for (const [s, id] of vocab) {
    if (id < 0 || id >= V || special.has(id)) continue;
    table[id] = symbolsToBytes(s);
  }
  return table;
}
