// The distillation data store: datasets, chat records (idempotent by key, dedup by content hash), per-token
// top-k rows, preference pairs and resumable jobs in IndexedDB (idb in the app, fake-indexeddb in unit tests).
// Every write is one transaction: a batch is written whole or not at all; a job's cursor advances in the same
// (durability 'strict') transaction as the records of its step, which is what makes resume exactly-once.
// No Node APIs: this runs in a browser worker.
import { wrap, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { isQuotaError, JobConflictError, NotFoundError, StorageFullError, StoreValidationError } from './errors.ts';
import {
  checkCursor, checkJobConfig, checkPairInput, checkRecordInput, checkTopKInput, contentHash, describe, emptyCounts,
  JOB_STATUSES, newId, rejectUnknownKeys, SCHEMA_VERSION, STORE_NAMES, upgradeSchema,
  type Dataset, type DatasetCounts, type DistillDB, type Job, type JobProgress, type JobStatus, type Json,
  type PairInput, type RecordInput, type StoreName, type StoredPair, type StoredRecord, type TopKEntry,
} from './schema.ts';

type WriteTx = IDBPTransaction<DistillDB, StoreName[], 'readwrite'>;

/** What a batch write did: `written` new items (with their ids, in input order), `duplicates` skipped. */
export interface PutResult {
  written: number;
  duplicates: number;
  ids: number[];
  /** Keys of the skipped items, in input order. */
  duplicateKeys: string[];
}

export interface PutRecordsOptions {
  /** Also skip records whose content hash is already in the dataset (or earlier in the batch). Default false. */
  dedupByContent?: boolean;
  durability?: IDBTransactionDurability;
}

export interface Page {
  offset?: number;
  limit?: number;
}

export interface NewJob {
  kind: string;
  datasetId: string;
  config: Json;
  total?: number;
}

/** Fields updateJob may change; `error: null` / `runId: null` remove them; `progress` is merged. */
export interface JobPatch {
  cursor?: Json;
  status?: JobStatus;
  progress?: Partial<JobProgress>;
  error?: string | null;
  config?: Json;
  runId?: string | null;
}

/** What a job step commits together with its cursor. */
export interface JobCommit {
  records?: RecordInput[];
  pairs?: PairInput[];
}

export interface StorageEstimateResult {
  usage: number;
  quota: number;
}

type StorageLike = { persist?: () => Promise<boolean>; estimate?: () => Promise<StorageEstimate> };

function storageApi(): StorageLike | undefined {
  return (globalThis as { navigator?: { storage?: StorageLike } }).navigator?.storage;
}

/** Asks the browser not to evict our data. `undefined` where navigator.storage is absent (Node, old browsers). */
export async function requestPersistentStorage(): Promise<boolean | undefined> {
  const s = storageApi();
  if (!s?.persist) return undefined;
  return s.persist();
}

/** Usage and quota of this origin in bytes. `undefined` where navigator.storage is absent (Node, old browsers). */
export async function storageEstimate(): Promise<StorageEstimateResult | undefined> {
  const s = storageApi();
  if (!s?.estimate) return undefined;
  const e = await s.estimate();
  return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
}

function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export async function storageFullError(what: string): Promise<StorageFullError> {
  const est = await storageEstimate().catch(() => undefined);
  const where = est
    ? `${formatBytes(est.usage)} used of ${formatBytes(est.quota)} available to this site (${formatBytes(Math.max(0, est.quota - est.usage))} free)`
    : 'usage and quota unknown (navigator.storage.estimate is not available here)';
  return new StorageFullError(
    `Storage is full while writing ${what}: ${where}. The transaction was aborted and nothing of it was written. ` +
      'Free space by deleting datasets or checkpoints you no longer need (export them first), free disk space, ' +
      'or grant this site persistent storage, then retry.',
    est?.usage,
    est?.quota,
  );
}

/** Opens (creating or upgrading) the store. `idbFactory` defaults to the global indexedDB. */
export async function openStore(name = 'webgpu-distill', idbFactory?: IDBFactory): Promise<DistillStore> {
  const factory = idbFactory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) throw new Error('openStore: IndexedDB is not available in this context (pass an IDBFactory)');
  const request = factory.open(name, SCHEMA_VERSION);
  request.addEventListener('upgradeneeded', (e) => {
    const tx = request.transaction;
    if (!tx) throw new Error('openStore: upgradeneeded without a transaction');
    upgradeSchema(wrap(request.result) as IDBPDatabase<DistillDB>, e.oldVersion, e.newVersion ?? SCHEMA_VERSION, wrap(tx) as never);
  });
  let db: IDBPDatabase<DistillDB>;
  try {
    db = (await wrap(request)) as unknown as IDBPDatabase<DistillDB>;
  } catch (e) {
    if ((e as { name?: string }).name === 'VersionError') {
      throw new Error(
        `openStore: the database "${name}" was written by a newer version of this app (its schema is newer than ` +
          `version ${SCHEMA_VERSION}); reload the page to get the newer app.`,
      );
    }
    throw e;
  }
  // Let another tab upgrade the schema: close this connection when it asks.
  db.addEventListener('versionchange', () => db.close());
  return new DistillStore(db);
}

