// "Test connection" for a remote (OpenAI-compatible) teacher, without the DOM: GET /models (which models the server
// lists), then one tiny chat completion through RemoteTeacher asking for logprobs + top_logprobs, and a typed
// report a newcomer can act on: reachable or not, latency, the model that answered, whether token log-probabilities
// and their top alternatives came back (token-level KD possible, or only sequence-level KD). Every failure is told
// apart and explained with what to do: CORS, nothing listening, DNS, mixed content (an https page calling http),
// a timeout, 401/403 (the key), 404 (the base URL or the model), 429, 5xx, a server that is not OpenAI-compatible.
//
// In a browser a refused connection and a CORS block both reach the page as the same bare `TypeError: Failed to
// fetch`. They are told apart by a second request in `no-cors` mode (no key, no headers): an opaque answer means
// the server is up and it is CORS that blocked the first one; a failure means nothing answered. Node has no CORS:
// there the error's cause (ECONNREFUSED, ENOTFOUND) says it. The key is only ever sent by RemoteTeacher, to
// baseURL; no text in a report contains it (RemoteTeacher scrubs server messages; the report is scrubbed again).
import { resolveRemoteTeacherConfig } from './config.ts';
import { PRESETS, type TeacherPreset } from './presets.ts';
import { PRESET_NAMES, TeacherError, type PresetName, type RemoteTeacherConfig } from './types.ts';

type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export type ConnectionProblem =
  | 'config' // the settings themselves are invalid (no request sent)
  | 'mixed-content' // an https page and a plain-http, non-loopback base URL: the browser blocks it unsent
  | 'cors' // the server answers, the browser hides the answer from this origin
  | 'refused' // connection refused: nothing listens at that host:port
  | 'dns' // the host name does not resolve
  | 'unreachable' // no HTTP answer at all (refused, no route, blocked) where the cause cannot be seen
  | 'timeout'
  | 'auth' // 401 / 403
  | 'not-found' // 404 on the API path: the base URL is wrong
  | 'model-not-found' // 404 naming the model, or a model the server does not list
  | 'rate-limit' // 429
  | 'server' // 5xx
  | 'bad-request' // another 4xx
  | 'malformed' // the answer is not an OpenAI chat completion
  | 'aborted';

export interface ConnectionReport {
  /** The chat completion came back. */
  ok: boolean;
  /** Some HTTP answer came back (even an error status). */
  reachable: boolean;
  problem: ConnectionProblem | null;
  /** HTTP status of the failure, when the server answered with one. */
  status: number | null;
  /** One plain sentence: what happened. */
  summary: string;
  /** What to do about it, one line each (empty when all is well). */
  advice: string[];
  /** The server's own error text (one line, scrubbed of the key), or null. */
  detail: string | null;
  /** IDs listed by GET /models; null when the listing failed. */
  models: string[] | null;
  modelsNote: string | null;
  /** The model asked for (the first listed one when none was given). */
  model: string;
  /** The model name the server reported in its answer. */
  servedModel: string | null;
  /** Milliseconds from sending the chat request to its complete answer. */
  latencyMs: number | null;
  /** Token log-probabilities came back; null = not known (no answer, or an empty one). */
  logprobs: boolean | null;
  /** Top alternatives per token came back. */
  topLogprobs: boolean | null;
  /** The server answered 400 to the logprobs parameters (and answered without them): never ask it for logprobs. */
  logprobsRejected: boolean;
  /** 'token' = token-level KD possible (log-probabilities with alternatives); 'sequence' = only SFT on the answers. */
  kd: 'token' | 'sequence' | null;
  /** Plain sentence about kd. */
  kdNote: string;
  /** The teacher's answer to the test prompt (untrusted text). */
  sample: string | null;
  warnings: string[];
}

export interface ConnectionEnv {
  /** The page's origin (location.origin); absent in Node. Enables the CORS and mixed-content diagnosis. */
  pageOrigin?: string;
  fetch?: FetchFn;
  /** Per request (default 20 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Alternatives asked for per token (default 5). */
  topLogprobs?: number;
}

/** What testConnection takes: a RemoteTeacherConfig given as plain data; `model` may be '' (then the first listed). */
export type ConnectionConfig = Partial<RemoteTeacherConfig> & { baseURL?: string; model?: string };

export const TEST_PROMPT = 'Reply with one short sentence.';

