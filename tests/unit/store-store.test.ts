// DistillStore on fake-indexeddb: idempotent batches, paging, counts, top-k and pairs, cascading deletes,
// quota errors (nothing of the batch written), atomic job commits and the storage wrappers.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openStore, requestPersistentStorage, storageEstimate } from '../../src/store/store.ts';
import { JobConflictError, NotFoundError, StorageFullError } from '../../src/store/errors.ts';
import { encodeTopK, packTopKRows } from '../../src/store/topk.ts';
import { failPutAt, freshStore, provenance, quotaError, rec } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
  vi.unstubAllGlobals();
});

function rows(tokens: number): Uint8Array {
  const out: Uint8Array[] = [];
  for (let t = 0; t < tokens; t++) out.push(encodeTopK(Uint32Array.of(5 + t, 9, 100), Float32Array.of(-0.1, -2, -3), 32));
  return packTopKRows(out);
}

describe('records', () => {
  it('writes a batch once: keys already present or repeated in the batch are duplicates', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const r1 = await store.putRecords(ds.id, [rec('a', 'q1'), rec('b', 'q2'), rec('c', 'q3')]);
    expect(r1).toMatchObject({ written: 3, duplicates: 0 });
    const r2 = await store.putRecords(ds.id, [rec('b', 'other'), rec('d', 'q4'), rec('d', 'q4 again'), rec('a', 'q1')]);
    expect(r2.written).toBe(1);
    expect(r2.duplicates).toBe(3);
    expect(r2.duplicateKeys).toEqual(['b', 'd', 'a']);
    const all = await store.getRecords(ds.id, { limit: 100 });
    expect(all.map((r) => r.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(all[1]!.messages[0]!.content).toBe('q2'); // the duplicate did not overwrite
    expect(all[3]!.messages[0]!.content).toBe('q4');
    expect((await store.counts(ds.id)).records).toBe(4);
    expect(await store.db.countFromIndex('records', 'by-dataset', ds.id)).toBe(4);
    expect(all[0]!.contentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('pages with offset and limit, per dataset, in insertion order', async () => {
    const { store } = await freshStore();
    const a = await store.createDataset({ name: 'a' });
    const b = await store.createDataset({ name: 'b' });
    for (let i = 0; i < 5; i++) {
      await store.putRecords(a.id, [rec(`a${i}`, `qa${i}`)]);
      await store.putRecords(b.id, [rec(`b${i}`, `qb${i}`)]);
    }
    expect((await store.getRecords(a.id, { offset: 1, limit: 3 })).map((r) => r.key)).toEqual(['a1', 'a2', 'a3']);
    expect((await store.getRecords(b.id, { offset: 3, limit: 10 })).map((r) => r.key)).toEqual(['b3', 'b4']);
    expect(await store.getRecords(a.id, { offset: 9 })).toEqual([]);
    await expect(store.getRecords(a.id, { offset: -1 })).rejects.toThrow(/offset and limit/);
  });

  it('dedups by content hash when asked, across the dataset and within the batch', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    await store.putRecords(ds.id, [rec('a', 'same')]);
    const r = await store.putRecords(ds.id, [rec('b', 'same'), rec('c', 'new'), rec('d', 'new')], { dedupByContent: true });
    expect(r).toMatchObject({ written: 1, duplicates: 2, duplicateKeys: ['b', 'd'] });
    // Without the option the same content under a new key is a new record.
    expect((await store.putRecords(ds.id, [rec('e', 'same')])).written).toBe(1);
  });

  it('refuses invalid records before writing anything, naming the record and field', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const before = await store.dump();
    const bad = rec('x', 'q');
    (bad.messages[0] as { role: string }).role = 'tool';
    await expect(store.putRecords(ds.id, [rec('ok', 'q'), bad])).rejects.toThrow(/records\[1\]\.messages\[0\]\.role: must be one of system, user, assistant/);
    await expect(store.putRecords(ds.id, [{ ...rec('y', 'q'), extra: 1 } as never])).rejects.toThrow(/unknown field "extra"/);
    await expect(store.putRecords('nope', [rec('z', 'q')])).rejects.toThrow(NotFoundError);
    expect(await store.dump()).toBe(before);
  });
});

describe('top-k and pairs', () => {
  it('stores top-k with its record, and separately; counts follow', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const r = await store.putRecords(ds.id, [{ ...rec('a', 'q'), topk: [{ turn: 1, rows: rows(3), tokens: 3 }] }, rec('b', 'q2')]);
    const [idA, idB] = r.ids as [number, number];
    expect((await store.getTopK(idA, 1))?.rows).toEqual(rows(3));
    await store.putTopK(ds.id, [{ recordId: idB, turn: 1, rows: rows(2), tokens: 2 }]);
    expect(await store.counts(ds.id)).toEqual({ records: 2, pairs: 0, topk: 2, topkTokens: 5 });
    await store.putTopK(ds.id, [{ recordId: idB, turn: 1, rows: rows(4), tokens: 4 }]); // replaces
    expect(await store.counts(ds.id)).toMatchObject({ topk: 2, topkTokens: 7 });
    await expect(store.putTopK(ds.id, [{ recordId: idB, turn: 0, rows: rows(1), tokens: 1 }])).rejects.toThrow(/index of an assistant message/);
    await expect(store.putTopK(ds.id, [{ recordId: 999, turn: 1, rows: rows(1), tokens: 1 }])).rejects.toThrow(/no record 999/);
  });

  it('stores pairs idempotently by key', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const pair = (key: string) => ({ key, prompt: [{ role: 'user' as const, content: 'q' }], chosen: 'good', rejected: 'bad', provenance: provenance() });
    expect((await store.putPairs(ds.id, [pair('p1'), pair('p2'), pair('p1')])).written).toBe(2);
    expect((await store.putPairs(ds.id, [pair('p2'), pair('p3')])).duplicates).toBe(1);
    expect((await store.getPairs(ds.id)).map((p) => p.key)).toEqual(['p1', 'p2', 'p3']);
    expect((await store.counts(ds.id)).pairs).toBe(3);
  });
});