export class DistillStore {
  constructor(readonly db: IDBPDatabase<DistillDB>) {}

  close(): void {
    this.db.close();
  }

  /** Runs `fn` in one transaction; any error aborts it (nothing written); quota errors become StorageFullError. */
  private async write<T>(stores: StoreName[], what: string, durability: IDBTransactionDurability, fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    const tx = this.db.transaction(stores, 'readwrite', { durability });
    let result: T;
    try {
      result = await fn(tx);
    } catch (e) {
      try { tx.abort(); } catch { /* already aborted by the failed request */ }
      await tx.done.catch(() => undefined);
      if (isQuotaError(e) || isQuotaError(tx.error)) throw await storageFullError(what);
      throw e;
    }
    try {
      await tx.done;
    } catch (e) {
      if (isQuotaError(e) || isQuotaError(tx.error)) throw await storageFullError(what);
      throw e;
    }
    return result;
  }

  // ------------------------------------------------------------------------------------------------ datasets

  async createDataset(input: { name: string; description?: string }): Promise<Dataset> {
    if (typeof input !== 'object' || input === null) throw new StoreValidationError('createDataset: expected {name, description?}');
    rejectUnknownKeys(input as Record<string, unknown>, ['name', 'description'], 'createDataset');
    const name = input.name;
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200) {
      throw new StoreValidationError(`createDataset.name: must be a non-empty string of at most 200 characters, got ${describe(name)}`);
    }
    const description = input.description ?? '';
    if (typeof description !== 'string') throw new StoreValidationError(`createDataset.description: must be a string, got ${describe(description)}`);
    const ds: Dataset = { id: newId(), name, createdAt: Date.now(), description, counts: emptyCounts() };
    await this.write(['datasets'], 'a dataset', 'default', async (tx) => {
      await tx.objectStore('datasets').add(ds);
    });
    return ds;
  }

  async getDataset(id: string): Promise<Dataset | undefined> {
    return this.db.get('datasets', id);
  }

  async listDatasets(): Promise<Dataset[]> {
    return this.db.getAll('datasets');
  }

  /** The dataset's counts, kept in the same transactions as the writes they count. */
  async counts(datasetId: string): Promise<DatasetCounts> {
    const ds = await this.db.get('datasets', datasetId);
    if (!ds) throw new NotFoundError(`counts: no dataset "${datasetId}"`);
    return ds.counts;
  }

  /** Deletes the dataset with all its records, top-k rows, pairs and jobs, in one transaction. */
  async deleteDataset(id: string): Promise<void> {
    await this.write([...STORE_NAMES], 'a dataset deletion', 'strict', async (tx) => {
      if (!(await tx.objectStore('datasets').get(id))) throw new NotFoundError(`deleteDataset: no dataset "${id}"`);
      const deletes: Promise<unknown>[] = [];
      for (const storeName of ['records', 'topk', 'pairs', 'jobs'] as const) {
        const store = tx.objectStore(storeName);
        let c = await store.index('by-dataset').openKeyCursor(id);
        while (c) {
          deletes.push(quiet(store.delete(c.primaryKey as never)));
          c = await c.continue();
        }
      }
      deletes.push(quiet(tx.objectStore('datasets').delete(id)));
      await Promise.all(deletes);
    });
  }

  // ------------------------------------------------------------------------------------------------- records

  /**
   * Writes a batch of records in ONE transaction. A record whose key is already in the dataset (or earlier in
   * the batch) is skipped and reported as a duplicate, never written twice; with `dedupByContent`, so is one
   * whose content hash is. Attached top-k rows are written with their record. Invalid input throws before
   * anything is written; a failure during the write (quota, ...) aborts the whole batch.
   */
  async putRecords(datasetId: string, batch: RecordInput[], opts: PutRecordsOptions = {}): Promise<PutResult> {
    const checked = await prepareRecords(batch, 'putRecords: records');
    return this.write(['datasets', 'records', 'topk'], `${batch.length} records`, opts.durability ?? 'default', (tx) =>
      writeRecords(tx, datasetId, checked, opts.dedupByContent ?? false),
    );
  }

  async getRecord(id: number): Promise<StoredRecord | undefined> {
    return this.db.get('records', id);
  }

  /** Records of a dataset in insertion order, `limit` (default 100) from `offset` (default 0). */
  async getRecords(datasetId: string, page: Page = {}): Promise<StoredRecord[]> {
    return this.page('records', datasetId, page) as Promise<StoredRecord[]>;
  }

  private async page(storeName: 'records' | 'pairs', datasetId: string, { offset = 0, limit = 100 }: Page): Promise<unknown[]> {
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 0) {
      throw new StoreValidationError(`get ${storeName}: offset and limit must be integers ≥ 0, got ${offset}, ${limit}`);
    }
    const out: unknown[] = [];
    if (limit === 0) return out;
    const tx = this.db.transaction(storeName, 'readonly');
    let c = await tx.store.index('by-dataset').openCursor(datasetId);
    if (c && offset > 0) c = await c.advance(offset);
    while (c && out.length < limit) {
      out.push(c.value);
      c = await c.continue();
    }
    await tx.done;
    return out;
  }

  /** Removes records (and their top-k rows) by id, fixing the counts: used to roll back a failed import. */
  async deleteRecords(datasetId: string, ids: number[]): Promise<void> {
    await this.write(['datasets', 'records', 'topk'], 'a record deletion', 'strict', async (tx) => {
      const ds = await tx.objectStore('datasets').get(datasetId);
      if (!ds) throw new NotFoundError(`deleteRecords: no dataset "${datasetId}"`);
      const records = tx.objectStore('records');
      const topk = tx.objectStore('topk');
      for (const id of ids) {
        const r = await records.get(id);
        if (!r || r.datasetId !== datasetId) continue;
        await records.delete(id);
        ds.counts.records--;
        let c = await topk.index('by-record').openCursor(id);
        while (c) {
          ds.counts.topk--;
          ds.counts.topkTokens -= c.value.tokens;
          await c.delete();
          c = await c.continue();
        }
      }
      await tx.objectStore('datasets').put(ds);
    });
  }

  // ---------------------------------------------------------------------------------------------------- top-k

  /** Adds (or replaces) top-k rows of existing records' assistant turns, in one transaction. */
  async putTopK(datasetId: string, entries: { recordId: number; turn: number; rows: Uint8Array; tokens: number }[]): Promise<void> {
    await this.write(['datasets', 'records', 'topk'], `${entries.length} top-k entries`, 'default', async (tx) => {
      const ds = await tx.objectStore('datasets').get(datasetId);
      if (!ds) throw new NotFoundError(`putTopK: no dataset "${datasetId}"`);
      const topk = tx.objectStore('topk');
      for (const [i, e] of entries.entries()) {
        const where = `putTopK: entries[${i}]`;
        const rec = await tx.objectStore('records').get(e.recordId);
        if (!rec || rec.datasetId !== datasetId) throw new NotFoundError(`${where}: no record ${e.recordId} in dataset "${datasetId}"`);
        const t = checkTopKInput({ turn: e.turn, rows: e.rows, tokens: e.tokens }, rec.messages, where);
        const old = await topk.get([e.recordId, t.turn]);
        if (old) { ds.counts.topk--; ds.counts.topkTokens -= old.tokens; }
        await topk.put({ recordId: e.recordId, turn: t.turn, datasetId, tokens: t.tokens, rows: t.rows });
        ds.counts.topk++;
        ds.counts.topkTokens += t.tokens;
      }
      await tx.objectStore('datasets').put(ds);
    });
  }

  async getTopK(recordId: number, turn: number): Promise<TopKEntry | undefined> {
    return this.db.get('topk', [recordId, turn]);
  }

  async getTopKOfRecord(recordId: number): Promise<TopKEntry[]> {
    return this.db.getAllFromIndex('topk', 'by-record', recordId);
  }

  // ---------------------------------------------------------------------------------------------------- pairs

  /** Writes preference pairs in one transaction; a key already in the dataset is skipped as a duplicate. */
  async putPairs(datasetId: string, pairs: PairInput[]): Promise<PutResult> {
    const checked = pairs.map((p, i) => checkPairInput(p, `putPairs: pairs[${i}]`));
    return this.write(['datasets', 'pairs'], `${pairs.length} pairs`, 'default', (tx) => writePairs(tx, datasetId, checked));
  }

  async getPairs(datasetId: string, page: Page = {}): Promise<StoredPair[]> {
    return this.page('pairs', datasetId, page) as Promise<StoredPair[]>;
  }

  // ----------------------------------------------------------------------------------------------------- jobs

  async createJob(input: NewJob): Promise<Job> {
    if (typeof input !== 'object' || input === null) throw new StoreValidationError('createJob: expected {kind, datasetId, config, total?}');
    rejectUnknownKeys(input as unknown as Record<string, unknown>, ['kind', 'datasetId', 'config', 'total'], 'createJob');
    if (typeof input.kind !== 'string' || input.kind === '') throw new StoreValidationError(`createJob.kind: must be a non-empty string, got ${describe(input.kind)}`);
    const total = input.total ?? 0;
    if (!Number.isInteger(total) || total < 0) throw new StoreValidationError(`createJob.total: must be an integer ≥ 0, got ${describe(total)}`);
    const now = Date.now();
    const job: Job = {
      id: newId(),
      kind: input.kind,
      datasetId: input.datasetId,
      config: checkJobConfig(input.config, 'createJob.config'),
      cursor: null,
      status: 'queued',
      progress: { done: 0, total, tokens: 0, cost: 0, startedAt: 0 },
      createdAt: now,
      updatedAt: now,
    };
    await this.write(['datasets', 'jobs'], 'a job', 'strict', async (tx) => {
      if (!(await tx.objectStore('datasets').get(job.datasetId))) throw new NotFoundError(`createJob: no dataset "${job.datasetId}"`);
      await tx.objectStore('jobs').add(job);
    });
    return job;
  }

  async getJob(id: string): Promise<Job | undefined> {
    return this.db.get('jobs', id);
  }

  async listJobs(datasetId?: string): Promise<Job[]> {
    return datasetId === undefined ? this.db.getAll('jobs') : this.db.getAllFromIndex('jobs', 'by-dataset', datasetId);
  }

  async deleteJob(id: string): Promise<void> {
    await this.write(['jobs'], 'a job deletion', 'strict', async (tx) => {
      await tx.objectStore('jobs').delete(id);
    });
  }

  /**
   * Applies `patch` to the job and writes `commit` (records, pairs) into its dataset in ONE transaction with
   * durability 'strict': after a crash either both the new cursor and the step's records are there or neither.
   * With `opts.runId`, the commit is refused (JobConflictError) unless the job is still owned by that runner.
   */
  async updateJob(id: string, patch: JobPatch, commit: JobCommit = {}, opts: { runId?: string } = {}): Promise<{ job: Job; records: PutResult; pairs: PutResult }> {
    const p = checkJobPatch(patch);
    const records = await prepareRecords(commit.records ?? [], 'updateJob: records');
    const pairs = (commit.pairs ?? []).map((x, i) => checkPairInput(x, `updateJob: pairs[${i}]`));
    const what = `job ${id} (${records.length} records, ${pairs.length} pairs)`;
    return this.write([...STORE_NAMES], what, 'strict', async (tx) => {
      const job = await tx.objectStore('jobs').get(id);
      if (!job) throw new NotFoundError(`updateJob: no job "${id}"`);
      if (opts.runId !== undefined && job.runId !== opts.runId) {
        throw new JobConflictError(`updateJob: job "${id}" was taken over by another runner; this runner's step was not committed`);
      }
      const r = records.length > 0 ? await writeRecords(tx, job.datasetId, records, false) : emptyResult();
      const pr = pairs.length > 0 ? await writePairs(tx, job.datasetId, pairs) : emptyResult();
      applyPatch(job, p);
      await tx.objectStore('jobs').put(job);
      return { job, records: r, pairs: pr };
    });
  }

  // ----------------------------------------------------------------------------------------------------- dump

  /** Every object store's contents as one JSON string (bytes as hex): compare two dumps to prove "unchanged". */
  async dump(): Promise<string> {
    const all: Record<string, unknown[]> = {};
    for (const name of STORE_NAMES) all[name] = await this.db.getAll(name);
    return JSON.stringify(all, (_k, v: unknown) =>
      v instanceof Uint8Array ? { u8: Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('') } : v,
    );
  }
}

