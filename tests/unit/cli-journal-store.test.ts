// The CLI's durable store (src/cli/journal-store.ts, issue #12): every committed transaction of the app's store is
// replayed after a reopen exactly (dump equal: records, top-k bytes, pairs, jobs, counts, auto-increment ids); an
// aborted transaction leaves nothing; a torn or corrupt last frame is dropped and cut off, and later commits are
// kept; compaction keeps the state; one writer per folder (a dead writer's lock is taken over); a read-only open
// sees what is committed while the writer works; stores that are not journaled are untouched. (Real SIGKILLs of a
// real CLI process: elicit-cli-kill.test.ts.)
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openJournalStore, readFrames } from '../../src/cli/journal-store.ts';
import { crc32 } from '../../src/export/zip.ts';
import { JobConflictError } from '../../src/store/errors.ts';
import { packTopKRows, encodeTopK } from '../../src/store/topk.ts';
import type { DistillStore } from '../../src/store/store.ts';
import { freshStore, rec } from './store-fixtures.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'journal-'));
  dirs.push(d);
  return join(d, 'store');
}

/** A few of every kind of write the elicitation flow does (and a delete through a cursor). */
async function writeSome(store: DistillStore, n: number): Promise<{ datasetId: string; jobId: string }> {
  const ds = await store.createDataset({ name: 'j' });
  const job = await store.createJob({ kind: 'elicit:labeling', datasetId: ds.id, config: { strategy: 'labeling', config: {} } });
  const rows = packTopKRows([encodeTopK(Uint32Array.of(3, 1), Float32Array.of(-0.1, -2.5), 2)]);
  for (let i = 0; i < n; i++) {
    const r = { ...rec(`k${i}`, `prompt ${i}`), topk: [{ turn: 1, rows, tokens: 1 }] };
    await store.updateJob(job.id, { cursor: { items: i + 1, stats: { x: i } }, progress: { done: i + 1 } }, { records: [r] });
  }
  await store.putPairs(ds.id, [{ key: 'p', prompt: [{ role: 'user', content: 'q' }], chosen: 'a', rejected: 'b', provenance: rec('x', 'y').provenance }]);
  const ids = (await store.getRecords(ds.id, { limit: 2 })).map((r) => r.id);
  await store.deleteRecords(ds.id, ids.slice(0, 1)); // deletes top-k rows through an index cursor
  return { datasetId: ds.id, jobId: job.id };
}

describe('journal store', () => {
  it('replays every committed transaction: the reopened store dumps the same', async () => {
    const dir = tmp();
    const a = await openJournalStore(dir);
    const { datasetId } = await writeSome(a.store, 12);
    const before = await a.store.dump();
    await a.close();
    const b = await openJournalStore(dir);
    expect(await b.store.dump()).toBe(before);
    expect(b.replayed).toBeGreaterThan(12);
    expect(b.droppedBytes).toBe(0);
    // Auto-increment ids continue after the replayed ones; counts are the dataset's.
    const more = await b.store.putRecords(datasetId, [rec('new', 'another prompt')]);
    const ids = (await b.store.getRecords(datasetId, { limit: 100 })).map((r) => r.id);
    expect(more.ids[0]).toBe(Math.max(...ids));
    expect(new Set(ids).size).toBe(ids.length);
    expect((await b.store.counts(datasetId)).records).toBe(12);
    await b.close();
  });

  it('an aborted transaction leaves nothing in the journal', async () => {
    const dir = tmp();
    const a = await openJournalStore(dir);
    const { jobId } = await writeSome(a.store, 2);
    const size = statSync(join(dir, 'journal.log')).size;
    await expect(a.store.updateJob(jobId, { cursor: { items: 99 } }, { records: [rec('z', 'never')] }, { runId: 'someone-else' })).rejects.toThrow(JobConflictError);
    await a.flush();
    expect(statSync(join(dir, 'journal.log')).size).toBe(size);
    await a.close();
  });

  it('drops a torn or corrupt last frame, cuts it off, and keeps what is written after', async () => {
    for (const tear of ['short', 'crc'] as const) {
      const dir = tmp();
      const a = await openJournalStore(dir);
      const { datasetId } = await writeSome(a.store, 3);
      const before = await a.store.dump();
      await a.close();
      const path = join(dir, 'journal.log');
      const good = statSync(path).size;
      if (tear === 'short') appendFileSync(path, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 91, 34])); // a frame of 200 bytes, 2 written
      else {
        const body = Buffer.from('[["c","records"]]');
        const head = Buffer.alloc(8);
        head.writeUInt32LE(body.length, 0);
        head.writeUInt32LE((crc32(body) ^ 1) >>> 0, 4);
        appendFileSync(path, Buffer.concat([head, body]));
      }
      const b = await openJournalStore(dir);
      expect(b.droppedBytes).toBeGreaterThan(0);
      expect(await b.store.dump()).toBe(before);
      expect(statSync(path).size).toBe(good);
      await b.store.putRecords(datasetId, [rec('after', 'after the tear')]);
      await b.close();
      const c = await openJournalStore(dir);
      expect((await c.store.getRecords(datasetId, { limit: 100 })).map((r) => r.key)).toContain('after');
      await c.close();
    }
    expect(readFrames(Buffer.alloc(3)).goodBytes).toBe(0);
  });

  it('compacts a long journal on open into a snapshot of the same state', async () => {
    const dir = tmp();
    const a = await openJournalStore(dir);
    await writeSome(a.store, 30);
    const before = await a.store.dump();
    await a.close();
    const sizeBefore = statSync(join(dir, 'journal.log')).size;
    const b = await openJournalStore(dir, { compactFrames: 10 });
    expect(await b.store.dump()).toBe(before);
    await b.close();
    expect(statSync(join(dir, 'journal.log')).size).toBeLessThan(sizeBefore);
    const c = await openJournalStore(dir);
    expect(c.replayed).toBeLessThanOrEqual(5);
    expect(await c.store.dump()).toBe(before);
    await c.close();
  });

  it('one writer per folder; a dead writer’s lock is taken over; a read-only open sees what is committed', async () => {
    const dir = tmp();
    const a = await openJournalStore(dir);
    await expect(openJournalStore(dir)).rejects.toThrow(/already open in this process/);
    const { datasetId } = await writeSome(a.store, 2);
    const ro = await openJournalStore(dir, { readOnly: true });
    expect((await ro.store.getRecords(datasetId, { limit: 10 })).length).toBe(1);
    await ro.close();
    await a.close();
    // A lock held by a live process refuses; one left by a dead process is taken over.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    try {
      writeFileSync(join(dir, 'lock'), String(child.pid));
      await expect(openJournalStore(dir)).rejects.toThrow(new RegExp(`in use by process ${child.pid}`));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const b = await openJournalStore(dir);
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(String(process.pid));
    await b.close();
    await expect(openJournalStore(join(dir, 'missing'), { readOnly: true })).rejects.toThrow(/no store/);
  });

  it('leaves stores that are not journaled alone', async () => {
    const dir = tmp();
    const a = await openJournalStore(dir);
    await writeSome(a.store, 1);
    const size = statSync(join(dir, 'journal.log')).size;
    const { store: other } = await freshStore(); // fake-indexeddb too, not journaled
    await writeSome(other, 3);
    await a.flush();
    expect(statSync(join(dir, 'journal.log')).size).toBe(size);
    await a.close();
  });
});
