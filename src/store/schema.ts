// The IndexedDB schema of the distillation data store: value types, object stores and indexes, the versioned
// upgrade (one migration per version), input validation, the `sanitize` step that refuses anything that looks
// like a credential, and the content hash used for dedup. No Node APIs: this runs in a browser worker.
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb';
import { SecretLeakError, StoreValidationError } from './errors.ts';

// ---------------------------------------------------------------------------------------------------- types

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Role = 'system' | 'user' | 'assistant';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface TeacherInfo {
  /** Which kind of teacher: 'openai-compatible', 'transformers-js', 'import', ... */
  kind: string;
  model: string;
  /** Host (and port) of the API, never a full URL: no scheme, path, query or credentials. '' when local. */
  baseURLHost: string;
}

export interface Provenance {
  teacher: TeacherInfo;
  template?: string;
  /** Elicitation strategy: 'sample', 'best-of-n', 'import', ... */
  strategy: string;
  /** Sampling parameters: temperature, seed, top_p, max_tokens, ... (never credentials). */
  params: { [k: string]: Json };
  usage: { input: number; output: number };
  /** Cost in USD, when known. */
  cost?: number;
  /** When the teacher produced it (ms since the epoch). */
  time: number;
}

/** Top-k rows of one assistant turn, attached to a record being written (see topk.ts for the row format). */
export interface TopKInput {
  /** Index in `messages` of the assistant message these rows belong to. */
  turn: number;
  /** Concatenated encoded rows, one per token (encodeTopK rows are self-delimiting). */
  rows: Uint8Array;
  /** Number of rows (tokens) in `rows`. */
  tokens: number;
}

/** A chat example as given to putRecords. */
export interface RecordInput {
  /** Idempotency key, unique within the dataset: a record whose key is already present is skipped. */
  key: string;
  messages: ChatMessage[];
  provenance: Provenance;
  topk?: TopKInput[];
}

export interface StoredRecord {
  id: number;
  datasetId: string;
  key: string;
  messages: ChatMessage[];
  provenance: Provenance;
  /** SHA-256 (hex) of the messages (roles and contents), for dedup. */
  contentHash: string;
}

export interface TopKEntry {
  recordId: number;
  turn: number;
  datasetId: string;
  tokens: number;
  rows: Uint8Array;
}

export interface PairInput {
  key: string;
  prompt: ChatMessage[];
  chosen: string;
  rejected: string;
  provenance: Provenance;
}

export interface StoredPair extends PairInput {
  id: number;
  datasetId: string;
}

export interface DatasetCounts {
  records: number;
  pairs: number;
  /** Top-k entries (record × assistant turn) and the tokens they cover. */
  topk: number;
  topkTokens: number;
}

export interface Dataset {
  id: string;
  name: string;
  createdAt: number;
  description: string;
  counts: DatasetCounts;
}

export type JobStatus = 'queued' | 'running' | 'paused' | 'done' | 'failed';
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'paused', 'done', 'failed'];

export interface JobProgress {
  done: number;
  total: number;
  tokens: number;
  cost: number;
  /** When the job first started running (ms since the epoch); 0 while queued. */
  startedAt: number;
  etaMs?: number;
}

export interface Job {
  id: string;
  kind: string;
  datasetId: string;
  /** The job's settings (sanitised: never an API key). */
  config: Json;
  /** Where to resume; advanced in the same transaction as the records of each step. */
  cursor: Json;
  status: JobStatus;
  progress: JobProgress;
  error?: string;
  /** Identifies the runner that owns the job now; a commit from another runner is refused. */
  runId?: string;
  createdAt: number;
  updatedAt: number;
}

export interface DistillDB extends DBSchema {
  datasets: { key: string; value: Dataset };
  records: {
    key: number;
    value: StoredRecord;
    indexes: { 'by-dataset': string; 'by-key': [string, string]; 'by-hash': [string, string] };
  };
  topk: { key: [number, number]; value: TopKEntry; indexes: { 'by-dataset': string; 'by-record': number } };
  pairs: { key: number; value: StoredPair; indexes: { 'by-dataset': string; 'by-key': [string, string] } };
  jobs: { key: string; value: Job; indexes: { 'by-dataset': string } };
}