const LOOPBACK = /^(localhost|[\w.-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function presetOf(name: unknown): TeacherPreset {
  return (PRESET_NAMES as readonly unknown[]).includes(name) ? PRESETS[name as PresetName] : PRESETS.custom;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** The host[:port] of a URL, or the text itself when it is not one (for messages). */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** "0.42 s", "3.1 s", "42 s". */
export function seconds(ms: number): string {
  return `${ms < 1000 ? (ms / 1000).toFixed(2) : ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
}

function hostnameOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}

/** An https page calling a plain-http, non-loopback URL: browsers block it before sending (mixed content). */
export function isMixedContent(pageOrigin: string | undefined, baseURL: string): boolean {
  if (!pageOrigin?.startsWith('https:')) return false;
  try {
    const u = new URL(baseURL);
    return u.protocol === 'http:' && !LOOPBACK.test(u.hostname);
  } catch {
    return false;
  }
}

const START_HINT: Partial<Record<PresetName, string>> = {
  ollama: 'ollama serve',
  vllm: 'vllm serve <model>',
  llamacpp: 'llama-server -m <model>.gguf --port 8080',
  lmstudio: "LM Studio's Developer tab → Start server, or lms server start",
};

/** How to let this page's origin through, for the preset first and then for the other local servers. */
export function corsAdvice(preset: PresetName, pageOrigin: string): string[] {
  const o = pageOrigin || '<this page’s origin>';
  const lines: Partial<Record<PresetName, string>> = {
    ollama: `Ollama: start it with OLLAMA_ORIGINS=${o} ollama serve (for the desktop app, set OLLAMA_ORIGINS in its environment and restart it).`,
    vllm: `vLLM: vllm serve <model> --allowed-origins '["${o}"]' (vLLM allows every origin by default: a proxy in front of it may be what blocks).`,
    llamacpp: 'llama.cpp (llama-server): allows every origin by default; a proxy in front of it or an old build may not. If it was started with --api-key, the key must match too.',
    lmstudio: 'LM Studio: turn on "Enable CORS" in the server settings of its Developer tab (or lms server start --cors).',
  };
  const p = PRESETS[preset];
  const first = lines[preset] ?? (preset === 'custom'
    ? `The server must answer with Access-Control-Allow-Origin: ${o} (or *) and allow the Authorization and Content-Type request headers.`
    : `${p.label}'s API normally accepts browser requests: a browser extension, a company proxy or a wrong base URL may be in the way.`);
  const others = (['ollama', 'vllm', 'llamacpp', 'lmstudio'] as const).filter((k) => k !== preset).map((k) => lines[k]!);
  return preset === 'custom' ? [first, ...others] : lines[preset] ? [first] : [first, ...others];
}

export interface FailureContext {
  baseURL: string;
  preset: PresetName;
  model: string;
  hasKey: boolean;
  pageOrigin?: string;
  /** Models the server listed (null when unknown). */
  models?: string[] | null;
  /** Which request failed. */
  request: 'models' | 'chat';
  /** Outcome of the no-key no-cors probe after a connection error. */
  probe?: ProbeResult;
  timeoutMs?: number;
}

export interface FailureExplanation {
  problem: ConnectionProblem;
  status: number | null;
  reachable: boolean;
  summary: string;
  advice: string[];
  detail: string | null;
}

/** Why `e` (a TeacherError, typically) happened and what to do, in plain sentences. Never includes a key. */
export function explainFailure(e: unknown, ctx: FailureContext): FailureExplanation {
  const preset = PRESETS[ctx.preset] ?? PRESETS.custom;
  const origin = originOf(ctx.baseURL);
  const host = hostOf(ctx.baseURL);
  const te = e instanceof TeacherError ? e : null;
  const status = te?.status ?? null;
  const detail = te ? te.message : e instanceof Error ? e.message : String(e);
  const out = (problem: ConnectionProblem, reachable: boolean, summary: string, advice: string[]): FailureExplanation =>
    ({ problem, status, reachable, summary, advice, detail });
  const start = START_HINT[ctx.preset];
  const checkUrl = `Check the base URL (${ctx.baseURL}): host, port and the path ending in /v1.`;
  const loopbackFromHttps = ctx.pageOrigin?.startsWith('https:') && ctx.baseURL.startsWith('http:') && LOOPBACK.test(hostnameOf(ctx.baseURL))
    ? ['This page is https and the server plain http: Chrome and Firefox allow that for localhost, Safari does not (use the app from http://localhost, or give the server https).']
    : [];

  switch (te?.kind) {
    case 'config':
      return out('config', false, `The settings are not valid: ${detail.replace(/^teacher config: /, '')}.`, []);
    case 'aborted':
      return out('aborted', false, 'The test was cancelled.', []);
    case 'timeout':
      return out('timeout', true, `No answer from ${origin} within ${seconds(ctx.timeoutMs ?? 20_000)}.`, [
        'The server may be busy, or still loading the model (the first request after starting a local server can take minutes): try again in a moment.',
        checkUrl,
      ]);
    case 'auth':
      if (!ctx.hasKey) {
        return out('auth', true, `The server wants an API key (HTTP ${status}) and none was entered.`, [`Enter the API key for ${host} above, then test again.`]);
      }
      return out('auth', true, status === 403
        ? `The server refused the API key (HTTP 403): the key is not allowed to use this endpoint or model.`
        : `The server refused the API key (HTTP ${status ?? 401}).`, [
        `Check the API key for ${host}: copy it again from the provider's dashboard (it may be mistyped, revoked, expired, or belong to another project).`,
        ...(status === 403 ? [`Check that this key may use the model "${ctx.model}".`] : []),
      ]);
    case 'rate-limit':
      return out('rate-limit', true, 'The server is rate-limiting these requests (HTTP 429).', [
        'Wait a minute and test again; lower "requests per minute" and "max concurrent requests" below.',
        'On a hosted API, check the account\'s quota and billing: some answer 429 when the credit is used up.',
      ]);
    case 'server':
      return out('server', true, `The server failed to answer${status ? ` (HTTP ${status})` : ''}.`, [
        'Look at the server\'s log. A local server may still be loading the model, or may have run out of memory.',
      ]);
    case 'malformed':
    case 'incomplete':
      return out('malformed', true, 'The server answered, but not with an OpenAI chat completion.', [
        `Check that the base URL is the OpenAI-compatible API root (usually ending in /v1${preset.baseURL ? `, e.g. ${preset.baseURL}` : ''}), not a web page.`,
        'Pick the preset that matches the server, or "Other OpenAI-compatible server".',
      ]);
    case 'bad-request': {
      if (status === 404) {
        const listed = ctx.models && ctx.models.length > 0 ? ctx.models : null;
        const unknownModel = ctx.request === 'chat' && ((listed && !listed.includes(ctx.model)) || /model/i.test(detail));
        if (unknownModel) {
          return out('model-not-found', true, `The server does not know the model "${ctx.model}" (HTTP 404).`, [
            listed ? `Pick a model the server lists: ${listed.slice(0, 8).join(', ')}${listed.length > 8 ? ', …' : ''}.` : 'Check the model name (the exact id the server uses).',
          ]);
        }
        const path = pathOf(ctx.baseURL).replace(/\/+$/, '');
        return out('not-found', true, `${ctx.request === 'models' ? `${ctx.baseURL}/models` : `${ctx.baseURL}/chat/completions`} does not exist (HTTP 404).`, [
          /\/v\d+\w*$/.test(path) || path.endsWith('/openai')
            ? checkUrl
            : `The base URL should be the API root, which usually ends in /v1 (e.g. ${origin}${path}/v1${preset.baseURL ? `; ${preset.label}: ${preset.baseURL}` : ''}).`,
          ...(ctx.request === 'chat' ? ['Or the model name is unknown to the server.'] : []),
        ]);
      }
      return out('bad-request', true, `The server rejected the test request (HTTP ${status ?? '4xx'}).`, [
        'The preset decides which parameters are sent: pick the one that matches the server (or "Other OpenAI-compatible server").',
      ]);
    }
    case 'connection':
    case undefined: {
      const cross = ctx.pageOrigin !== undefined && ctx.pageOrigin !== origin;
      if (ctx.probe === 'answered' && cross) {
        return out('cors', true, `The server at ${origin} is running, but the browser blocked its answer: it does not allow requests from this page's origin (${ctx.pageOrigin}). This is CORS.`,
          corsAdvice(ctx.preset, ctx.pageOrigin!));
      }
      if (ctx.probe === 'refused') {
        return out('refused', false, `Connection refused at ${host}: no server is listening there.`, [
          start ? `Start the server (${start}), then test again.` : 'Start the server, then test again.', checkUrl,
        ]);
      }
      if (ctx.probe === 'dns') {
        return out('dns', false, `The host name in the base URL (${host}) could not be found (DNS).`, [
          'Check the spelling of the base URL. A hosted API needs this computer to be online.',
        ]);
      }
      if (ctx.probe === 'timeout') {
        return out('timeout', false, `No answer from ${origin}: the connection timed out.`, [
          'A firewall may drop the connection, or the host is wrong.', checkUrl,
        ]);
      }
      if (ctx.probe === 'answered') {
        return out('unreachable', true, `The connection to ${origin} failed while the request was sent or read.`, [
          'Try again; if it keeps failing, look at the server\'s log.',
        ]);
      }
      return out('unreachable', false, `Nothing answered at ${origin}: the server is not running, or the host or port is wrong (connection refused, or no route to it).`, [
        start ? `Start the server (${start}) and check the base URL: ${ctx.baseURL}.` : `Start the server and check the base URL: ${ctx.baseURL}.`,
        ...loopbackFromHttps,
        ...(cross ? ['If the server is running on another computer, a firewall may block it, or it may listen on 127.0.0.1 only.'] : []),
      ]);
    }
  }
}

export type ProbeResult = 'answered' | 'refused' | 'dns' | 'timeout' | 'failed';

/**
 * One keyless GET in no-cors mode: 'answered' when any HTTP answer came back (even one CORS would hide),
 * else why not (Node says refused / dns through the error's cause; a browser only says 'failed').
 */
export async function probe(url: string, fetchFn: FetchFn, timeoutMs = 5000): Promise<ProbeResult> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetchFn(url, { mode: 'no-cors', cache: 'no-store', credentials: 'omit', signal: ctl.signal });
    void res.body?.cancel().catch(() => undefined);
    return 'answered';
  } catch (e) {
    if (ctl.signal.aborted) return 'timeout';
    const code = String((e as { cause?: { code?: unknown } })?.cause?.code ?? '');
    if (code === 'ECONNREFUSED') return 'refused';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}

/** Replaces every occurrence of the key in the report's text fields (defence in depth). */
function scrub<T>(value: T, key: string): T {
  if (key === '') return value;
  const s = (x: unknown): unknown => typeof x === 'string' ? x.split(key).join('[redacted]') : Array.isArray(x) ? x.map(s) : x;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, s(v)])) as T;
}

