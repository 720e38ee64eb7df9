// RemoteTeacher: chat completions from any OpenAI-compatible server through the `openai` SDK, which does the HTTP
// retries (429/5xx/timeouts, honouring retry-after-ms / retry-after). Around it: the preset's constraints, a
// semaphore and a token bucket shared by all calls, abort, per-attempt deadlines (time to first byte, silence
// between chunks, overall; fixed or learnt from this server's usual latency: deadlines.ts), logprob capture with
// detection of servers that return none, per-teacher counters, and one error type (TeacherError) that carries no
// key, header or SDK object. The key goes only to baseURL, only in the Authorization header. A missed deadline
// ends the call with a retryable TeacherError('timeout') at once (not retried inside the SDK, which would hold the
// concurrency slot through its backoff): the caller retries it like a 5xx.

import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { resolveRemoteTeacherConfig, teacherSettings, validateChatCall, type RemoteTeacherSettings } from './config.ts';
import { DeadlineClock, deadlineMessage, watchedBody, type AttemptWatch, type DeadlineKind, type DeadlineSnapshot } from './deadlines.ts';
import { Semaphore, TokenBucket } from './limits.ts';
import { normalizeLogprobs } from './logprobs.ts';
import { constrainRequest, PRESETS } from './presets.ts';
import type { TeacherPreset } from './presets.ts';
import { LOGPROBS_UNAVAILABLE_NOTE, TeacherError } from './types.ts';
import type {
  ChatChoice, ChatMessage, ChatOptions, ChatResult, ChatUsage, TeacherCounters, TokenLogprob,
} from './types.ts';

type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface RemoteTeacherDeps {
  /** fetch to use (default globalThis.fetch). */
  fetch?: FetchFn;
}

export type { RemoteTeacherSettings } from './config.ts';

interface ChoiceState {
  /** Whether any chunk (or the JSON body) mentioned this choice. */
  seen: boolean;
  text: string;
  finishReason: string | null;
  tokens: TokenLogprob[];
}

/** State of one chat() call shared with the fetch wrapper and the watchdog. */
interface CallState {
  attempts: number;
  ctl: AbortController;
  userSignal: AbortSignal | undefined;
  /** Set when an attempt missed a deadline (the call was aborted for it). */
  missed?: { kind: DeadlineKind; ms: number };
  /** Multiplies this call's deadlines (ChatOptions.deadlineScale). */
  scale: number;
  /** One per HTTP attempt, in order. */
  watches: AttemptWatch[];
  /** Set when the caller's onDelta threw (that error is rethrown as is). */
  callbackError?: { error: unknown };
  /** Detaches from the caller's signal. */
  dispose: () => void;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export class RemoteTeacher {
  readonly settings: Readonly<RemoteTeacherSettings>;
  readonly preset: TeacherPreset;
  readonly #apiKey: string;
  readonly #client: OpenAI;
  readonly #fetch: FetchFn;
  readonly #sem: Semaphore;
  readonly #bucket: TokenBucket | null;
  readonly #deadlines: DeadlineClock;
  readonly #counters: TeacherCounters = {
    requests: 0, attempts: 0, retries: 0, succeeded: 0, failed: 0, aborted: 0, promptTokens: 0, completionTokens: 0, cost: 0, inFlight: 0,
    firstByteTimeouts: 0, idleTimeouts: 0, totalTimeouts: 0,
  };
  #logprobsAvailable: boolean | null = null;

