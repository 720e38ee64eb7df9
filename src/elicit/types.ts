// Shared vocabulary of the knowledge-elicitation strategies (src/elicit/): the Strategy interface that run.ts drives
// through the store's runJob, the step context (teacher with retries, optional student sampler, signal), the
// preview request shape, the ElicitError class, provenance building (teacher = model + baseURL host only) and the
// small typed-config helpers every strategy uses (unknown keys rejected, errors naming the key).
import type { DistillStore } from '../store/store.ts';
import type { Json, PairInput, Provenance, RecordInput } from '../store/schema.ts';
import type { ChatMessage, ChatOptions, ChatResult } from '../teacher/types.ts';

/** Names of the strategies (the job kind is `elicit:<name>`). */
export const STRATEGY_NAMES = ['labeling', 'expansion', 'curation', 'evol', 'feature', 'feedback', 'self-knowledge', 'ensemble'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Bad strategy config, a missing capability (no logprobs, no student sampler) or an inconsistent job. */
export class ElicitError extends Error {
  override name = 'ElicitError';
}

/** What the strategies need of a teacher: RemoteTeacher satisfies it (so would a local transformers.js teacher). */
export interface TeacherLike {
  /** maxConcurrency (when the teacher has one: RemoteTeacher) sizes automatic steps (labeling's batchSize null). */
  /** kind: provenance's teacher kind ('openai-compatible' when absent; 'transformers-js' for the local teacher). */
  readonly settings: { readonly model: string; readonly baseURL: string; readonly maxConcurrency?: number; readonly kind?: string };
  chat(messages: ChatMessage[], opts?: ChatOptions): Promise<ChatResult>;
}

/** The student, plugged in by the caller: K samples for one prompt (the GPU student later; a stub in tests). */
export type StudentSampler = (prompt: string, k: number, signal?: AbortSignal) => Promise<string[]>;

/** One request a strategy would send, as shown by preview(). Nothing is sent to make it. */
export interface PreviewRequest {
  /** Which template produced the last message. */
  template: string;
  messages: ChatMessage[];
  options: { temperature: number; maxTokens: number; seed?: number; topLogprobs?: number };
  /** What is not known before the job runs (e.g. "the student's sample is filled in at run time"). */
  note?: string;
}

export interface StepContext<C> {
  config: C;
  jobId: string;
  datasetId: string;
  /**
   * The teacher's chat with the elicitation layer's retries of retryable TeacherErrors (on top of the SDK's);
   * `onRetry` is told before each retry (the window hedges troubled items of its tail).
   */
  chat(messages: ChatMessage[], opts: ChatOptions, onRetry?: () => void): Promise<ChatResult>;
  teacher: TeacherLike;
  /** Several teachers (the ensemble strategy's members, in the job's order); the job's `teacher` is its judge. */
  members?: readonly TeacherLike[];
  /** `chat` of member `i` (same retries). */
  chatMember?(i: number, messages: ChatMessage[], opts: ChatOptions, onRetry?: () => void): Promise<ChatResult>;
  student: StudentSampler | undefined;
  signal: AbortSignal | undefined;
  now(): number;
}

/** Top-k rows for one assistant turn of a record of the same step, named by the record's idempotency key. */
export interface StepTopK {
  key: string;
  turn: number;
  rows: Uint8Array;
  tokens: number;
}

export interface ElicitStep {
  records: RecordInput[];
  pairs?: PairInput[];
  /** Attached to their records before the commit, so rows, records and cursor land in one transaction. */
  topk?: StepTopK[];
  nextCursor: Json;
  done: boolean;
  /** Total units of work (inputs × what one input yields), for progress and ETA. */
  total: number;
  /** Units of work this step completed. */
  units: number;
}

/** What one window item produced (strategies with a `window`): committed with the cursor, with other items. */
export interface ItemResult {
  records: RecordInput[];
  pairs?: PairInput[];
  topk?: StepTopK[];
  /** Counters added to cursor.stats when the item is committed (never counted for an item that is lost). */
  stats?: Record<string, number>;
  /** Units of work (progress.done; default 1). */
  units?: number;
  /** Kept for `commit` (feature: the tokens whose ids are given at commit time). */
  data?: unknown;
}

/**
 * A strategy run as a window of independent items (src/store/window.ts): up to ~2 × the teacher's maxConcurrency
 * requests' worth of items run at once; each finished item is committed with the cursor, batched.
 */
export interface WindowSpec<C> {
  /** How many items the job has (its unit of work: an (input, answer) pair, a leaf, an input). */
  items(config: C): number;
  /** progress.total. */
  total(config: C): number;
  /** Requests one item has in flight at once at most (sizes the window; default 1). */
  requestsPerItem?(config: C): number;
  /** Items per commit (default: the teacher's concurrency). */
  batch?(config: C, concurrency: number): number;
  /** The committed prefix of a cursor from before windows (its `next`/`leaf`), in items. */
  legacyPrefix?(state: Record<string, Json>, config: C): number;
  /** Runs item `index` (ctx.signal is the item's own; ctx.chat retries retryable errors). Deterministic keys. */
  item(index: number, ctx: StepContext<C>): Promise<ItemResult>;
  /** At commit time, in index order, with the cursor's state (feature gives token ids here). */
  commit?(items: { index: number; result: ItemResult }[], state: Record<string, Json>, config: C): void;
}

export interface Strategy<C> {
  name: StrategyName;
  /** Fills defaults and checks a config given as plain data; throws ElicitError naming the bad key. */
  validate(config: unknown): C;
  /** The first `count` requests the job would send (sends nothing). `store` resolves `inputsFrom`. */
  preview(config: unknown, store?: DistillStore, count?: number): Promise<PreviewRequest[]>;
  /** The cursor a new job starts from (default null), e.g. the dataset's token table for 'feature'. */
  init?(store: DistillStore, datasetId: string, config: C): Promise<Json>;
  /**
   * One resumable step from `cursor` (null at the start), for strategies whose work depends on earlier results in
   * order (expansion's pool). Deterministic keys; all state in nextCursor. A strategy has `step` or `window`.
   */
  step?(cursor: Json, ctx: StepContext<C>): Promise<ElicitStep>;
  /** The strategy as a window of independent items (every strategy but expansion). */
  window?: WindowSpec<C>;
}

// ---------------------------------------------------------------------------------------------- provenance

/** Host (and port) of a base URL, never the scheme, path, query or credentials. */
export function baseURLHost(baseURL: string): string {
  try {
    return new URL(baseURL).host;
  } catch {
    return '';
  }
}

export interface Usage {
  input: number;
  output: number;
  cost: number;
}

export const NO_USAGE: Usage = { input: 0, output: 0, cost: 0 };

export function usageOf(r: ChatResult): Usage {
  return { input: r.usage.promptTokens, output: r.usage.completionTokens, cost: r.cost };
}

export function addUsage(...us: Usage[]): Usage {
  return us.reduce((a, u) => ({ input: a.input + u.input, output: a.output + u.output, cost: a.cost + u.cost }), NO_USAGE);
}

/** A record's provenance: strategy, template (name@hash), teacher (model + host), params, usage and cost. */
export function provenanceFor(
  teacher: TeacherLike | 'self',
  strategy: StrategyName,
  template: string,
  params: { [k: string]: Json },
  usage: Usage,
  time: number,
): Provenance {
  const t = teacher === 'self'
    ? { kind: 'self', model: 'student', baseURLHost: '' }
    : { kind: teacher.settings.kind ?? 'openai-compatible', model: teacher.settings.model, baseURLHost: baseURLHost(teacher.settings.baseURL) };
  return { teacher: t, template, strategy, params, usage: { input: usage.input, output: usage.output }, cost: usage.cost, time };
}

// ------------------------------------------------------------------------------------------- config helpers

export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function fail(where: string, msg: string): never {
  throw new ElicitError(`${where}: ${msg}`);
}

/** Merges defaults under `input` after rejecting keys that are not in `defaults` (or `optional`). */
export function withDefaults<T extends object>(input: unknown, defaults: T, where: string, optional: readonly string[] = []): Record<string, unknown> {
  if (!isRecord(input)) fail(where, 'expected an object');
  const allowed = [...Object.keys(defaults), ...optional];
  for (const k of Object.keys(input)) {
    if (!allowed.includes(k)) fail(where, `unknown key '${k}' (expected one of ${allowed.join(', ')})`);
  }
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) out[k] = v;
  return out;
}