export type StoreName = StoreNames<DistillDB>;
export const STORE_NAMES: StoreName[] = ['datasets', 'records', 'topk', 'pairs', 'jobs'];

// ------------------------------------------------------------------------------------------ schema versions

type UpgradeTx = IDBPTransaction<DistillDB, StoreName[], 'versionchange'>;
type Migration = (db: IDBPDatabase<DistillDB>, tx: UpgradeTx) => void;

/** MIGRATIONS[v] upgrades a database from version v to v + 1. Append only; never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = [
  (db) => {
    db.createObjectStore('datasets', { keyPath: 'id' });
    const records = db.createObjectStore('records', { keyPath: 'id', autoIncrement: true });
    records.createIndex('by-dataset', 'datasetId');
    // Idempotency keys are unique per dataset; the index enforces it even if a caller skips the check.
    records.createIndex('by-key', ['datasetId', 'key'], { unique: true });
    records.createIndex('by-hash', ['datasetId', 'contentHash']);
    const topk = db.createObjectStore('topk', { keyPath: ['recordId', 'turn'] });
    topk.createIndex('by-dataset', 'datasetId');
    topk.createIndex('by-record', 'recordId');
    const pairs = db.createObjectStore('pairs', { keyPath: 'id', autoIncrement: true });
    pairs.createIndex('by-dataset', 'datasetId');
    pairs.createIndex('by-key', ['datasetId', 'key'], { unique: true });
    const jobs = db.createObjectStore('jobs', { keyPath: 'id' });
    jobs.createIndex('by-dataset', 'datasetId');
  },
];
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The `upgradeneeded` handler: runs every migration from oldVersion to newVersion in the upgrade transaction. */
export function upgradeSchema(db: IDBPDatabase<DistillDB>, oldVersion: number, newVersion: number, tx: UpgradeTx): void {
  for (let v = oldVersion; v < newVersion; v++) {
    const migrate = MIGRATIONS[v];
    if (!migrate) throw new Error(`store schema: no migration from version ${v} to ${v + 1}`);
    migrate(db, tx);
  }
}

// ------------------------------------------------------------------------------------------------- sanitize

// Field names that hold credentials, compared lower-case with everything but letters and digits removed.
const SECRET_NAME =
  /apikey|authorization|secret|password|passwd|credential|cookie|^x?(auth|token|key|bearer)$|(access|auth|refresh|session|bearer|id|private|api)(token|key)$/;
// Values that look like credentials, wherever they appear.
const SECRET_VALUES: [RegExp, string][] = [
  [/\bsk-[A-Za-z0-9_-]{16,}/, 'an API key (sk-…)'],
  [/\bBearer\s+\S{8,}/i, 'a bearer token'],
  [/\b(hf|gsk|r8|pplx|xai|ghp|gho|ghu|ghs|github_pat|glpat)[_-][A-Za-z0-9_]{16,}/, 'an API token'],
  [/\bAIza[0-9A-Za-z_-]{30,}/, 'a Google API key'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./, 'a JWT'],
  [/[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]*@/i, 'a URL with credentials'],
  [/[?&](api[-_]?key|key|token|access[-_]?token|auth|sig|signature)=/i, 'a URL with a key in its query'],
];

