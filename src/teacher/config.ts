// Defaults and validation of RemoteTeacherConfig (the one place its defaults live): unknown keys are rejected,
// every value is checked with an error naming the key, baseURL defaults to the preset's. Also validates the
// messages and options of one chat() call. Error messages never include the API key.

import { PRESETS } from './presets.ts';
import { PRESET_NAMES, TeacherError } from './types.ts';
import type { ChatOptions, PresetName, RemoteTeacherConfig } from './types.ts';

/** Defaults of every key but `model` (required) and `baseURL` (the preset's when not given). */
export const REMOTE_TEACHER_DEFAULTS: Omit<RemoteTeacherConfig, 'model' | 'baseURL'> = {
  preset: 'custom',
  apiKey: '',
  extraHeaders: {},
  maxConcurrency: 4,
  requestsPerMinute: 0,
  rateWindowMs: 60_000,
  maxRetries: 2,
  timeoutMs: 60_000,
  firstByteTimeoutMs: 'auto',
  idleTimeoutMs: 'auto',
  totalTimeoutMs: 'auto',
  pricePer1MInput: 0,
  pricePer1MOutput: 0,
  logprobs: 'auto',
  topLogprobs: 5,
};

/** Largest top_logprobs any OpenAI-compatible server accepts in chat completions. */
export const MAX_TOP_LOGPROBS = 20;

const CONFIG_KEYS: readonly (keyof RemoteTeacherConfig)[] = [
  'preset', 'baseURL', 'apiKey', 'model', 'extraHeaders', 'maxConcurrency', 'requestsPerMinute', 'rateWindowMs',
  'maxRetries', 'timeoutMs', 'firstByteTimeoutMs', 'idleTimeoutMs', 'totalTimeoutMs', 'pricePer1MInput', 'pricePer1MOutput', 'logprobs', 'topLogprobs',
];

function fail(where: string, msg: string): never {
  throw new TeacherError('config', `${where}: ${msg}`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function intIn(where: string, key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) fail(where, `${key} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function deadline(where: string, key: string, v: unknown): number | 'auto' {
  if (v === 'auto') return v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 3_600_000) fail(where, `${key} must be 'auto' or an integer in [1, 3600000] (ms), got ${String(v)}`);
  return v;
}

function nonNegative(where: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(where, `${key} must be a finite number ≥ 0, got ${String(v)}`);
  return v;
}

/** The config as shown to the UI / stored: everything but the key. */
export type RemoteTeacherSettings = Omit<RemoteTeacherConfig, 'apiKey'> & { hasApiKey: boolean };

/** A resolved config's settings without the key (what RemoteTeacher.settings shows). */
export function teacherSettings(c: RemoteTeacherConfig): Readonly<RemoteTeacherSettings> {
  const { apiKey, ...rest } = c;
  return Object.freeze({ ...rest, extraHeaders: { ...rest.extraHeaders }, hasApiKey: apiKey !== '' });
}

/**
 * Fills defaults and validates a teacher config given as plain data (e.g. from the UI or a JSON file).
 * Throws TeacherError('config') naming the bad key; never echoes the API key.
 */
export function resolveRemoteTeacherConfig(input: unknown, where = 'teacher config'): RemoteTeacherConfig {
  if (!isRecord(input)) fail(where, 'expected an object');
  for (const k of Object.keys(input)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) fail(where, `unknown key '${k}' (expected one of ${CONFIG_KEYS.join(', ')})`);
  }
  const c = { ...REMOTE_TEACHER_DEFAULTS, ...input } as Record<string, unknown>;

  if (!(PRESET_NAMES as readonly unknown[]).includes(c.preset)) fail(where, `preset must be one of ${PRESET_NAMES.join(', ')}, got ${String(c.preset)}`);
  const preset = PRESETS[c.preset as PresetName];

  const baseURL = c.baseURL ?? preset.baseURL;
  if (typeof baseURL !== 'string' || baseURL === '') fail(where, `baseURL is required for preset '${preset.name}'`);
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    fail(where, `baseURL is not a URL: ${JSON.stringify(baseURL.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(where, `baseURL must be http(s), got ${url.protocol}`);
  if (url.username || url.password) fail(where, 'baseURL must not contain credentials (put the key in apiKey)');
  if (url.search || url.hash) fail(where, 'baseURL must not have a query or fragment');

  if (typeof c.apiKey !== 'string') fail(where, 'apiKey must be a string');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(c.apiKey)) fail(where, 'apiKey contains whitespace or control characters');
  if (typeof c.model !== 'string' || c.model.trim() === '') fail(where, 'model is required (a non-empty string)');

  if (!isRecord(c.extraHeaders)) fail(where, 'extraHeaders must be an object of header name → string value');
  const extraHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(c.extraHeaders)) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) fail(where, `extraHeaders: invalid header name ${JSON.stringify(name)}`);
    if (name.toLowerCase() === 'authorization') fail(where, 'extraHeaders must not set Authorization (put the key in apiKey)');
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) fail(where, `extraHeaders.${name} must be a single-line string`);
    extraHeaders[name] = value;
  }

  if (c.logprobs !== 'auto' && c.logprobs !== 'off') fail(where, `logprobs must be 'auto' or 'off', got ${String(c.logprobs)}`);

  return {
    preset: preset.name,
    baseURL: baseURL.replace(/\/+$/, ''),
    apiKey: c.apiKey,
    model: c.model,
    extraHeaders,
    maxConcurrency: intIn(where, 'maxConcurrency', c.maxConcurrency, 1, 1024),
    requestsPerMinute: nonNegative(where, 'requestsPerMinute', c.requestsPerMinute),
    rateWindowMs: intIn(where, 'rateWindowMs', c.rateWindowMs, 1, 86_400_000),
    maxRetries: intIn(where, 'maxRetries', c.maxRetries, 0, 20),
    timeoutMs: intIn(where, 'timeoutMs', c.timeoutMs, 1, 3_600_000),
    firstByteTimeoutMs: deadline(where, 'firstByteTimeoutMs', c.firstByteTimeoutMs),
    idleTimeoutMs: deadline(where, 'idleTimeoutMs', c.idleTimeoutMs),
    totalTimeoutMs: deadline(where, 'totalTimeoutMs', c.totalTimeoutMs),
    pricePer1MInput: nonNegative(where, 'pricePer1MInput', c.pricePer1MInput),
    pricePer1MOutput: nonNegative(where, 'pricePer1MOutput', c.pricePer1MOutput),
    logprobs: c.logprobs,
    topLogprobs: intIn(where, 'topLogprobs', c.topLogprobs, 0, MAX_TOP_LOGPROBS),
  };
}