describe('deleteDataset', () => {
  it('cascades to records, top-k, pairs and jobs of that dataset only', async () => {
    const { store } = await freshStore();
    const keep = await store.createDataset({ name: 'keep' });
    const keepRecords = await store.putRecords(keep.id, [{ ...rec('k', 'q'), topk: [{ turn: 1, rows: rows(1), tokens: 1 }] }]);
    await store.createJob({ kind: 'elicit', datasetId: keep.id, config: {} });
    const keepDump = await store.dump();
    const gone = await store.createDataset({ name: 'gone' });
    await store.putRecords(gone.id, [{ ...rec('a', 'q'), topk: [{ turn: 1, rows: rows(2), tokens: 2 }] }, rec('b', 'q')]);
    await store.putPairs(gone.id, [{ key: 'p', prompt: [{ role: 'user', content: 'q' }], chosen: 'c', rejected: 'r', provenance: provenance() }]);
    await store.createJob({ kind: 'elicit', datasetId: gone.id, config: { n: 1 } });
    await store.deleteDataset(gone.id);
    expect(await store.dump()).toBe(keepDump);
    expect(await store.getTopK(keepRecords.ids[0]!, 1)).toBeDefined();
    await expect(store.deleteDataset(gone.id)).rejects.toThrow(NotFoundError);
  });
});

