// A real OpenAI-compatible HTTP server (node:http, 127.0.0.1, free port) for tests and the CLI: POST
// /v1/chat/completions with and without SSE streaming (per-token logprobs/top_logprobs, usage chunk, [DONE]),
// GET /v1/models, n, seed, temperature, max_tokens, stop, serving a real TextModel (text-model.ts). Faults are
// injected deterministically from a seed (429/500/503 with retry-after-ms, hung or late answers, streams cut
// mid-way, malformed JSON/SSE, slow trickles), and counted. Options reproduce server quirks: no logprobs at all, Together's shape.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Rng } from '../../src/util/rng.ts';
import { BigramModel, renderPrompt, sample, topK } from './text-model.ts';
import type { Sampled, TextModel } from './text-model.ts';

export const FAULT_KINDS = ['429', '500', '503', 'timeout', 'cutStream', 'malformed'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultConfig {
  p429: number;
  p500: number;
  p503: number;
  /** Accept and never answer ('hang'), or answer after lateMs ('late'); 'mixed' picks one per fault. */
  pTimeout: number;
  /** Cut the response mid-way: mid-SSE when streaming, mid-body otherwise (see cutMode). */
  pCutStream: number;
  /** How a stream is cut: 'destroy' the socket, 'end' it cleanly without finish_reason or [DONE], 'mixed' = either. */
  cutMode: 'destroy' | 'end' | 'mixed';
  /** An invalid SSE chunk (streaming) or an invalid JSON body with status 200. */
  pMalformed: number;
  /** retry-after-ms sent with 429/500/503, drawn uniformly in [lo, hi] (retry-after carries it in whole seconds). */
  retryAfterMs: [number, number];
  timeoutMode: 'hang' | 'late' | 'mixed';
  lateMs: number;
  /**
   * A slow trickle: the answer is right but comes in pieces `trickleMs` apart (SSE chunks; a non-streamed body in 8
   * slices). Counted in stats.trickled, not in stats.faults (which keeps one entry per FaultKind).
   */
  pTrickle: number;
  trickleMs: number;
}

export interface OpenAiServerOptions {
  model?: TextModel;
  /** More models served beside `model` (a request names one by its `name`): several teachers behind one server. */
  models?: TextModel[];
  /** Seed of the fault decisions and of sampling without a request seed. */
  seed?: number;
  faults?: Partial<FaultConfig>;
  /** Delay before the response headers of every chat request. */
  latencyMs?: number;
  /** Streaming pace (0 = as fast as possible); non-streaming answers wait tokens / tokensPerSecond. */
  tokensPerSecond?: number;
  /** Behave like a server without logprob support: never send a `logprobs` field. */
  omitLogprobs?: boolean;
  /** 'together' = `logprobs` must be an integer k and comes back as {tokens, token_logprobs, top_logprobs}. */
  shape?: 'openai' | 'together';
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (401 otherwise). */
  apiKey?: string;
  /** Sloppy-server mode: 4xx error messages echo the request's Authorization header. */
  echoAuthInErrors?: boolean;
  maxN?: number;
  maxTopLogprobs?: number;
}

export interface OpenAiServerStats {
  /** Every HTTP request received. */
  requests: number;
  chatRequests: number;
  /** Chat requests answered completely and correctly. */
  served: number;
  faults: Record<FaultKind, number>;
  /** Answers sent as a slow trickle (pTrickle). */
  trickled: number;
  badRequests: number;
  unauthorized: number;
  inFlight: number;
  maxInFlight: number;
  /** performance.now() at the arrival of each chat request. */
  arrivals: number[];
  /** Authorization header of each request (null when absent), last 1000. */
  authorizations: (string | null)[];
  /** Parsed body of each chat request, last 1000. */
  chatBodies: Record<string, unknown>[];
}

export interface OpenAiServer {
  /** Base URL including /v1, e.g. http://127.0.0.1:43210/v1. */
  url: string;
  model: TextModel;
  stats: OpenAiServerStats;
  close(): Promise<void>;
}

const FAULT_DEFAULTS: FaultConfig = {
  p429: 0, p500: 0, p503: 0, pTimeout: 0, pCutStream: 0, pMalformed: 0, cutMode: 'mixed', retryAfterMs: [1, 5], timeoutMode: 'mixed', lateMs: 2000,
  pTrickle: 0, trickleMs: 200,
};

/** What pickFault decides for one request: a FaultKind, a trickle, or nothing. */
type Decision = FaultKind | 'trickle' | null;

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null) {
    super(message);
  }
}