// ---------------------------------------------------------------------------------------------- write helpers

type Prepared = RecordInput & { contentHash: string };

async function prepareRecords(batch: RecordInput[], where: string): Promise<Prepared[]> {
  if (!Array.isArray(batch)) throw new StoreValidationError(`${where}: expected an array of records, got ${describe(batch)}`);
  const checked = batch.map((r, i) => checkRecordInput(r, `${where}[${i}]`));
  // Hashes are computed before the transaction opens: awaiting crypto inside it would let it auto-commit.
  const hashes = await Promise.all(checked.map((r) => contentHash(r.messages)));
  return checked.map((r, i) => ({ ...r, contentHash: hashes[i]! }));
}

/**
 * Marks a request's promise as handled: when a batch fails part-way, the transaction aborts and the requests
 * still in flight reject with AbortError after the caller has moved on; the caller handles the first error.
 */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function emptyResult(): PutResult {
  return { written: 0, duplicates: 0, ids: [], duplicateKeys: [] };
}

async function writeRecords(tx: WriteTx, datasetId: string, batch: Prepared[], dedupByContent: boolean): Promise<PutResult> {
  const datasets = tx.objectStore('datasets');
  const ds = await datasets.get(datasetId);
  if (!ds) throw new NotFoundError(`putRecords: no dataset "${datasetId}"`);
  const records = tx.objectStore('records');
  // All lookups in flight at once (one round of requests), then all writes.
  const [byKey, byHash] = await Promise.all([
    Promise.all(batch.map((r) => quiet(records.index('by-key').getKey([datasetId, r.key])))),
    dedupByContent ? Promise.all(batch.map((r) => quiet(records.index('by-hash').getKey([datasetId, r.contentHash])))) : [],
  ]);
  const seenKeys = new Set<string>();
  const seenHashes = new Set<string>();
  const result = emptyResult();
  const puts: Promise<number>[] = [];
  const written: Prepared[] = [];
  batch.forEach((r, i) => {
    const dup = byKey[i] !== undefined || seenKeys.has(r.key) || (dedupByContent && (byHash[i] !== undefined || seenHashes.has(r.contentHash)));
    if (dup) {
      result.duplicates++;
      result.duplicateKeys.push(r.key);
      return;
    }
    seenKeys.add(r.key);
    seenHashes.add(r.contentHash);
    const value = { datasetId, key: r.key, messages: r.messages, provenance: r.provenance, contentHash: r.contentHash };
    puts.push(quiet(records.put(value as StoredRecord)));
    written.push(r);
  });
  result.ids = await Promise.all(puts);
  result.written = written.length;
  const topk = tx.objectStore('topk');
  const topkPuts: Promise<unknown>[] = [];
  written.forEach((r, i) => {
    for (const t of r.topk ?? []) {
      topkPuts.push(quiet(topk.put({ recordId: result.ids[i]!, turn: t.turn, datasetId, tokens: t.tokens, rows: t.rows })));
      ds.counts.topk++;
      ds.counts.topkTokens += t.tokens;
    }
  });
  await Promise.all(topkPuts);
  ds.counts.records += result.written;
  await datasets.put(ds);
  return result;
}

