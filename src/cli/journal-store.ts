// The CLI's durable store (issue #12; Node only): the app's own DistillStore over fake-indexeddb, made durable by
// an append-only journal of committed transactions in a folder. Every readwrite transaction of a journaled
// database is recorded as it runs (each successful put/add/delete/clear, cursor update/delete: the value as
// written, with its generated key) and, when it commits, appended to `journal.log` as ONE frame —
// [u32 length][u32 CRC-32][JSON] — and fsynced; a transaction that aborts leaves nothing. Opening the folder
// replays the frames into a fresh in-memory database, in commit order, one transaction per frame. A kill at any
// instant therefore leaves the state after some prefix of the committed transactions: a torn last frame (short or
// failing its CRC) is dropped, nothing else can be half there. That is exactly the guarantee IndexedDB gives the app
// (a step's records and its cursor in one transaction), so a job resumed from the folder writes every record once.
// The store's write methods resolve only once their frame is on disk (fsync), so "committed" means durable.
//
// Why this and not SQLite: the elicit command keeps the store the app and its tests use (same schema, dedup,
// counts, exactly-once commits), with no second implementation to keep in step and no native addon to build
// (better-sqlite3 needs a compiler or a download at install; Node 20 has no node:sqlite). The journal is compacted
// on open (rewritten as one snapshot) once it holds many frames. fake-indexeddb is a runtime dependency for this.
// One writer per folder (a `lock` file holding its pid; a dead pid's lock is taken over); read-only opens (export)
// read the journal as far as it is complete and take no lock, so they may run while a job writes.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { unwrap } from 'idb';
import { openStore, type DistillStore } from '../store/store.ts';
import { STORE_NAMES } from '../store/schema.ts';
import { crc32 } from '../export/zip.ts';

type Op = ['p', string, unknown] | ['d', string, unknown] | ['c', string];
type Fake = Record<string, unknown> & {
  IDBFactory: new () => IDBFactory; IDBObjectStore: { prototype: object }; IDBCursor: { prototype: object };
  IDBIndex: new (...a: never[]) => IDBIndex; IDBKeyRange: typeof IDBKeyRange;
};

const JOURNAL = 'journal.log';
const LOCK = 'lock';
/** Compact on open once the journal has this many frames. */
const COMPACT_FRAMES = 2000;
const IDB_GLOBALS = [
  'IDBCursor', 'IDBCursorWithValue', 'IDBDatabase', 'IDBFactory', 'IDBIndex', 'IDBKeyRange', 'IDBObjectStore',
  'IDBOpenDBRequest', 'IDBRequest', 'IDBTransaction', 'IDBVersionChangeEvent',
];

async function fakeIdb(): Promise<Fake> {
  let m: Fake;
  try {
    m = (await import('fake-indexeddb')) as unknown as Fake;
  } catch {
    throw new Error("the elicit command keeps its store through the package 'fake-indexeddb': install the dependencies (npm ci)");
  }
  // idb checks `instanceof IDBRequest` (etc.) against globals: install the fake's classes where Node has none.
  const g = globalThis as Record<string, unknown>;
  for (const name of IDB_GLOBALS) if (g[name] === undefined) g[name] = m[name];
  return m;
}

// ------------------------------------------------------------------------------------------------ encoding

function encodeJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof Uint8Array) return { $u8: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64') };
    if (typeof IDBKeyRange !== 'undefined' && x instanceof IDBKeyRange) return { $range: [x.lower ?? null, x.upper ?? null, x.lowerOpen, x.upperOpen] };
    return x;
  });
}

function decodeJson(text: string, fake: Fake): unknown {
  return JSON.parse(text, (_k, x: unknown) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$u8 === 'string') return new Uint8Array(Buffer.from(o.$u8, 'base64'));
    if (keys.length === 1 && Array.isArray(o.$range)) {
      const [lo, hi, lo0, hi0] = o.$range as [unknown, unknown, boolean, boolean];
      return lo === null ? fake.IDBKeyRange.upperBound(hi, hi0) : hi === null ? fake.IDBKeyRange.lowerBound(lo, lo0) : fake.IDBKeyRange.bound(lo, hi, lo0, hi0);
    }
    return x;
  });
}

function frame(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(crc32(body), 4);
  return Buffer.concat([head, body]);
}

/** The complete frames of a journal file and the byte length they cover (a torn or corrupt tail is left out). */
export function readFrames(bytes: Buffer): { frames: string[]; goodBytes: number } {
  const frames: string[] = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    const len = bytes.readUInt32LE(at);
    const crc = bytes.readUInt32LE(at + 4);
    if (at + 8 + len > bytes.length) break;
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (crc32(body) !== crc) break;
    frames.push(body.toString('utf8'));
    at += 8 + len;
  }
  return { frames, goodBytes: at };
}

// ------------------------------------------------------------------------------------------------- capture

/** Journals by raw database; the prototype patches record only transactions of these. */
const journals = new WeakMap<object, Journal>();
let patched = false;