interface ChatRequest {
  model: TextModel;
  messages: { role: string; content: string }[];
  n: number;
  seed: number | null;
  temperature: number;
  maxTokens: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
  topLogprobs: number;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseChatRequest(b: Record<string, unknown>, o: { models: Map<string, TextModel>; shape: 'openai' | 'together'; maxN: number; maxTop: number }): ChatRequest {
  const int = (key: string, lo: number, hi: number, dflt: number): number => {
    const v = b[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new HttpError(400, `'${key}' must be an integer in [${lo}, ${hi}]`, key);
    return v;
  };
  const model = o.models.get(String(b.model));
  if (!model) throw new HttpError(404, `The model '${String(b.model)}' does not exist`, 'model');
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new HttpError(400, "'messages' must be a non-empty array", 'messages');
  const messages = b.messages.map((m: unknown, i) => {
    if (!isRecord(m) || typeof m.role !== 'string' || typeof m.content !== 'string') throw new HttpError(400, `messages[${i}] must be {role, content}`, 'messages');
    return { role: m.role, content: m.content };
  });
  const temperature = b.temperature ?? 1;
  if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2)) throw new HttpError(400, "'temperature' must be in [0, 2]", 'temperature');
  let stop: string[] = [];
  if (typeof b.stop === 'string') stop = [b.stop];
  else if (Array.isArray(b.stop) && b.stop.length <= 4 && b.stop.every((s) => typeof s === 'string')) stop = b.stop as string[];
  else if (b.stop !== undefined && b.stop !== null) throw new HttpError(400, "'stop' must be a string or up to 4 strings", 'stop');
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw new HttpError(400, "'stream' must be a boolean", 'stream');
  const seed = b.seed === undefined || b.seed === null ? null : int('seed', -(2 ** 53 - 1), 2 ** 53 - 1, 0);
  let logprobs = false;
  let topLogprobs = 0;
  if (o.shape === 'together') {
    if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'number') {
      throw new HttpError(400, "'logprobs' must be an integer (the number of top tokens)", 'logprobs');
    }
    topLogprobs = int('logprobs', 0, o.maxTop, 0);
    logprobs = topLogprobs > 0;
  } else {
    if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') throw new HttpError(400, "'logprobs' must be a boolean", 'logprobs');
    logprobs = b.logprobs === true;
    topLogprobs = int('top_logprobs', 0, o.maxTop, 0);
    if (b.top_logprobs !== undefined && b.top_logprobs !== null && !logprobs) throw new HttpError(400, "'top_logprobs' needs 'logprobs' set to true", 'top_logprobs');
  }
  const so = b.stream_options;
  return {
    model,
    messages,
    n: int('n', 1, o.maxN, 1),
    seed,
    temperature,
    maxTokens: b.max_completion_tokens !== undefined ? int('max_completion_tokens', 1, 1_000_000, 32) : int('max_tokens', 1, 1_000_000, 32),
    stop,
    stream: b.stream === true,
    includeUsage: isRecord(so) && so.include_usage === true,
    logprobs,
    topLogprobs,
  };
}

/** Cuts a sample at the earliest stop sequence (byte match on the generated ids). */
function applyStop(model: TextModel, s: Sampled, stops: string[]): { ids: number[]; dists: Float32Array[]; finish: 'stop' | 'length' } {
  let cut = -1;
  for (const stop of stops) {
    const pat = model.encode(stop);
    for (let i = 0; i + pat.length <= s.ids.length; i++) {
      if (pat.every((b, j) => s.ids[i + j] === b)) {
        if (cut < 0 || i < cut) cut = i;
        break;
      }
    }
  }
  if (cut >= 0) return { ids: s.ids.slice(0, cut), dists: s.dists.slice(0, cut), finish: 'stop' };
  return { ids: s.ids, dists: s.dists, finish: s.ended ? 'stop' : 'length' };
}