async function writePairs(tx: WriteTx, datasetId: string, batch: PairInput[]): Promise<PutResult> {
  const datasets = tx.objectStore('datasets');
  const ds = await datasets.get(datasetId);
  if (!ds) throw new NotFoundError(`putPairs: no dataset "${datasetId}"`);
  const pairs = tx.objectStore('pairs');
  const existing = await Promise.all(batch.map((p) => quiet(pairs.index('by-key').getKey([datasetId, p.key]))));
  const seen = new Set<string>();
  const result = emptyResult();
  const puts: Promise<number>[] = [];
  batch.forEach((p, i) => {
    if (existing[i] !== undefined || seen.has(p.key)) {
      result.duplicates++;
      result.duplicateKeys.push(p.key);
      return;
    }
    seen.add(p.key);
    puts.push(quiet(pairs.put({ ...p, datasetId } as StoredPair)));
  });
  result.ids = await Promise.all(puts);
  result.written = result.ids.length;
  ds.counts.pairs += result.written;
  await datasets.put(ds);
  return result;
}

// ------------------------------------------------------------------------------------------------ job patches

const PROGRESS_KEYS = ['done', 'total', 'tokens', 'cost', 'startedAt', 'etaMs'] as const;

function checkJobPatch(patch: JobPatch): JobPatch {
  if (typeof patch !== 'object' || patch === null) throw new StoreValidationError('updateJob: patch must be an object');
  rejectUnknownKeys(patch as Record<string, unknown>, ['cursor', 'status', 'progress', 'error', 'config', 'runId'], 'updateJob.patch');
  const out: JobPatch = {};
  if ('cursor' in patch) out.cursor = checkCursor(patch.cursor, 'updateJob.patch.cursor');
  if (patch.status !== undefined) {
    if (!JOB_STATUSES.includes(patch.status)) throw new StoreValidationError(`updateJob.patch.status: must be one of ${JOB_STATUSES.join(', ')}, got ${describe(patch.status)}`);
    out.status = patch.status;
  }
  if (patch.progress !== undefined) {
    const pr = patch.progress as Record<string, unknown>;
    rejectUnknownKeys(pr, PROGRESS_KEYS, 'updateJob.patch.progress');
    for (const [k, v] of Object.entries(pr)) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
        throw new StoreValidationError(`updateJob.patch.progress.${k}: must be a finite number ≥ 0, got ${describe(v)}`);
      }
    }
    out.progress = patch.progress;
  }
  if (patch.error !== undefined) {
    if (patch.error !== null && typeof patch.error !== 'string') throw new StoreValidationError('updateJob.patch.error: must be a string or null');
    out.error = patch.error;
  }
  if (patch.config !== undefined) out.config = checkJobConfig(patch.config, 'updateJob.patch.config');
  if (patch.runId !== undefined) out.runId = patch.runId;
  return out;
}

function applyPatch(job: Job, p: JobPatch): void {
  if ('cursor' in p) job.cursor = p.cursor ?? null;
  if (p.status !== undefined) job.status = p.status;
  if (p.progress !== undefined) {
    const merged = { ...job.progress, ...p.progress };
    if (p.progress.etaMs === undefined && 'etaMs' in p.progress) delete merged.etaMs;
    job.progress = merged;
  }
  if (p.error === null) delete job.error;
  else if (p.error !== undefined) job.error = p.error;
  if (p.config !== undefined) job.config = p.config;
  if (p.runId === null) delete job.runId;
  else if (p.runId !== undefined) job.runId = p.runId;
  job.updatedAt = Date.now();
}