export function intIn(where: string, key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) fail(where, `${key} must be an integer in [${lo}, ${hi}], got ${show(v)}`);
  return v;
}

export function numIn(where: string, key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) fail(where, `${key} must be a number in [${lo}, ${hi}], got ${show(v)}`);
  return v;
}

export function bool(where: string, key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(where, `${key} must be true or false, got ${show(v)}`);
  return v;
}

export function text(where: string, key: string, v: unknown, nonEmpty = false): string {
  if (typeof v !== 'string') fail(where, `${key} must be a string, got ${show(v)}`);
  if (nonEmpty && v.trim() === '') fail(where, `${key} must not be empty`);
  return v;
}

/** A list of non-empty strings (each ≤ 20 000 characters), `min`..`max` of them. */
export function textList(where: string, key: string, v: unknown, min: number, max: number): string[] {
  if (!Array.isArray(v)) fail(where, `${key} must be an array of strings, got ${show(v)}`);
  if (v.length < min || v.length > max) fail(where, `${key} must have ${min}–${max} entries, got ${v.length}`);
  return v.map((s: unknown, i) => {
    if (typeof s !== 'string' || s.trim() === '') fail(where, `${key}[${i}] must be a non-empty string, got ${show(s)}`);
    if (s.length > 20_000) fail(where, `${key}[${i}] is ${s.length} characters (at most 20000)`);
    return s;
  });
}