function secretNameLike(name: string): boolean {
  return SECRET_NAME.test(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/**
 * Throws SecretLeakError if `value` (a provenance, params or job config object) holds a field named like a
 * credential (apiKey, Authorization, token, password, ...) or a string that looks like one (sk-…, Bearer …,
 * a URL with user:pass@ or ?key=). The error names the path, never the value. Returns `value` unchanged.
 */
export function sanitize<T>(value: T, where: string): T {
  walkSecrets(value, where, 0);
  return value;
}

function walkSecrets(v: unknown, path: string, depth: number): void {
  if (depth > 32) throw new StoreValidationError(`${path}: nested deeper than 32 levels`);
  if (typeof v === 'string') {
    for (const [re, what] of SECRET_VALUES) {
      if (re.test(v)) {
        throw new SecretLeakError(
          `${path}: the value looks like ${what}. Credentials are never stored: remove it before saving.`,
        );
      }
    }
    return;
  }
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => walkSecrets(x, `${path}[${i}]`, depth + 1));
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (secretNameLike(k)) {
      throw new SecretLeakError(
        `${path}: field "${k}" looks like a credential. API keys and tokens are never stored: remove the field.`,
      );
    }
    walkSecrets(x, `${path}.${k}`, depth + 1);
  }
}

// ----------------------------------------------------------------------------------------------- validation

function fail(where: string, msg: string): never {
  throw new StoreValidationError(`${where}: ${msg}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rejects keys of `v` that are not in `allowed`. */
export function rejectUnknownKeys(v: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail(where, `unknown field "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string') fail(where, `must be a string, got ${describe(v)}`);
  return v;
}

function nonNegative(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(where, `must be a finite number ≥ 0, got ${describe(v)}`);
  return v;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Validates one chat message (role, string content, well-formed Unicode); returns a clean copy. */
export function checkMessage(m: unknown, where: string): ChatMessage {
  if (!isObject(m)) fail(where, `must be an object {role, content}, got ${describe(m)}`);
  rejectUnknownKeys(m, ['role', 'content'], where);
  if (!ROLES.includes(m.role as Role)) fail(`${where}.role`, `must be one of ${ROLES.join(', ')}, got ${describe(m.role)}`);
  const content = str(m.content, `${where}.content`);
  if (LONE_SURROGATE.test(content)) fail(`${where}.content`, 'contains an unpaired UTF-16 surrogate (malformed Unicode)');
  return { role: m.role as Role, content };
}

export function checkMessages(v: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) fail(where, `must be a non-empty array of messages, got ${describe(v)}`);
  return v.map((m, i) => checkMessage(m, `${where}[${i}]`));
}

function checkJson(v: unknown, where: string, depth = 0): Json {
  if (depth > 32) fail(where, 'nested deeper than 32 levels');
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(where, `must be a finite number, got ${v}`);
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => checkJson(x, `${where}[${i}]`, depth + 1));
  if (isObject(v) && Object.getPrototypeOf(v) === Object.prototype) {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) out[k] = checkJson(x, `${where}.${k}`, depth + 1);
    return out;
  }
  fail(where, `must be plain JSON data, got ${describe(v)}`);
}

/** Validates and sanitises a provenance object; returns a clean copy (unknown fields rejected). */
export function checkProvenance(p: unknown, where: string): Provenance {
  if (!isObject(p)) fail(where, `must be an object, got ${describe(p)}`);
  sanitize(p, where);
  rejectUnknownKeys(p, ['teacher', 'template', 'strategy', 'params', 'usage', 'cost', 'time'], where);
  const t = p.teacher;
  if (!isObject(t)) fail(`${where}.teacher`, `must be an object {kind, model, baseURLHost}, got ${describe(t)}`);
  rejectUnknownKeys(t, ['kind', 'model', 'baseURLHost'], `${where}.teacher`);
  const baseURLHost = str(t.baseURLHost, `${where}.teacher.baseURLHost`);
  if (!/^[A-Za-z0-9.\-[\]:]*$/.test(baseURLHost)) {
    fail(`${where}.teacher.baseURLHost`, 'must be a bare host[:port] (no scheme, path, query or credentials)');
  }
  const params = p.params;
  if (!isObject(params)) fail(`${where}.params`, `must be an object, got ${describe(params)}`);
  const usage = p.usage;
  if (!isObject(usage)) fail(`${where}.usage`, `must be an object {input, output}, got ${describe(usage)}`);
  rejectUnknownKeys(usage, ['input', 'output'], `${where}.usage`);
  const out: Provenance = {
    teacher: { kind: str(t.kind, `${where}.teacher.kind`), model: str(t.model, `${where}.teacher.model`), baseURLHost },
    strategy: str(p.strategy, `${where}.strategy`),
    params: checkJson(params, `${where}.params`) as { [k: string]: Json },
    usage: { input: nonNegative(usage.input, `${where}.usage.input`), output: nonNegative(usage.output, `${where}.usage.output`) },
    time: nonNegative(p.time, `${where}.time`),
  };
  if (p.template !== undefined) out.template = str(p.template, `${where}.template`);
  if (p.cost !== undefined) out.cost = nonNegative(p.cost, `${where}.cost`);
  return out;
}

