// Training runs in IndexedDB (database 'webgpu-distill-runs', beside the data store 'webgpu-distill'): the run
// (RunInfo + the ids of the records/pairs it was created from + its tokenizer), everything it logged in order
// (steps, evals, events, samples: what the charts redraw from after a reload), and its blobs — checkpoints, the
// frozen DPO reference, a picked teacher's files — each written in one 'strict' transaction, so a closed tab
// leaves the old or the new value, never a mix. A full disk is a clear error that keeps the previous value.
import { wrap, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { isQuotaError } from '../../store/errors.ts';
import { storageFullError } from '../../store/store.ts';
import type { HfTokenizerJson } from '../../tokenizer/bpe.ts';
import type { CheckpointStore } from '../../train/checkpoint.ts';
import type { RunInfo, RunLog } from './types.ts';

/** A run as stored: what the page sees (RunInfo) plus what resuming it needs. */
export interface StoredRun extends RunInfo {
  snapshot: { records: number[]; pairs: number[] };
  tokenizer: HfTokenizerJson;
  /** A model family's tokenizer_config.json (its special tokens), for a tokenizer ours does not read. */
  tokenizerConfig?: Record<string, unknown>;
}

interface LogRow {
  runId: string;
  seq: number;
  log: RunLog;
}

interface RunsDB extends DBSchema {
  runs: { key: string; value: StoredRun };
  logs: { key: [string, number]; value: LogRow };
  blobs: { key: string; value: ArrayBuffer };
}

const VERSION = 1;
type StoreName = 'runs' | 'logs' | 'blobs';
type WriteTx = IDBPTransaction<RunsDB, StoreName[], 'readwrite'>;

export class RunStore {
  private readonly seq = new Map<string, number>();

  private constructor(private readonly db: IDBPDatabase<RunsDB>) {}

  static async open(name = 'webgpu-distill-runs', idbFactory?: IDBFactory): Promise<RunStore> {
    const factory = idbFactory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!factory) throw new Error('runs: IndexedDB is not available in this context');
    const request = factory.open(name, VERSION);
    request.addEventListener('upgradeneeded', () => {
      const db = request.result;
      db.createObjectStore('runs', { keyPath: 'id' });
      db.createObjectStore('logs', { keyPath: ['runId', 'seq'] });
      db.createObjectStore('blobs');
    });
    const db = (await wrap(request)) as unknown as IDBPDatabase<RunsDB>;
    db.addEventListener('versionchange', () => db.close());
    return new RunStore(db);
  }

  private async tx<T>(stores: StoreName[], what: string, fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    const tx = this.db.transaction(stores, 'readwrite', { durability: 'strict' });
    tx.done.catch(() => undefined); // an aborted transaction's rejection is handled below, through `fn`'s error
    try {
      const out = await fn(tx);
      await tx.done;
      return out;
    } catch (e) {
      try { tx.abort(); } catch { /* already finished */ }
      if (isQuotaError(e) || isQuotaError((tx as { error?: unknown }).error)) throw await storageFullError(what);
      throw e;
    }
  }

  async putRun(run: StoredRun): Promise<void> {
    await this.tx(['runs'], `run ${run.name}`, (tx) => tx.objectStore('runs').put(run));
  }

  async getRun(id: string): Promise<StoredRun | undefined> {
    return this.db.get('runs', id);
  }

  async listRuns(): Promise<StoredRun[]> {
    return (await this.db.getAll('runs')).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Applies `patch` to the stored run (read-modify-write in one transaction); returns the new value. */
  async updateRun(id: string, patch: Partial<RunInfo>): Promise<StoredRun> {
    return this.tx(['runs'], `run ${id}`, async (tx) => {
      const run = await tx.objectStore('runs').get(id);
      if (!run) throw new Error(`run ${id} does not exist (deleted in another tab?)`);
      const next = { ...run, ...patch, updatedAt: Date.now() };
      await tx.objectStore('runs').put(next);
      return next;
    });
  }

  /** Removes the run, its logs and its blobs. */
  async deleteRun(id: string): Promise<void> {
    await this.tx(['runs', 'logs', 'blobs'], `deleting run ${id}`, async (tx) => {
      await tx.objectStore('runs').delete(id);
      await tx.objectStore('logs').delete(IDBKeyRange.bound([id, 0], [id, Infinity]));
      await tx.objectStore('blobs').delete(IDBKeyRange.bound(`${id}:`, `${id}:\uffff`));
    });
    this.seq.delete(id);
  }

  private async nextSeq(runId: string): Promise<number> {
    let s = this.seq.get(runId);
    if (s === undefined) {
      const last = await this.db.transaction('logs').store.openCursor(IDBKeyRange.bound([runId, 0], [runId, Infinity]), 'prev');
      s = last ? last.value.seq + 1 : 0;
    }
    this.seq.set(runId, s + 1);
    return s;
  }

  async appendLog(runId: string, log: RunLog): Promise<void> {
    const seq = await this.nextSeq(runId);
    await this.tx(['logs'], `run ${runId}'s log`, (tx) => tx.objectStore('logs').put({ runId, seq, log }));
  }

  async logs(runId: string): Promise<RunLog[]> {
    return (await this.db.getAll('logs', IDBKeyRange.bound([runId, 0], [runId, Infinity]))).map((r) => r.log);
  }

  /** Drops what was logged after step `step` (a resume from that step's checkpoint logs it again). */
  async truncateLogs(runId: string, step: number): Promise<void> {
    await this.tx(['logs'], `run ${runId}'s log`, async (tx) => {
      let c = await tx.objectStore('logs').openCursor(IDBKeyRange.bound([runId, 0], [runId, Infinity]));
      while (c) {
        if (c.value.log.step > step) await c.delete();
        c = await c.continue();
      }
    });
  }

  async putBlob(key: string, bytes: Uint8Array, what: string): Promise<void> {
    const copy = bytes.slice().buffer;
    await this.tx(['blobs'], what, (tx) => tx.objectStore('blobs').put(copy, key));
  }

  async getBlob(key: string): Promise<Uint8Array | undefined> {
    const v = await this.db.get('blobs', key);
    return v ? new Uint8Array(v) : undefined;
  }

  async blobKeys(prefix: string): Promise<string[]> {
    return (await this.db.getAllKeys('blobs', IDBKeyRange.bound(prefix, `${prefix}\uffff`))) as string[];
  }

  /** The Trainer's CheckpointStore for one run: names map to blobs '<runId>:<name>'. */
  checkpoints(runId: string): CheckpointStore {
    return {
      put: (name, bytes) => this.putBlob(`${runId}:${name}`, bytes, `checkpoint '${name}' of run ${runId} (${(bytes.length / 1048576).toFixed(1)} MiB; the previous checkpoint is kept)`),
      get: (name) => this.getBlob(`${runId}:${name}`),
      list: async () => (await this.blobKeys(`${runId}:`)).map((k) => k.slice(runId.length + 1)),
    };
  }

  close(): void {
    this.db.close();
  }
}