/** Starts the server on 127.0.0.1 on a free port. Always close() it. */
export async function startOpenAiServer(opts: OpenAiServerOptions = {}): Promise<OpenAiServer> {
  const model = opts.model ?? new BigramModel();
  const faults: FaultConfig = { ...FAULT_DEFAULTS, ...opts.faults };
  const faultRng = new Rng((opts.seed ?? 1) >>> 0);
  const sampleRng = new Rng(((opts.seed ?? 1) + 0x5bd1e995) >>> 0);
  const shape = opts.shape ?? 'openai';
  const served = [model, ...(opts.models ?? [])];
  const parseOpts = { models: new Map(served.map((m) => [m.name, m])), shape, maxN: opts.maxN ?? 16, maxTop: opts.maxTopLogprobs ?? 20 };
  const stats: OpenAiServerStats = {
    requests: 0, chatRequests: 0, served: 0, trickled: 0, badRequests: 0, unauthorized: 0, inFlight: 0, maxInFlight: 0,
    faults: { '429': 0, '500': 0, '503': 0, timeout: 0, cutStream: 0, malformed: 0 }, arrivals: [], authorizations: [], chatBodies: [],
  };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let nextId = 0;
  let closed = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || closed) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  const pushCapped = <T>(list: T[], x: T) => {
    list.push(x);
    if (list.length > 1000) list.shift();
  };
  const gone = (res: http.ServerResponse) => res.destroyed || res.writableEnded || closed;

  // One draw per request; the trickle comes last, so a config without it decides exactly as before.
  function pickFault(): Decision {
    const u = faultRng.next();
    const ps: [Exclude<Decision, null>, number][] = [
      ['429', faults.p429], ['500', faults.p500], ['503', faults.p503],
      ['timeout', faults.pTimeout], ['cutStream', faults.pCutStream], ['malformed', faults.pMalformed], ['trickle', faults.pTrickle],
    ];
    let acc = 0;
    for (const [kind, p] of ps) {
      acc += p;
      if (u < acc) return kind;
    }
    return null;
  }

  function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (gone(res)) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  function sendError(res: http.ServerResponse, status: number, message: string, type: string, param: string | null = null, headers: Record<string, string> = {}): void {
    sendJson(res, status, { error: { message, type, param, code: null } }, headers);
  }

  function retryHeaders(): Record<string, string> {
    const [lo, hi] = faults.retryAfterMs;
    const ms = lo + faultRng.int(hi - lo + 1);
    return { 'retry-after-ms': String(ms), 'retry-after': String(Math.ceil(ms / 1000)) };
  }

  /** Per choice: the sampled ids, their distributions, the finish reason and the text. */
  async function generate(req: ChatRequest) {
    const model = req.model;
    const promptIds = model.encode(renderPrompt(req.messages));
    // Every choice's generator is drawn before the first await: the same seeds whatever the interleaving.
    const rngs = Array.from({ length: req.n }, (_, i) =>
      req.seed === null ? new Rng(sampleRng.nextU32()) : new Rng(((req.seed % 4294967296) + Math.imul(i + 1, 0x9e3779b9)) >>> 0));
    const choices = [];
    for (const rng of rngs) {
      const s = applyStop(model, await sample(model, promptIds, req.maxTokens, req.temperature, rng), req.stop);
      choices.push({ ...s, text: model.decode(s.ids) });
    }
    const completionTokens = choices.reduce((a, c) => a + c.ids.length, 0);
    return { promptTokens: promptIds.length, completionTokens, choices };
  }

  function tokenEntry(model: TextModel, id: number, dist: Float32Array, k: number) {
    const bytes = model.tokenBytes(id);
    return {
      token: model.tokenText(id),
      logprob: dist[id]!,
      bytes,
      top_logprobs: topK(dist, k).map((t) => ({ token: model.tokenText(t), logprob: dist[t]!, bytes: model.tokenBytes(t) })),
    };
  }

  /** The `logprobs` field of a choice (or chunk) for tokens [from, to), or undefined when none is to be sent. */
  function logprobsField(req: ChatRequest, ids: number[], dists: Float32Array[]): unknown {
    if (!req.logprobs || opts.omitLogprobs) return undefined;
    const model = req.model;
    if (shape === 'together') {
      return {
        tokens: ids.map((id) => model.tokenText(id)),
        token_logprobs: ids.map((id, i) => dists[i]![id]!),
        top_logprobs: ids.map((_, i) => Object.fromEntries(topK(dists[i]!, req.topLogprobs).map((t) => [model.tokenText(t), dists[i]![t]!]))),
      };
    }
    return { content: ids.map((id, i) => tokenEntry(model, id, dists[i]!, req.topLogprobs)) };
  }

  async function handleChat(req: ChatRequest, res: http.ServerResponse, fault: Decision): Promise<void> {
    const model = req.model;
    const id = `chatcmpl-${++nextId}`;
    const created = Math.floor(Date.now() / 1000);
    const gen = await generate(req);
    const usage = { prompt_tokens: gen.promptTokens, completion_tokens: gen.completionTokens, total_tokens: gen.promptTokens + gen.completionTokens };
    const tps = opts.tokensPerSecond ?? 0;
    const trickle = fault === 'trickle' ? faults.trickleMs : 0;

    if (!req.stream) {
      if (tps > 0) await sleep((1000 * gen.completionTokens) / tps);
      const body = {
        id, object: 'chat.completion', created, model: model.name, system_fingerprint: 'fp_test',
        choices: gen.choices.map((c, index) => {
          const ch: Record<string, unknown> = { index, message: { role: 'assistant', content: c.text }, finish_reason: c.finish };
          const lp = logprobsField(req, c.ids, c.dists);
          if (lp !== undefined) ch.logprobs = lp;
          return ch;
        }),
        usage,
      };
      const text = JSON.stringify(body);
      if (gone(res)) return;
      if (fault === 'malformed') {
        const bad = text.slice(0, Math.floor(text.length / 2));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(bad) });
        res.end(bad);
        return;
      }
      if (fault === 'cutStream') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.write(text.slice(0, Math.floor(text.length / 2)));
        await sleep(1);
        res.socket?.destroy();
        return;
      }
      if (trickle > 0) {
        const bytes = Buffer.from(text);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
        for (let k = 0; k < 8; k++) {
          if (k > 0) await sleep(trickle);
          if (gone(res)) return;
          res.write(bytes.subarray(Math.floor((k * bytes.length) / 8), Math.floor(((k + 1) * bytes.length) / 8)));
        }
        res.end();
        stats.served++;
        return;
      }
      sendJson(res, 200, body);
      stats.served++;
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (chunk: unknown) => {
      if (!gone(res)) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    const base = { id, object: 'chat.completion.chunk', created, model: model.name, system_fingerprint: 'fp_test' };
    // Faults strike after this many content chunks (deterministic per request).
    const total = gen.choices.reduce((a, c) => a + c.ids.length, 0);
    const faultAt = fault === 'cutStream' || fault === 'malformed' ? Math.floor(total / 2) : -1;
    const cleanCut = fault === 'cutStream' && (faults.cutMode === 'end' || (faults.cutMode === 'mixed' && faultRng.next() < 0.5));
    let sent = 0;
    for (let index = 0; index < gen.choices.length; index++) {
      send({ ...base, choices: [{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
    }
    for (let index = 0; index < gen.choices.length; index++) {
      const c = gen.choices[index]!;
      const dec = new TextDecoder('utf-8', { fatal: false });
      for (let t = 0; t <= c.ids.length; t++) {
        if (sent === faultAt) {
          if (fault === 'cutStream') {
            await sleep(1);
            if (cleanCut) res.end();
            else res.socket?.destroy();
            return;
          }
          if (!gone(res)) res.write('data: {"id": "' + id + '", "choices": [{"index": 0, "delta": {"content": \n\n');
          await sleep(1);
          if (!gone(res)) res.end();
          return;
        }
        if (t === c.ids.length) break;
        const tok = c.ids[t]!;
        const content = dec.decode(Uint8Array.of(...(model.tokenBytes(tok) ?? [])), { stream: true });
        const ch: Record<string, unknown> = { index, delta: { content }, finish_reason: null };
        const lp = logprobsField(req, [tok], [c.dists[t]!]);
        if (lp !== undefined) ch.logprobs = lp;
        send({ ...base, choices: [ch] });
        sent++;
        if (tps > 0) await sleep(1000 / tps);
        if (trickle > 0) await sleep(trickle);
        if (gone(res)) return;
      }
      const tail = dec.decode();
      send({ ...base, choices: [{ index, delta: tail === '' ? {} : { content: tail }, logprobs: null, finish_reason: c.finish }] });
    }
    if (req.includeUsage) send({ ...base, choices: [], usage });
    if (gone(res)) return;
    res.end('data: [DONE]\n\n');
    stats.served++;
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    stats.requests++;
    const auth = req.headers.authorization ?? null;
    pushCapped(stats.authorizations, auth);
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-headers': '*', 'access-control-allow-methods': 'GET, POST, OPTIONS' });
      res.end();
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (opts.apiKey !== undefined && auth !== `Bearer ${opts.apiKey}`) {
      stats.unauthorized++;
      const echo = opts.echoAuthInErrors ? ` (received: ${String(auth)})` : '';
      sendError(res, 401, `Incorrect API key provided${echo}`, 'invalid_request_error');
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, { object: 'list', data: served.map((m) => ({ id: m.name, object: 'model', created: 0, owned_by: 'test' })) });
      return;
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      sendError(res, 404, `Unknown request URL: ${req.method} ${path}`, 'invalid_request_error');
      return;
    }
    stats.chatRequests++;
    stats.arrivals.push(performance.now());
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on('close', () => stats.inFlight--);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      stats.badRequests++;
      sendError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error');
      return;
    }
    if (!isRecord(body)) {
      stats.badRequests++;
      sendError(res, 400, 'The body must be a JSON object.', 'invalid_request_error');
      return;
    }
    pushCapped(stats.chatBodies, body);
    let chat: ChatRequest;
    try {
      chat = parseChatRequest(body, parseOpts);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      stats.badRequests++;
      const echo = opts.echoAuthInErrors ? ` (authorization: ${String(auth)})` : '';
      sendError(res, e.status, e.message + echo, 'invalid_request_error', e.param);
      return;
    }
    const fault = pickFault();
    if (fault === 'trickle') stats.trickled++;
    else if (fault) stats.faults[fault]++;
    await sleep(opts.latencyMs ?? 0);
    if (gone(res)) return;
    switch (fault) {
      case '429':
        return sendError(res, 429, 'Rate limit reached (injected fault).', 'rate_limit_error', null, retryHeaders());
      case '500':
        return sendError(res, 500, 'The server had an error (injected fault).', 'server_error', null, retryHeaders());
      case '503':
        return sendError(res, 503, 'The server is overloaded (injected fault).', 'server_error', null, retryHeaders());
      case 'timeout': {
        const late = faults.timeoutMode === 'late' || (faults.timeoutMode === 'mixed' && faultRng.next() < 0.5);
        if (!late) return; // never answered: the socket stays open until the client gives up or close()
        await sleep(faults.lateMs);
        if (gone(res)) return;
        return handleChat(chat, res, null);
      }
      default:
        return handleChat(chat, res, fault);
    }
  }

  const server = http.createServer((req, res) => {
    res.on('error', () => undefined);
    route(req, res).catch((e: unknown) => {
      if (!gone(res)) sendError(res, 500, `internal test-server error: ${e instanceof Error ? e.message : String(e)}`, 'server_error');
    });
  });
  // Longer than any pause between a test's requests: a client reusing a socket the server has just closed gets a
  // connection error (a real race, which the SDK retries; tests with maxRetries 0 would see it as a failure).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    model,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