  constructor(config: unknown, deps: RemoteTeacherDeps = {}) {
    const c = resolveRemoteTeacherConfig(config);
    const apiKey = c.apiKey;
    this.settings = teacherSettings(c);
    this.preset = PRESETS[c.preset];
    this.#apiKey = apiKey;
    this.#fetch = deps.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#sem = new Semaphore(c.maxConcurrency);
    this.#deadlines = new DeadlineClock(c);
    this.#bucket = c.requestsPerMinute > 0
      ? new TokenBucket(c.requestsPerMinute, c.rateWindowMs, Math.max(1, Math.floor(c.requestsPerMinute / 60)))
      : null;
    this.#client = new OpenAI({
      baseURL: c.baseURL,
      // The SDK insists on a credential; with no key the placeholder is removed again in #wrapFetch.
      apiKey: apiKey === '' ? 'no-key' : apiKey,
      // Explicit nulls: never pick up OPENAI_ORG_ID / OPENAI_PROJECT_ID / admin keys from the environment.
      organization: null,
      project: null,
      adminAPIKey: null,
      webhookSecret: null,
      maxRetries: c.maxRetries,
      timeout: c.timeoutMs,
      defaultHeaders: c.extraHeaders,
      dangerouslyAllowBrowser: true,
      logLevel: 'off',
    });
  }

  /** Snapshot of this teacher's counters. */
  get counters(): TeacherCounters {
    return { ...this.#counters, inFlight: this.#sem.inUse };
  }

  /** The deadlines a request sent now would get (ms; null = none), and how many answers they were learnt from. */
  get deadlines(): DeadlineSnapshot {
    return this.#deadlines.snapshot();
  }

  /** null until a call that asked for logprobs has completed; then whether the server returned them. */
  get logprobsAvailable(): boolean | null {
    return this.#logprobsAvailable;
  }

  /** IDs of the models the server lists (GET /models). */
  async listModels(signal?: AbortSignal): Promise<string[]> {
    const call = this.#newCall(signal, 1);
    try {
      const page = await this.#client.withOptions({ fetch: this.#wrapFetch(call) }).models.list({ signal: call.ctl.signal });
      return page.data.map((m) => String(m.id));
    } catch (e) {
      throw this.#toTeacherError(e, call);
    } finally {
      call.dispose();
    }
  }

  /**
   * One chat completion (n choices). Waits for a concurrency slot and a rate token, then sends the request through
   * the SDK (which retries). Throws TeacherError; `retryable` tells the job layer whether to re-queue.
   */
  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    validateChatCall(messages, opts);
    const c = this.settings;
    const want = constrainRequest(this.preset, { n: opts.n ?? 1, topLogprobs: opts.topLogprobs ?? c.topLogprobs, logprobs: c.logprobs });
    const stream = opts.stream ?? true;
    this.#counters.requests++;
    const call = this.#newCall(opts.signal, opts.deadlineScale ?? 1);
    let release: (() => void) | null = null;
    try {
      release = await this.#sem.acquire(call.ctl.signal);
      if (this.#bucket) await this.#bucket.take(call.ctl.signal);
      const body = this.#body(messages, opts, want, stream);
      const client = this.#client.withOptions({ fetch: this.#wrapFetch(call) });
      const reqOpts = { signal: call.ctl.signal };
      const states: ChoiceState[] = Array.from({ length: want.n }, () => ({ seen: false, text: '', finishReason: null, tokens: [] }));
      let usageRaw: unknown = undefined;
      let sawLogprobs = false;
      let servedModel: string | undefined;
      const k = this.preset.logprobsShape === 'together' ? Math.max(want.topLogprobs, 0) : want.topLogprobs;

      const absorb = (choice: unknown, where: string, isDelta: boolean): void => {
        if (!isRecord(choice)) throw new TeacherError('malformed', `${where}: choice is not an object`);
        const index = choice.index ?? 0;
        const st = typeof index === 'number' ? states[index] : undefined;
        if (!st) throw new TeacherError('malformed', `${where}: choice index ${String(index)} is outside 0..${want.n - 1}`);
        const msg = isDelta ? choice.delta : choice.message;
        const content = isRecord(msg) ? msg.content : undefined;
        if (content !== undefined && content !== null && typeof content !== 'string') {
          throw new TeacherError('malformed', `${where}: content is not a string`);
        }
        const text = content ?? '';
        st.seen = true;
        st.text += text;
        let toks: TokenLogprob[] | null = null;
        if (want.askLogprobs) {
          toks = normalizeLogprobs(choice.logprobs, text, k, `${where}.logprobs`);
          if (toks) {
            sawLogprobs = true;
            st.tokens.push(...toks);
          }
        }
        const fr = choice.finish_reason;
        if (typeof fr === 'string') st.finishReason = fr;
        else if (fr !== null && fr !== undefined) throw new TeacherError('malformed', `${where}: finish_reason is not a string`);
        if (isDelta && opts.onDelta && (text !== '' || toks)) {
          try {
            opts.onDelta(toks ? { index: index as number, text, tokens: toks } : { index: index as number, text });
          } catch (cbErr) {
            call.callbackError = { error: cbErr };
            throw cbErr;
          }
        }
      };

      if (stream) {
        const s = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsStreaming, reqOpts);
        let i = 0;
        for await (const chunk of s as AsyncIterable<unknown>) {
          const where = `stream chunk ${i++}`;
          if (!isRecord(chunk) || !Array.isArray(chunk.choices)) throw new TeacherError('malformed', `${where}: not a chat.completion.chunk`);
          if (chunk.usage !== undefined && chunk.usage !== null) usageRaw = chunk.usage;
          if (typeof chunk.model === 'string' && chunk.model !== '') servedModel ??= chunk.model.slice(0, 200);
          chunk.choices.forEach((ch: unknown, j) => absorb(ch, `${where}.choices[${j}]`, true));
        }
      } else {
        const res = await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, reqOpts).asResponse();
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new TeacherError('malformed', `response body is not JSON (${text.length} bytes)`);
        }
        if (!isRecord(json) || !Array.isArray(json.choices)) throw new TeacherError('malformed', 'response is not a chat.completion (no choices list)');
        usageRaw = json.usage;
        if (typeof json.model === 'string' && json.model !== '') servedModel = json.model.slice(0, 200);
        json.choices.forEach((ch: unknown, j) => absorb(ch, `choices[${j}]`, false));
      }
      // The SDK's stream iterator ends quietly when aborted: the abort is noticed here.
      if (call.ctl.signal.aborted) throw this.#toTeacherError(undefined, call);

      const received = states.filter((s) => s.seen);
      if (received.length === 0) throw new TeacherError('incomplete', 'the response had no choices');
      const missing = states.findIndex((s) => s.seen && s.finishReason === null);
      if (missing >= 0) throw new TeacherError('incomplete', `the response ended without a finish_reason for choice ${missing}`);
      const warnings = [...want.warnings];
      if (received.length < want.n) warnings.push(`asked for ${want.n} choices, the server returned ${received.length}`);

      const usage = parseUsage(usageRaw);
      const cost = (usage.promptTokens * c.pricePer1MInput + usage.completionTokens * c.pricePer1MOutput) / 1e6;
      const anyText = received.some((s) => s.text !== '');
      const logprobsAvailable = want.askLogprobs && (sawLogprobs || !anyText);
      if (want.askLogprobs && anyText) this.#logprobsAvailable = sawLogprobs;
      const choices: ChatChoice[] = [];
      states.forEach((s, index) => {
        if (!s.seen) return;
        const ch: ChatChoice = { index, text: s.text, finishReason: s.finishReason ?? 'stop' };
        if (logprobsAvailable) ch.tokens = s.tokens;
        choices.push(ch);
      });
      const result: ChatResult = { model: c.model, choices, usage, cost, logprobsAvailable, warnings, attempts: call.attempts };
      if (servedModel !== undefined) result.servedModel = servedModel;
      if (!logprobsAvailable) result.logprobsNote = want.logprobsNote ?? LOGPROBS_UNAVAILABLE_NOTE;
      call.watches.at(-1)?.accept(); // the attempt that answered: an observation of this server's usual latency
      this.#counters.succeeded++;
      this.#counters.promptTokens += usage.promptTokens;
      this.#counters.completionTokens += usage.completionTokens;
      this.#counters.cost += cost;
      return result;
    } catch (e) {
      if (call.callbackError) {
        this.#counters.failed++;
        throw call.callbackError.error; // thrown by the caller's onDelta: theirs, passed on unchanged
      }
      const err = this.#toTeacherError(e, call);
      if (err.kind === 'aborted') this.#counters.aborted++;
      else this.#counters.failed++;
      throw err;
    } finally {
      release?.();
      call.dispose();
    }
  }

  #newCall(userSignal: AbortSignal | undefined, scale: number): CallState {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    if (userSignal?.aborted) ctl.abort();
    else userSignal?.addEventListener('abort', onAbort, { once: true });
    const call: CallState = {
      attempts: 0, ctl, userSignal, scale, watches: [],
      dispose: () => {
        userSignal?.removeEventListener('abort', onAbort);
        for (const w of call.watches) w.end(); // an attempt the SDK abandoned keeps no deadline running
      },
    };
    return call;
  }

  #body(messages: ChatMessage[], opts: ChatOptions, want: ReturnType<typeof constrainRequest>, stream: boolean): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.settings.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      stream,
    };
    if (stream) body.stream_options = { include_usage: true };
    if (want.n > 1) body.n = want.n;
    if (opts.seed !== undefined) body.seed = opts.seed;
    if (opts.temperature !== undefined) body.temperature = opts.temperature;
    if (opts.maxTokens !== undefined) body[this.preset.maxTokensField] = opts.maxTokens;
    if (opts.stop !== undefined) body.stop = opts.stop;
    if (want.askLogprobs) {
      if (this.preset.logprobsShape === 'together') {
        body.logprobs = Math.max(1, want.topLogprobs);
      } else {
        body.logprobs = true;
        if (want.topLogprobs > 0) body.top_logprobs = want.topLogprobs;
      }
    }
    return body;
  }

  /**
   * The fetch handed to the SDK for one call: counts attempts and retries, charges retries to the rate bucket
   * (without waiting: the SDK's timeout is already running), refuses any URL outside baseURL, drops the
   * placeholder Authorization header when there is no key, and puts each attempt under the deadlines: a miss
   * aborts the whole call (call.ctl, which the SDK takes for the caller's signal, so it does not retry it).
   */
  #wrapFetch(call: CallState): FetchFn {
    const base = this.settings.baseURL;
    return async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url !== base && !url.startsWith(base + '/') && !url.startsWith(base + '?')) {
        throw new TeacherError('config', 'refusing to send a request outside the configured baseURL');
      }
      const headers = new Headers(init?.headers);
      const retry = Number(headers.get('x-stainless-retry-count') ?? '0');
      call.attempts++;
      this.#counters.attempts++;
      if (retry > 0) {
        this.#counters.retries++;
        this.#bucket?.takeNow();
      }
      if (this.#apiKey === '') headers.delete('authorization');
      const watch = this.#deadlines.start((kind, ms) => {
        if (call.missed || call.ctl.signal.aborted) return;
        call.missed = { kind, ms };
        if (kind === 'first-byte') this.#counters.firstByteTimeouts++;
        else if (kind === 'idle') this.#counters.idleTimeouts++;
        else this.#counters.totalTimeouts++;
        call.ctl.abort();
      }, call.scale);
      call.watches.push(watch);
      let res: Response;
      try {
        res = await this.#fetch(url, { ...init, headers });
      } catch (e) {
        watch.end();
        throw e;
      }
      watch.headers();
      if (!res.body || NULL_BODY_STATUS.has(res.status)) {
        watch.chunk();
        watch.end();
        return res;
      }
      return new Response(watchedBody(res.body, watch), { status: res.status, statusText: res.statusText, headers: res.headers });
    };
  }

  #toTeacherError(e: unknown, call: CallState): TeacherError {
    if (e instanceof TeacherError) return e;
    if (call.userSignal?.aborted) return new TeacherError('aborted', 'the request was aborted');
    if (call.missed) return new TeacherError('timeout', `${deadlineMessage(call.missed.kind, call.missed.ms)} (attempt ${call.attempts})`);
    if (e instanceof APIUserAbortError) return new TeacherError('aborted', 'the request was aborted');
    if (e instanceof APIConnectionTimeoutError) {
      return new TeacherError('timeout', `no response within ${this.settings.timeoutMs} ms (after ${call.attempts} attempts)`);
    }
    if (e instanceof APIConnectionError) return new TeacherError('connection', `could not reach the server (after ${call.attempts} attempts)`);
    if (e instanceof APIError) {
      const status = typeof e.status === 'number' ? e.status : undefined;
      const detail = this.#scrub(e.message);
      if (status === undefined) return new TeacherError('server', `the server reported an error: ${detail}`);
      if (status === 429) return new TeacherError('rate-limit', `rate limited (HTTP 429) after ${call.attempts} attempts: ${detail}`, status);
      if (status === 401 || status === 403) return new TeacherError('auth', `the server refused the credentials (HTTP ${status}): ${detail}`, status);
      if (status >= 500 || status === 408 || status === 409) {
        return new TeacherError('server', `server error (HTTP ${status}) after ${call.attempts} attempts: ${detail}`, status);
      }
      return new TeacherError('bad-request', `the server rejected the request (HTTP ${status}): ${detail}`, status);
    }
    if (e instanceof SyntaxError) return new TeacherError('malformed', 'the server sent a stream chunk that is not JSON');
    if (e instanceof Error && (e.name === 'AbortError' || e.name === 'TypeError')) {
      return new TeacherError('connection', `the connection failed while reading the response (${this.#scrub(e.message)})`);
    }
    return new TeacherError('connection', `request failed: ${this.#scrub(e instanceof Error ? e.message : String(e))}`);
  }

  /** Server text is untrusted: one line, at most 300 characters, the key (if echoed) redacted. */
  #scrub(text: string): string {
    let t = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300);
    if (this.#apiKey !== '') t = t.split(this.#apiKey).join('[redacted]');
    return t;
  }
}

function parseUsage(raw: unknown): ChatUsage {
  if (!isRecord(raw)) return { promptTokens: 0, completionTokens: 0, totalTokens: 0, reported: false };
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  const promptTokens = n(raw.prompt_tokens);
  const completionTokens = n(raw.completion_tokens);
  return { promptTokens, completionTokens, totalTokens: n(raw.total_tokens) || promptTokens + completionTokens, reported: true };
}

/** Statuses whose Response may not have a body (a body-wrapping Response cannot be built for them). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