export function optionalSeed(where: string, v: unknown): number | null {
  if (v === null || v === undefined) return null;
  return intIn(where, 'seed', v, 0, 2 ** 31 - 1);
}

function show(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}

/** Chat options of one request from the common sampling keys (seed made distinct per request by `salt`). */
export function chatOptions(c: { temperature: number; maxTokens: number; seed: number | null }, salt: number, signal: AbortSignal | undefined): ChatOptions {
  const o: ChatOptions = { temperature: c.temperature, maxTokens: c.maxTokens };
  if (c.seed !== null) o.seed = (c.seed + Math.imul(salt + 1, 0x9e3779b1)) >>> 1;
  if (signal) o.signal = signal;
  return o;
}

/** Cursor helpers: every strategy's cursor is a JSON object; null = the start. */
export function cursorObject(cursor: Json, where: string): Record<string, Json> {
  if (cursor === null) return {};
  if (!isRecord(cursor)) fail(where, 'the stored cursor is not an object (was the job created by another version?)');
  return cursor as Record<string, Json>;
}

export function cursorInt(c: Record<string, Json>, key: string, dflt: number): number {
  const v = c[key];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : dflt;
}

/** legacyPrefix of the window strategies whose step cursor was `{next}` = inputs done (one item per input). */
export function legacyNext(state: Record<string, Json>): number {
  const next = cursorInt(state, 'next', 0);
  delete state.next;
  return next;
}

/** Counters kept in the cursor (skipped samples, eliminated evolutions, ...): committed with the records. */
export function cursorStats(c: Record<string, Json>): Record<string, number> {
  const s = c.stats;
  const out: Record<string, number> = {};
  if (isRecord(s)) for (const [k, v] of Object.entries(s)) if (typeof v === 'number') out[k] = v;
  return out;
}

export function bump(stats: Record<string, number>, key: string, by = 1): void {
  stats[key] = (stats[key] ?? 0) + by;
}

// ------------------------------------------------------------------------------------------ inputs from data

/** `inputsFrom`: take the inputs from an existing dataset (the last user message of each record, in order). */
export interface InputsFrom {
  datasetId: string;
  /** At most this many (default 10 000). */
  limit: number;
}

export function checkInputsFrom(where: string, v: unknown): InputsFrom | null {
  if (v === null || v === undefined) return null;
  if (!isRecord(v)) fail(where, 'inputsFrom must be an object {datasetId, limit?}');
  for (const k of Object.keys(v)) if (k !== 'datasetId' && k !== 'limit') fail(where, `inputsFrom: unknown key '${k}' (expected datasetId, limit)`);
  return { datasetId: text(where, 'inputsFrom.datasetId', v.datasetId, true), limit: intIn(where, 'inputsFrom.limit', v.limit ?? 10_000, 1, 10_000) };
}