const OPTION_KEYS: readonly (keyof ChatOptions)[] = ['n', 'seed', 'temperature', 'maxTokens', 'topLogprobs', 'stop', 'stream', 'signal', 'onDelta', 'deadlineScale'];

/** Validates chat() arguments; throws TeacherError('config') naming the bad field. */
export function validateChatCall(messages: unknown, opts: unknown, where = 'chat'): asserts opts is ChatOptions {
  if (!Array.isArray(messages) || messages.length === 0) fail(where, 'messages must be a non-empty array');
  messages.forEach((m: unknown, i) => {
    if (!isRecord(m)) fail(where, `messages[${i}] must be an object {role, content}`);
    if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') fail(where, `messages[${i}].role must be system, user or assistant`);
    if (typeof m.content !== 'string') fail(where, `messages[${i}].content must be a string`);
    for (const k of Object.keys(m)) if (k !== 'role' && k !== 'content') fail(where, `messages[${i}]: unknown key '${k}'`);
  });
  if (!isRecord(opts)) fail(where, 'options must be an object');
  for (const k of Object.keys(opts)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k)) fail(where, `unknown option '${k}' (expected one of ${OPTION_KEYS.join(', ')})`);
  }
  const o = opts as Record<string, unknown>;
  if (o.n !== undefined) intIn(where, 'n', o.n, 1, 128);
  if (o.seed !== undefined) intIn(where, 'seed', o.seed, -(2 ** 53 - 1), 2 ** 53 - 1);
  if (o.temperature !== undefined && (typeof o.temperature !== 'number' || !(o.temperature >= 0 && o.temperature <= 2))) {
    fail(where, `temperature must be in [0, 2], got ${String(o.temperature)}`);
  }
  if (o.maxTokens !== undefined) intIn(where, 'maxTokens', o.maxTokens, 1, 1_000_000);
  if (o.topLogprobs !== undefined) intIn(where, 'topLogprobs', o.topLogprobs, 0, MAX_TOP_LOGPROBS);
  if (o.stop !== undefined && (!Array.isArray(o.stop) || o.stop.length > 4 || !o.stop.every((s) => typeof s === 'string' && s !== ''))) {
    fail(where, 'stop must be an array of at most 4 non-empty strings');
  }
  if (o.stream !== undefined && typeof o.stream !== 'boolean') fail(where, 'stream must be a boolean');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) fail(where, 'signal must be an AbortSignal');
  if (o.onDelta !== undefined && typeof o.onDelta !== 'function') fail(where, 'onDelta must be a function');
  if (o.deadlineScale !== undefined && (typeof o.deadlineScale !== 'number' || !(o.deadlineScale >= 1 && o.deadlineScale <= 1024))) {
    fail(where, `deadlineScale must be a number in [1, 1024], got ${String(o.deadlineScale)}`);
  }
}