function checkKey(v: unknown, where: string): string {
  const key = str(v, where);
  if (key.length === 0 || key.length > 1024) fail(where, `must be 1–1024 characters, got ${key.length}`);
  return key;
}

/** Validates a record for putRecords: messages, provenance (sanitised), key, attached top-k. Returns a clean copy. */
export function checkRecordInput(r: unknown, where: string): RecordInput {
  if (!isObject(r)) fail(where, `must be an object, got ${describe(r)}`);
  rejectUnknownKeys(r, ['key', 'messages', 'provenance', 'topk'], where);
  const messages = checkMessages(r.messages, `${where}.messages`);
  const out: RecordInput = { key: checkKey(r.key, `${where}.key`), messages, provenance: checkProvenance(r.provenance, `${where}.provenance`) };
  if (r.topk !== undefined) {
    if (!Array.isArray(r.topk)) fail(`${where}.topk`, `must be an array, got ${describe(r.topk)}`);
    out.topk = r.topk.map((t, i) => checkTopKInput(t, messages, `${where}.topk[${i}]`));
  }
  return out;
}

export function checkTopKInput(t: unknown, messages: ChatMessage[], where: string): TopKInput {
  if (!isObject(t)) fail(where, `must be an object {turn, rows, tokens}, got ${describe(t)}`);
  rejectUnknownKeys(t, ['turn', 'rows', 'tokens'], where);
  const turn = t.turn;
  if (typeof turn !== 'number' || !Number.isInteger(turn) || messages[turn]?.role !== 'assistant') {
    fail(`${where}.turn`, `must be the index of an assistant message, got ${describe(turn)}`);
  }
  if (!(t.rows instanceof Uint8Array)) fail(`${where}.rows`, `must be a Uint8Array, got ${describe(t.rows)}`);
  const tokens = t.tokens;
  if (typeof tokens !== 'number' || !Number.isInteger(tokens) || tokens < 0) fail(`${where}.tokens`, 'must be an integer ≥ 0');
  return { turn, rows: t.rows.slice(), tokens };
}

export function checkPairInput(p: unknown, where: string): PairInput {
  if (!isObject(p)) fail(where, `must be an object, got ${describe(p)}`);
  rejectUnknownKeys(p, ['key', 'prompt', 'chosen', 'rejected', 'provenance'], where);
  return {
    key: checkKey(p.key, `${where}.key`),
    prompt: checkMessages(p.prompt, `${where}.prompt`),
    chosen: str(p.chosen, `${where}.chosen`),
    rejected: str(p.rejected, `${where}.rejected`),
    provenance: checkProvenance(p.provenance, `${where}.provenance`),
  };
}

/** Checks a job config: plain JSON and free of credentials. */
export function checkJobConfig(v: unknown, where: string): Json {
  sanitize(v, where);
  return checkJson(v, where);
}

export function checkCursor(v: unknown, where: string): Json {
  return checkJson(v, where);
}

// ----------------------------------------------------------------------------------------------- hashing, ids

/** SHA-256 (hex) of the messages' roles and contents: equal conversations hash equal. */
export async function contentHash(messages: ChatMessage[]): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(messages.map((m) => [m.role, m.content])));
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A random 128-bit id in hex (crypto.getRandomValues works in insecure contexts too, unlike randomUUID). */
export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function emptyCounts(): DatasetCounts {
  return { records: 0, pairs: 0, topk: 0, topkTokens: 0 };
}
