// Shared vocabulary of the remote (OpenAI-compatible) teacher: chat messages, per-call options, the normalised
// result (text + per-token logprobs + usage + cost), per-teacher counters, the typed configuration and the one
// error class every failure is turned into. Defaults and validation of the config live in config.ts, the server
// presets in presets.ts, the client in remote.ts.

/** Names of the server presets (presets.ts). 'custom' = any OpenAI-compatible server, no known constraints. */
export const PRESET_NAMES = ['custom', 'openai', 'openrouter', 'together', 'groq', 'vllm', 'llamacpp', 'ollama', 'lmstudio'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** Configuration of one remote teacher. Every key has a default in config.ts except `model`. */
export interface RemoteTeacherConfig {
  /** Which server family this is: decides the default baseURL and the request constraints (presets.ts). */
  preset: PresetName;
  /** Base URL of the API including the version path, e.g. 'http://127.0.0.1:8000/v1'. */
  baseURL: string;
  /** Sent only to baseURL, only in the Authorization header; '' = send no Authorization header at all. */
  apiKey: string;
  model: string;
  /** Extra request headers (not Authorization: the key goes in apiKey). */
  extraHeaders: Record<string, string>;
  /** Chat calls in flight at once (a semaphore shared by every call of this teacher). */
  maxConcurrency: number;
  /** HTTP requests (retries included) started per rate window; 0 = unlimited. */
  requestsPerMinute: number;
  /** Length of the rate window in ms (60 000 = a minute; tests use a short one). */
  rateWindowMs: number;
  /** Retries of one chat call done by the openai SDK (429, 408, 409, 5xx, connection errors, timeouts). */
  maxRetries: number;
  /**
   * Per HTTP attempt: time to the response headers (the SDK's timeout, which the SDK retries), and the cap of every
   * deadline below.
   */
  timeoutMs: number;
  /**
   * Deadlines of one attempt (deadlines.ts), in ms or 'auto' (2 × the p95 this teacher observed on its recent
   * answers, at least 0.5 s / 1 s / 0.5 s, at most timeoutMs; before 8 answers: timeoutMs / timeoutMs / none).
   * A miss aborts the attempt and fails the call with a retryable TeacherError('timeout').
   */
  /** From sending the request to the first byte of the response body. */
  firstByteTimeoutMs: number | 'auto';
  /** The longest silence between two chunks of the body. */
  idleTimeoutMs: number | 'auto';
  /** From sending the request to the end of the body. */
  totalTimeoutMs: number | 'auto';
  /** Prices in currency units per million tokens, for the cost counters (0 = free / unknown). */
  pricePer1MInput: number;
  pricePer1MOutput: number;
  /** 'auto' = ask for logprobs when the preset allows it and detect whether they come back; 'off' = never ask. */
  logprobs: 'auto' | 'off';
  /** Alternatives per position (0–20; clamped to the preset's maximum). */
  topLogprobs: number;
}

export interface ChatDelta {
  /** Choice index (0 ≤ index < n). */
  index: number;
  /** Newly received text of that choice. */
  text: string;
  /** Tokens with logprobs received in this chunk (when logprobs are on and the server sends them). */
  tokens?: TokenLogprob[];
}

export interface ChatOptions {
  /** Completions per prompt (clamped to 1 with a warning where the preset does not allow n > 1). */
  n?: number;
  seed?: number;
  temperature?: number;
  maxTokens?: number;
  /** Overrides the config's topLogprobs for this call (0–20). */
  topLogprobs?: number;
  stop?: string[];
  /** true (default) = SSE streaming with usage in the last chunk; false = one JSON response. */
  stream?: boolean;
  signal?: AbortSignal;
  /** Called for each streamed piece of text (streaming only). */
  onDelta?: (delta: ChatDelta) => void;
  /**
   * Multiplies this call's deadlines (≥ 1): a caller retrying a request that missed a deadline passes 2, 4, … so a
   * request that is slow by nature (a long prompt) gets more time each try.
   */
  deadlineScale?: number;
}

export interface TopLogprob {
  token: string;
  logprob: number;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of the token when the server gives them (a token may be part of a character). */
  bytes?: number[];
  /** Most likely alternatives at this position, sorted by logprob descending. */
  top: TopLogprob[];
}

export interface ChatChoice {
  index: number;
  text: string;
  /** 'stop' | 'length' | ... as the server says. */
  finishReason: string;
  /** Present when logprobs were requested and the server returned them. */
  tokens?: TokenLogprob[];
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** false when the server sent no usage (the numbers are then 0 and the cost unknown). */
  reported: boolean;
}

export interface ChatResult {
  model: string;
  /** The model name the server put in its response (may differ from the one asked for, e.g. a dated snapshot). */
  servedModel?: string;
  choices: ChatChoice[];
  usage: ChatUsage;
  /** Cost of this call from the configured prices (0 when prices are 0 or usage was not reported). */
  cost: number;
  /** true when logprobs were requested and the server returned them. */
  logprobsAvailable: boolean;
  /** User-facing explanation when logprobs are unavailable (LOGPROBS_UNAVAILABLE_NOTE or the preset's reason). */
  logprobsNote?: string;
  /** Constraint adjustments made to this request (e.g. n clamped to 1). */
  warnings: string[];
  /** HTTP attempts this call took (1 + the SDK's retries). */
  attempts: number;
}

/** Per-teacher counters (a snapshot; never contains the key). */
export interface TeacherCounters {
  /** chat() calls started. */
  requests: number;
  /** HTTP requests sent (first attempts and retries). */
  attempts: number;
  /** HTTP requests that were SDK retries. */
  retries: number;
  succeeded: number;
  failed: number;
  aborted: number;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  /** chat() calls holding a concurrency slot now. */
  inFlight: number;
  /** Attempts aborted for missing a deadline (deadlines.ts): no first byte, a silent body, too long overall. */
  firstByteTimeouts: number;
  idleTimeouts: number;
  totalTimeouts: number;
}

export const LOGPROBS_UNAVAILABLE_NOTE =
  'this server returns no token log-probabilities: token-level KD is unavailable; sequence-level KD (SFT on the ' +
  "teacher's text) still works";

/** What went wrong, coarse enough for the job layer to decide whether to retry. */
export type TeacherErrorKind =
  | 'config' // bad configuration or call options (never retry)
  | 'aborted' // the caller's AbortSignal fired
  | 'timeout' // no response headers within timeoutMs (after the SDK's retries), or an attempt missed a deadline
  | 'connection' // connection refused/reset, socket closed mid-response
  | 'rate-limit' // 429 after the SDK's retries
  | 'server' // 5xx / 408 / 409 after the SDK's retries
  | 'auth' // 401 / 403
  | 'bad-request' // other 4xx: the request itself is wrong for this server
  | 'malformed' // the server's body or an SSE chunk is not the JSON we expect
  | 'incomplete'; // the stream ended without a finish reason for every choice

const RETRYABLE: Record<TeacherErrorKind, boolean> = {
  config: false,
  aborted: false,
  timeout: true,
  connection: true,
  'rate-limit': true,
  server: true,
  auth: false,
  'bad-request': false,
  malformed: true,
  incomplete: true,
};

/** The only error a RemoteTeacher throws. Holds no request, response, header or key. */
export class TeacherError extends Error {
  readonly kind: TeacherErrorKind;
  /** HTTP status when the server answered with one. */
  readonly status: number | undefined;
  /** Whether trying the same request again later may succeed (the job layer re-queues these). */
  readonly retryable: boolean;
  constructor(kind: TeacherErrorKind, message: string, status?: number) {
    super(message);
    this.name = 'TeacherError';
    this.kind = kind;
    this.status = status;
    this.retryable = RETRYABLE[kind];
  }
  toJSON(): { name: string; kind: TeacherErrorKind; status: number | undefined; retryable: boolean; message: string } {
    return { name: this.name, kind: this.kind, status: this.status, retryable: this.retryable, message: this.message };
  }
}