/** Reads the inputs named by `from` (a snapshot: run.ts stores them in the job's config at creation). */
export async function readInputsFrom(store: DistillStore, from: InputsFrom, where: string): Promise<string[]> {
  if (!(await store.getDataset(from.datasetId))) fail(where, `inputsFrom: no dataset "${from.datasetId}"`);
  const out: string[] = [];
  for (let offset = 0; out.length < from.limit; offset += 500) {
    const page = await store.getRecords(from.datasetId, { offset, limit: 500 });
    for (const r of page) {
      const user = [...r.messages].reverse().find((m) => m.role === 'user');
      if (user && user.content.trim() !== '' && out.length < from.limit) out.push(user.content);
    }
    if (page.length < 500) break;
  }
  if (out.length === 0) fail(where, `inputsFrom: dataset "${from.datasetId}" has no user messages to use as inputs`);
  return out;
}

/** The config's `inputs`, or those of `inputsFrom` read from `store` (preview) — an error when neither can be had. */
export async function inputsOf(c: { inputs: string[]; inputsFrom: InputsFrom | null }, store: DistillStore | undefined, where: string): Promise<string[]> {
  if (c.inputs.length > 0) return c.inputs;
  if (!c.inputsFrom) fail(where, 'inputs is empty');
  if (!store) fail(where, 'inputsFrom needs the store (pass it to preview, or create the job with createElicitJob)');
  return readInputsFrom(store, c.inputsFrom, where);
}

/** Common validation of `inputs` / `inputsFrom` (one of them). */
export function checkInputs(where: string, inputs: unknown, inputsFrom: unknown): { inputs: string[]; inputsFrom: InputsFrom | null } {
  const from = checkInputsFrom(where, inputsFrom);
  const list = textList(where, 'inputs', inputs ?? [], 0, 100_000);
  if (list.length === 0 && !from) fail(where, 'give inputs (a non-empty list of strings) or inputsFrom {datasetId}');
  if (list.length > 0 && from) fail(where, 'give either inputs or inputsFrom, not both');
  return { inputs: list, inputsFrom: from };
}

/** The step's inputs: inputsFrom must have been resolved into inputs by createElicitJob. */
export function stepInputs(c: { inputs: string[] }, where: string): string[] {
  if (c.inputs.length === 0) fail(where, 'the job has no inputs (inputsFrom is resolved by createElicitJob; create jobs through it)');
  return c.inputs;
}

// ---------------------------------------------------------------------------------------------- concurrency

/**
 * Runs the tasks at once (the teacher's semaphore bounds the requests in flight) and returns their results in
 * order. The first failure aborts the others (their results are discarded: the step is redone from its cursor).
 * Each task gets a signal of its own (one listener each, so wide steps do not trip Node's listener-leak warning).
 */
export async function parallel<T>(signal: AbortSignal | undefined, tasks: ((signal: AbortSignal) => Promise<T>)[]): Promise<T[]> {
  const ctls = tasks.map(() => new AbortController());
  const abortAll = (): void => { for (const c of ctls) c.abort(); };
  if (signal?.aborted) abortAll();
  else signal?.addEventListener('abort', abortAll, { once: true });
  try {
    return await Promise.all(tasks.map((t, i) => t(ctls[i]!.signal).catch((e: unknown) => { abortAll(); throw e; })));
  } finally {
    signal?.removeEventListener('abort', abortAll);
  }
}

/** The common sampling keys of every strategy config. */
export interface SamplingConfig {
  temperature: number;
  maxTokens: number;
  seed: number | null;
}

export function checkSampling(where: string, c: Record<string, unknown>): SamplingConfig {
  return {
    temperature: numIn(where, 'temperature', c.temperature, 0, 2),
    maxTokens: intIn(where, 'maxTokens', c.maxTokens, 1, 100_000),
    seed: optionalSeed(where, c.seed),
  };
}

/** Sampling params for provenance (OpenAI names). */
export function samplingParams(c: SamplingConfig): { [k: string]: Json } {
  const p: { [k: string]: Json } = { temperature: c.temperature, max_tokens: c.maxTokens };
  if (c.seed !== null) p.seed = c.seed;
  return p;
}