/** Runs the connection test. Never throws: every outcome is a report. */
export async function testConnection(config: ConnectionConfig, env: ConnectionEnv = {}): Promise<ConnectionReport> {
  const apiKey = isRecord(config) && typeof config.apiKey === 'string' ? config.apiKey : '';
  const report: ConnectionReport = {
    ok: false, reachable: false, problem: null, status: null, summary: '', advice: [], detail: null, models: null, modelsNote: null,
    model: typeof config?.model === 'string' ? config.model.trim() : '', servedModel: null, latencyMs: null,
    logprobs: null, topLogprobs: null, logprobsRejected: false, kd: null, kdNote: '', sample: null, warnings: [],
  };
  const fail = (x: FailureExplanation): ConnectionReport => scrub({ ...report, ...x, ok: false }, apiKey);
  const fetchFn: FetchFn = env.fetch ?? ((i, init) => globalThis.fetch(i, init));
  const timeoutMs = env.timeoutMs ?? 20_000;

  // The settings, checked the way RemoteTeacher checks them (a placeholder model until one is known).
  let base: RemoteTeacherConfig;
  try {
    base = resolveRemoteTeacherConfig({ ...config, model: report.model || 'unset', maxRetries: 0, timeoutMs });
  } catch (e) {
    return fail(explainFailure(e, { baseURL: String(config?.baseURL ?? ''), preset: presetOf(config?.preset).name, model: report.model, hasKey: apiKey !== '', request: 'models' }));
  }
  const ctx = (request: 'models' | 'chat', extra: Partial<FailureContext> = {}): FailureContext => ({
    baseURL: base.baseURL, preset: base.preset, model: report.model, hasKey: apiKey !== '', request, timeoutMs,
    models: report.models, ...(env.pageOrigin !== undefined ? { pageOrigin: env.pageOrigin } : {}), ...extra,
  });
  if (isMixedContent(env.pageOrigin, base.baseURL)) {
    return fail({
      problem: 'mixed-content', status: null, reachable: false, detail: null,
      summary: `This page is https and the base URL is plain http (${hostOf(base.baseURL)}): the browser blocks such requests (mixed content) before they are sent.`,
      advice: [
        'Give the server an https address (a reverse proxy with TLS, or a tunnel), or',
        'open this app over http from localhost (npm start serves it at http://127.0.0.1:5173/), from where an http server can be called.',
      ],
    });
  }
  const diagnose = async (e: unknown, request: 'models' | 'chat'): Promise<FailureExplanation> => {
    const kind = e instanceof TeacherError ? e.kind : 'connection';
    const p = kind === 'connection' ? await probe(`${base.baseURL}/models`, fetchFn, Math.min(timeoutMs, 5000)) : undefined;
    return explainFailure(e, ctx(request, p ? { probe: p } : {}));
  };

  // The client (and the OpenAI SDK under it) loads with the first test, not with the page that offers the test.
  let RemoteTeacher: typeof import('./remote.ts').RemoteTeacher;
  try {
    ({ RemoteTeacher } = await import('./remote.ts'));
  } catch (e) {
    return fail(explainFailure(e, ctx('models')));
  }

  // 1. Which models the server lists (also: is anything there at all, and does it take the key).
  const lister = new RemoteTeacher(base, { fetch: fetchFn });
  try {
    report.models = await lister.listModels(env.signal);
    report.reachable = true;
    report.modelsNote = report.models.length === 0 ? 'The server lists no models.' : null;
  } catch (e) {
    const x = await diagnose(e, 'models');
    if (x.problem === 'not-found' || x.problem === 'bad-request' || x.problem === 'malformed' || x.problem === 'server') {
      // Some OpenAI-compatible servers have no GET /models: the chat request below decides.
      report.reachable = true;
      report.modelsNote = `The server did not list its models (${x.status ? `HTTP ${x.status}` : x.problem}).`;
    } else {
      return fail(x);
    }
  }
  if (report.model === '') {
    const first = report.models?.[0];
    if (first === undefined) {
      return fail({ problem: 'config', status: null, reachable: true, detail: null, summary: 'No model was given and the server lists none.', advice: ['Enter the model name (the id the server uses).'] });
    }
    report.model = first;
    report.warnings.push(`No model was given: tested the first one the server lists, ${first}.`);
  }
  if (report.models && report.models.length > 0 && !report.models.includes(report.model)) {
    report.warnings.push(`"${report.model}" is not among the models the server lists (${report.models.length}).`);
  }

  // 2. One tiny chat completion asking for logprobs and top alternatives.
  const chatOnce = async (logprobs: 'auto' | 'off') => {
    const teacher = new RemoteTeacher({ ...base, model: report.model, logprobs }, { fetch: fetchFn });
    const t0 = performance.now();
    const r = await teacher.chat([{ role: 'user', content: TEST_PROMPT }], {
      maxTokens: 16, topLogprobs: env.topLogprobs ?? 5, ...(env.signal ? { signal: env.signal } : {}),
    });
    return { r, ms: performance.now() - t0 };
  };
  let answer: Awaited<ReturnType<typeof chatOnce>>;
  try {
    answer = await chatOnce(base.logprobs);
  } catch (e) {
    const rejectsLogprobs = e instanceof TeacherError && e.kind === 'bad-request' && e.status === 400 && /logprob/i.test(e.message) && base.logprobs === 'auto';
    if (!rejectsLogprobs) return fail(await diagnose(e, 'chat'));
    try {
      answer = await chatOnce('off');
      report.logprobsRejected = true;
    } catch (e2) {
      return fail(await diagnose(e2, 'chat'));
    }
  }
  const { r, ms } = answer;
  report.ok = true;
  report.reachable = true;
  report.latencyMs = Math.round(ms);
  report.servedModel = r.servedModel ?? null;
  report.sample = r.choices.map((c) => c.text).join('\n');
  report.warnings.push(...r.warnings);
  const tokens = r.choices[0]?.tokens;
  if (report.logprobsRejected) {
    report.logprobs = false;
    report.topLogprobs = false;
  } else if (tokens && tokens.length > 0) {
    report.logprobs = true;
    report.topLogprobs = tokens.some((t) => t.top.length > 0);
  } else if (r.logprobsAvailable && report.sample === '') {
    report.logprobs = null; // an empty answer says nothing either way
  } else {
    report.logprobs = false;
    report.topLogprobs = false;
  }
  if (report.logprobs && report.topLogprobs) {
    report.kd = 'token';
    report.kdNote = 'Token-level KD possible: the server returns each token\'s log-probability and its top alternatives.';
  } else if (report.logprobs === null) {
    report.kdNote = 'The answer was empty, so it is not known whether this server returns log-probabilities; test again.';
  } else {
    report.kd = 'sequence';
    report.kdNote = report.logprobsRejected
      ? 'Only sequence-level KD (SFT on the teacher\'s answers): this server rejects the logprobs parameter (HTTP 400).'
      : report.logprobs
        ? 'Only sequence-level KD (SFT on the teacher\'s answers): this server returns the chosen token\'s log-probability but no alternatives (top_logprobs).'
        : `Only sequence-level KD (SFT on the teacher's answers): this server returns no log-probabilities${r.logprobsNote && !/returns no token log-probabilities/.test(r.logprobsNote) ? ` (${r.logprobsNote})` : ''}.`;
  }
  const answered = report.servedModel && report.servedModel !== report.model ? `${report.servedModel} (asked for ${report.model})` : report.model;
  report.summary = `Connected: ${answered} answered in ${seconds(ms)}.`;
  return scrub(report, apiKey);
}