function patchOnce(fake: Fake): void {
  if (patched) return;
  patched = true;
  const store = fake.IDBObjectStore.prototype as Record<string, (...a: unknown[]) => unknown>;
  const cursor = fake.IDBCursor.prototype as Record<string, (...a: unknown[]) => unknown>;
  type Tx = IDBTransaction & { db: object };
  const journalOf = (tx: Tx): Journal | undefined => (tx.mode === 'readwrite' ? journals.get(tx.db) : undefined);
  const hook = (target: Record<string, (...a: unknown[]) => unknown>, name: string, txOf: (self: never) => Tx, opOf: (self: never, args: unknown[], result: unknown) => Op) => {
    const orig = target[name]!;
    target[name] = function (this: never, ...args: unknown[]) {
      const tx = txOf(this);
      const j = journalOf(tx);
      if (!j) return orig.apply(this, args);
      // The value is captured as it is now (IndexedDB clones it at the call), the op once it has succeeded.
      const clone = name === 'put' || name === 'add' || name === 'update' ? structuredClone(args[0]) : undefined;
      const req = orig.apply(this, args) as IDBRequest;
      req.addEventListener('success', () => j.record(tx, opOf(this, clone === undefined ? args : [clone, ...args.slice(1)], req.result)));
      return req;
    };
  };
  const withKey = (os: IDBObjectStore, value: unknown, key: unknown): unknown => {
    if (typeof os.keyPath === 'string' && value !== null && typeof value === 'object' && !(os.keyPath in (value as object))) {
      (value as Record<string, unknown>)[os.keyPath] = key; // a generated key, written into the value as IndexedDB did
    }
    return value;
  };
  const osTx = (os: IDBObjectStore) => os.transaction as Tx;
  for (const name of ['put', 'add'] as const) {
    hook(store, name, osTx, (os: IDBObjectStore, [value, key], result) => (os.keyPath === null ? ['p', os.name, [value, key ?? result]] : ['p', os.name, withKey(os, value, result)]));
  }
  hook(store, 'delete', osTx, (os: IDBObjectStore, [key]) => ['d', os.name, key]);
  hook(store, 'clear', osTx, (os: IDBObjectStore) => ['c', os.name]);
  const sourceOf = (c: IDBCursor): IDBObjectStore => (c.source instanceof fake.IDBIndex ? (c.source as IDBIndex).objectStore : (c.source as IDBObjectStore));
  hook(cursor, 'update', (c: IDBCursor) => osTx(sourceOf(c)), (c: IDBCursor, [value]) => {
    const os = sourceOf(c);
    return os.keyPath === null ? ['p', os.name, [value, c.primaryKey]] : ['p', os.name, value];
  });
  hook(cursor, 'delete', (c: IDBCursor) => osTx(sourceOf(c)), (c: IDBCursor) => ['d', sourceOf(c).name, c.primaryKey]);
}

// ------------------------------------------------------------------------------------------------- journal

class Journal {
  private readonly open = new Map<IDBTransaction, Op[]>();
  private queue: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private writing: Promise<void> | null = null;
  private failed: unknown = null;
  frames: number;

  constructor(private readonly fh: FileHandle, frames: number) {
    this.frames = frames;
  }

  record(tx: IDBTransaction, op: Op): void {
    let ops = this.open.get(tx);
    if (!ops) {
      ops = [];
      this.open.set(tx, ops);
      tx.addEventListener('complete', () => { this.open.delete(tx); this.append(ops!); });
      tx.addEventListener('abort', () => { this.open.delete(tx); });
    }
    ops.push(op);
  }

  private append(ops: Op[]): void {
    this.queue.push(frame(encodeJson(ops)));
    this.frames++;
    this.writing ??= this.drain();
  }

  /** Writes what is queued (all of it per write), fsyncs, repeats until the queue is empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failed) {
        const bufs = this.queue;
        const waiters = this.waiters;
        this.queue = [];
        this.waiters = [];
        try {
          await this.fh.appendFile(Buffer.concat(bufs));
          await this.fh.datasync();
        } catch (e) {
          this.failed = e;
        }
        for (const w of waiters) w();
      }
    } finally {
      this.writing = null;
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Resolves once every transaction committed so far is on disk; rejects if the journal could not be written. */
  async flush(): Promise<void> {
    if (this.writing || this.queue.length > 0) await new Promise<void>((resolve) => { this.waiters.push(resolve); this.writing ??= this.drain(); });
    if (this.failed) throw new Error(`the store's journal could not be written (${(this.failed as Error).message}); nothing after the last durable commit is kept`);
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.fh.close();
  }
}

// ------------------------------------------------------------------------------------------------ the store

export interface JournalStore {
  store: DistillStore;
  dir: string;
  /** Frames replayed at open (after compaction, if any). */
  replayed: number;
  /** Bytes of a torn last frame dropped at open (0 = the journal ended cleanly). */
  droppedBytes: number;
  /** Waits until every committed transaction is on disk. */
  flush(): Promise<void>;
  /** Flushes, closes the store and the journal, releases the lock. */
  close(): Promise<void>;
}

/** Store methods that write: they resolve only once their transaction's frame is durable. */
const WRITES = ['createDataset', 'putRecords', 'deleteDataset', 'deleteRecords', 'putTopK', 'putPairs', 'createJob', 'deleteJob', 'updateJob'] as const;