describe('storage full', () => {
  it('aborts the whole batch on QuotaExceededError and says how much is used', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    await store.putRecords(ds.id, [rec('a', 'q')]);
    const before = await store.dump();
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 1_950_000_000, quota: 2_000_000_000 }) } });
    restore = failPutAt(3, quotaError); // the third record's put
    const err = await store.putRecords(ds.id, [rec('b', 'q'), rec('c', 'q'), rec('d', 'q'), rec('e', 'q')]).catch((e: unknown) => e);
    restore();
    expect(err).toBeInstanceOf(StorageFullError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/1\.9 GB used of 2\.0 GB/);
    expect(msg).toMatch(/nothing of it was written/);
    expect((err as StorageFullError).usage).toBe(1_950_000_000);
    expect(await store.dump()).toBe(before);
    expect((await store.putRecords(ds.id, [rec('b', 'q')])).written).toBe(1); // the store still works
  });

  it('says usage is unknown where navigator.storage is absent', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    restore = failPutAt(1, quotaError);
    await expect(store.putRecords(ds.id, [rec('b', 'q')])).rejects.toThrow(/usage and quota unknown/);
  });

  it('storage wrappers return undefined without navigator.storage and pass through with it', async () => {
    vi.stubGlobal('navigator', undefined);
    expect(await storageEstimate()).toBeUndefined();
    expect(await requestPersistentStorage()).toBeUndefined();
    vi.stubGlobal('navigator', { storage: { persist: async () => true, estimate: async () => ({ usage: 5, quota: 10 }) } });
    expect(await requestPersistentStorage()).toBe(true);
    expect(await storageEstimate()).toEqual({ usage: 5, quota: 10 });
  });
});

describe('jobs', () => {
  it('creates, lists, patches (unknown keys rejected) and deletes jobs', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: { n: 3 }, total: 10 });
    expect(job).toMatchObject({ status: 'queued', cursor: null, progress: { done: 0, total: 10 } });
    const { job: j2 } = await store.updateJob(job.id, { status: 'running', progress: { done: 2 }, error: 'x' });
    expect(j2.progress).toMatchObject({ done: 2, total: 10 });
    expect(j2.error).toBe('x');
    expect((await store.updateJob(job.id, { error: null })).job.error).toBeUndefined();
    await expect(store.updateJob(job.id, { bogus: 1 } as never)).rejects.toThrow(/unknown field "bogus"/);
    await expect(store.updateJob(job.id, { status: 'exploded' as never })).rejects.toThrow(/status: must be one of/);
    await expect(store.createJob({ kind: 'k', datasetId: 'missing', config: {} })).rejects.toThrow(NotFoundError);
    expect((await store.listJobs(ds.id)).map((j) => j.id)).toEqual([job.id]);
    await store.deleteJob(job.id);
    expect(await store.getJob(job.id)).toBeUndefined();
  });

  it('commits records and cursor together: a failing write keeps neither', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
    await store.updateJob(job.id, { cursor: 1 }, { records: [rec('a', 'q')] });
    const before = await store.dump();
    restore = failPutAt(2, () => new Error('simulated crash'));
    await expect(store.updateJob(job.id, { cursor: 2 }, { records: [rec('b', 'q'), rec('c', 'q')] })).rejects.toThrow('simulated crash');
    restore();
    expect(await store.dump()).toBe(before);
    expect((await store.getJob(job.id))!.cursor).toBe(1);
  });

  it('refuses a commit from a runner that no longer owns the job', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
    await store.updateJob(job.id, { runId: 'tab-1' });
    await store.updateJob(job.id, { runId: 'tab-2' }); // another tab took over
    await expect(store.updateJob(job.id, { cursor: 5 }, { records: [rec('a', 'q')] }, { runId: 'tab-1' })).rejects.toThrow(JobConflictError);
    expect((await store.counts(ds.id)).records).toBe(0);
  });
});

describe('openStore', () => {
  it('reopens the same database with its data, and refuses a newer schema with a clear error', async () => {
    const { store, factory, name } = await freshStore();
    const ds = await store.createDataset({ name: 'persist me' });
    store.close();
    const again = await openStore(name, factory);
    expect((await again.getDataset(ds.id))?.name).toBe('persist me');
    expect([...again.db.objectStoreNames].sort()).toEqual(['datasets', 'jobs', 'pairs', 'records', 'topk']);
    expect([...again.db.transaction('records').store.indexNames].sort()).toEqual(['by-dataset', 'by-hash', 'by-key']);
    again.close();
    await new Promise<void>((resolve, reject) => {
      const req = factory.open('future', 99);
      req.onsuccess = () => { req.result.close(); resolve(); };
      req.onerror = () => reject(req.error);
    });
    await expect(openStore('future', factory)).rejects.toThrow(/newer version of this app/);
  });
});