/**
 * Opens (creating) the durable store in `dir`. `readOnly`: replay what is there (a torn tail ignored, not cut),
 * take no lock, write nothing — for `elicit --export` while a job may be running. `compactFrames`: compact when
 * the journal has at least this many frames (default COMPACT_FRAMES).
 */
export async function openJournalStore(dir: string, opts: { readOnly?: boolean; compactFrames?: number } = {}): Promise<JournalStore> {
  const fake = await fakeIdb();
  const path = join(dir, JOURNAL);
  if (opts.readOnly && !existsSync(path)) throw new Error(`no store in ${dir} (no ${JOURNAL})`);
  const key = resolve(dir);
  if (!opts.readOnly) {
    if (openHere.has(key)) throw new Error(`the store ${dir} is already open in this process`);
    mkdirSync(dir, { recursive: true });
    takeLock(dir);
    openHere.add(key);
    if (!existsSync(path)) {
      writeFileSync(path, '');
      fsyncDir(dir); // the journal's directory entry is durable before any frame is
    }
  }
  try {
    const bytes = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    const { frames, goodBytes } = readFrames(bytes);
    const droppedBytes = bytes.length - goodBytes;
    if (!opts.readOnly) rmSync(`${path}.compact`, { force: true });
    if (!opts.readOnly && droppedBytes > 0) {
      const fd = openSync(path, 'r+');
      try { ftruncateSync(fd, goodBytes); fsyncSync(fd); } finally { closeSync(fd); }
    }
    const store = await openStore('distill-cli', new fake.IDBFactory());
    for (const f of frames) await replay(store, decodeJson(f, fake) as Op[]);
    let replayed = frames.length;
    if (!opts.readOnly && frames.length >= (opts.compactFrames ?? COMPACT_FRAMES)) replayed = await compact(store, path);
    if (opts.readOnly) {
      return { store, dir, replayed, droppedBytes, flush: async () => undefined, close: async () => store.close() };
    }
    patchOnce(fake);
    const journal = new Journal(await open(path, 'a'), replayed);
    journals.set(unwrap(store.db), journal);
    const s = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of WRITES) {
      const orig = s[name]!.bind(store);
      s[name] = async (...a: unknown[]) => {
        const r = await orig(...a);
        await journal.flush();
        return r;
      };
    }
    let closed = false;
    return {
      store, dir, replayed, droppedBytes,
      flush: () => journal.flush(),
      close: async () => {
        if (closed) return;
        closed = true;
        await journal.close();
        journals.delete(unwrap(store.db));
        store.close();
        rmSync(join(dir, LOCK), { force: true });
        openHere.delete(key);
      },
    };
  } catch (e) {
    if (!opts.readOnly) { rmSync(join(dir, LOCK), { force: true }); openHere.delete(key); }
    throw e;
  }
}

/** Folders this process has open for writing. */
const openHere = new Set<string>();

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory; the file's own fsyncs still apply.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Applies one frame's ops in one transaction. */
async function replay(store: DistillStore, ops: Op[]): Promise<void> {
  if (!Array.isArray(ops)) throw new Error('journal: a frame is not a list of operations');
  const names = [...new Set(ops.map((o) => o[1]))].filter((n) => (STORE_NAMES as readonly string[]).includes(n));
  if (names.length !== new Set(ops.map((o) => o[1])).size) throw new Error('journal: a frame names an unknown object store');
  if (names.length === 0) return;
  const tx = store.db.transaction(names as never, 'readwrite');
  for (const op of ops) {
    const os = tx.objectStore(op[1] as never) as unknown as { put(v: unknown, k?: unknown): Promise<unknown>; delete(k: unknown): Promise<unknown>; clear(): Promise<unknown>; keyPath: unknown };
    if (op[0] === 'p') void (os.keyPath === null ? os.put(...(op[2] as [unknown, unknown])) : os.put(op[2]));
    else if (op[0] === 'd') void os.delete(op[2]);
    else if (op[0] === 'c') void os.clear();
    else throw new Error(`journal: unknown operation ${JSON.stringify(op[0])}`);
  }
  await tx.done;
}

/** Rewrites the journal as a snapshot of the state (a frame per store chunk), atomically. Returns its frames. */
async function compact(store: DistillStore, path: string): Promise<number> {
  const tmp = `${path}.compact`;
  const fd = openSync(tmp, 'w');
  let frames = 0;
  try {
    for (const name of STORE_NAMES) {
      const rows = (await store.db.getAll(name as never)) as unknown[];
      for (let i = 0; i < rows.length; i += 1000) {
        writeFileSync(fd, frame(encodeJson(rows.slice(i, i + 1000).map((v) => ['p', name, v]))));
        frames++;
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
  return frames;
}

function takeLock(dir: string): void {
  const lock = join(dir, LOCK);
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`the store ${dir} is in use by process ${pid} (another elicit run); wait for it or stop it`);
      }
      rmSync(lock, { force: true }); // left by a process that was killed
    }
  }
  throw new Error(`could not take the lock of the store ${dir}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
