// The windowed job runner (src/store/window.ts, issue #12): the committed-items cursor (prefix + ranges ahead);
// `width` items always running, a hung item holding only its own slot while the others finish and are committed
// (out of order after flushMs); commits of at most `batch` items, in order when nothing is missing; abort commits
// what finished and pauses; a failing item fails the job after committing what finished; random interruptions
// (aborts, throwing items, crashes inside the commit, fresh store handles) resume with every record exactly once
// and the stored records always exactly the items the cursor says are committed; a cursor of the step version
// resumes from its prefix; a runner whose job was taken over stops.
import { afterEach, describe, expect, it } from 'vitest';
import { JobConflictError } from '../../src/store/errors.ts';
import { openStore, type DistillStore } from '../../src/store/store.ts';
import type { Job, Json } from '../../src/store/schema.ts';
import { commitItems, nextOpen, readWindowCursor, runWindowJob, type WindowPlan } from '../../src/store/window.ts';
import { Rng } from '../../src/util/rng.ts';
import { failPutAt, freshStore, rec } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => { restore?.(); restore = undefined; });

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
});

interface Trace { started: number[]; maxRunning: number; running: number; commits: number[][] }

/** A plan of `count` items; item i sleeps delay(i) ms (honouring abort) and yields one record `p<i>`. */
function plan(count: number, o: { width: number; batch: number; flushMs?: number; delay?: (i: number, signal: AbortSignal) => Promise<void> | number }, trace: Trace): WindowPlan<string> {
  return {
    count,
    total: count,
    width: o.width,
    batch: o.batch,
    flushMs: o.flushMs ?? 10_000,
    run: async (i, signal) => {
      trace.started.push(i);
      trace.running++;
      trace.maxRunning = Math.max(trace.maxRunning, trace.running);
      try {
        const d = o.delay?.(i, signal) ?? 0;
        if (typeof d === 'number') await sleep(d, signal);
        else await d;
        return `prompt ${i}`;
      } finally {
        trace.running--;
      }
    },
    build: (items, state) => {
      trace.commits.push(items.map((x) => x.index));
      state.builds = ((state.builds as number | undefined) ?? 0) + 1;
      return { records: items.map(({ index, result }) => rec(`p${index}`, result)), units: items.length };
    },
  };
}
const newTrace = (): Trace => ({ started: [], maxRunning: 0, running: 0, commits: [] });

async function storedKeys(store: DistillStore, datasetId: string): Promise<string[]> {
  return (await store.getRecords(datasetId, { limit: 10_000 })).map((r) => r.key).sort();
}
/** The keys the cursor says are committed. */
function committedKeys(cursor: Json, count: number): string[] {
  const pos = readWindowCursor(cursor, count);
  const out: string[] = [];
  for (let i = 0; i < count; i++) if (nextOpen(pos, i) !== i) out.push(`p${i}`);
  return out.sort();
}
async function newJob(cursor: Json = null) {
  const f = await freshStore();
  const ds = await f.store.createDataset({ name: 'w' });
  let job = await f.store.createJob({ kind: 'elicit:test', datasetId: ds.id, config: {} });
  if (cursor !== null) job = (await f.store.updateJob(job.id, { cursor })).job;
  return { ...f, ds, job };
}

describe('window cursor', () => {
  it('commits items out of order into a prefix and ranges ahead; nextOpen skips committed items', () => {
    let pos = { prefix: 0, ahead: [] as [number, number][] };
    pos = commitItems(pos, [3, 4, 7]);
    expect(pos).toEqual({ prefix: 0, ahead: [[3, 5], [7, 8]] });
    expect([0, 3, 5, 7, 8].map((i) => nextOpen(pos, i))).toEqual([0, 5, 5, 8, 8]);
    pos = commitItems(pos, [0, 1, 2, 5]);
    expect(pos).toEqual({ prefix: 6, ahead: [[7, 8]] });
    pos = commitItems(pos, [6]);
    expect(pos).toEqual({ prefix: 8, ahead: [] });
  });

  it('reads stored cursors, a step-version cursor through legacyPrefix, and refuses malformed ones', () => {
    expect(readWindowCursor({ items: 4, ahead: [[6, 9]], stats: { a: 1 } }, 10)).toEqual({ prefix: 4, ahead: [[6, 9]], state: { stats: { a: 1 } } });
    expect(readWindowCursor(null, 10)).toEqual({ prefix: 0, ahead: [], state: {} });
    expect(readWindowCursor({ next: 3, stats: {} }, 10, (s) => { const n = s.next as number; delete s.next; return n * 2; })).toEqual({ prefix: 6, ahead: [], state: { stats: {} } });
    expect(() => readWindowCursor({ items: 4, ahead: [[3, 5]] }, 10)).toThrow(/sorted, disjoint/);
    expect(() => readWindowCursor({ items: 4, ahead: [[6, 9], [8, 12]] }, 10)).toThrow(/sorted, disjoint/);
    expect(() => readWindowCursor({ items: -1 }, 10)).toThrow(/cursor.items/);
    expect(() => readWindowCursor([1, 2] as Json, 10)).toThrow(/not an object/);
  });
});

describe('runWindowJob', () => {
  it('keeps `width` items running; commits at most `batch` items, in order, once each', async () => {
    const { store, ds, job } = await newJob();
    const trace = newTrace();
    const rng = new Rng(5);
    const delays = Array.from({ length: 40 }, () => 1 + rng.int(8));
    const end = await runWindowJob(store, job.id, plan(40, { width: 6, batch: 5, delay: (i) => delays[i]! }, trace));
    expect(end.status).toBe('done');
    expect(end.progress).toMatchObject({ done: 40, total: 40 });
    expect(trace.maxRunning).toBe(6);
    expect(trace.started).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(trace.commits.every((c) => c.length <= 5)).toBe(true);
    expect(trace.commits.flat()).toEqual(Array.from({ length: 40 }, (_, i) => i)); // in order: nothing hung
    expect(await storedKeys(store, ds.id)).toEqual(committedKeys(end.cursor, 40));
    expect(end.cursor).toEqual({ items: 40, builds: trace.commits.length });
  });

  it('a hung item holds one slot: the others run, finish and are committed (out of order after flushMs)', async () => {
    const { store, ds, job } = await newJob();
    const trace = newTrace();
    let releaseHung!: () => void;
    const hung = new Promise<void>((r) => { releaseHung = r; });
    const progress: Job[] = [];
    const run = runWindowJob(store, job.id, plan(30, { width: 4, batch: 4, flushMs: 40, delay: (i) => (i === 2 ? hung : 3) }, trace), { onProgress: (j) => progress.push(j) });
    // Wait until every other item is committed while item 2 still hangs.
    for (let t = 0; t < 400 && (progress.at(-1)?.progress.done ?? 0) < 29; t++) await sleep(10);
    expect(progress.at(-1)!.progress.done).toBe(29);
    const mid = (await store.getJob(job.id))!;
    expect(mid.status).toBe('running');
    expect(mid.cursor).toMatchObject({ items: 2, ahead: [[3, 30]] });
    expect(await storedKeys(store, ds.id)).toEqual(committedKeys(mid.cursor, 30));
    expect(trace.maxRunning).toBe(4);
    releaseHung();
    const end = await run;
    expect(end.status).toBe('done');
    expect(end.cursor).toMatchObject({ items: 30 });
    expect(end.cursor).not.toHaveProperty('ahead');
    expect(await storedKeys(store, ds.id)).toEqual(Array.from({ length: 30 }, (_, i) => `p${i}`).sort());
    expect(trace.commits.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('abort: what finished is committed, what ran is aborted and redone on resume; status paused', async () => {
    const { store, ds, job } = await newJob();
    const trace = newTrace();
    const ctl = new AbortController();
    const end = await runWindowJob(store, job.id, plan(20, {
      width: 4, batch: 100, delay: (i) => { if (i === 9) setTimeout(() => ctl.abort(), 1); return i >= 9 ? 50 : 1; },
    }, trace), { signal: ctl.signal });
    expect(end.status).toBe('paused');
    const cursor = end.cursor;
    expect(committedKeys(cursor, 20).length).toBeGreaterThanOrEqual(8);
    expect(await storedKeys(store, ds.id)).toEqual(committedKeys(cursor, 20));
    const again = newTrace();
    const done = await runWindowJob(store, job.id, plan(20, { width: 4, batch: 100 }, again));
    expect(done.status).toBe('done');
    expect(again.started.every((i) => !committedKeys(cursor, 20).includes(`p${i}`))).toBe(true);
    expect(await storedKeys(store, ds.id)).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`).sort());
    expect(done.progress.done).toBe(20);
  });

  it('an item that throws fails the job with its message after committing what finished', async () => {
    const { store, ds, job } = await newJob();
    const trace = newTrace();
    const p = plan(12, { width: 3, batch: 100, delay: (i) => (i === 5 ? sleep(15).then(() => { throw new Error('teacher said 404'); }) : 2) }, trace);
    const end = await runWindowJob(store, job.id, p);
    expect(end.status).toBe('failed');
    expect(end.error).toBe('Error: teacher said 404');
    expect(end.runId).toBeUndefined();
    expect(committedKeys(end.cursor, 12)).not.toContain('p5');
    expect(committedKeys(end.cursor, 12)).toEqual(expect.arrayContaining(['p0', 'p1', 'p2', 'p3', 'p4'])); // finished before the failure
    expect(await storedKeys(store, ds.id)).toEqual(committedKeys(end.cursor, 12));
    expect((await runWindowJob(store, job.id, plan(12, { width: 3, batch: 100 }, newTrace()))).status).toBe('done');
    expect(await storedKeys(store, ds.id)).toEqual(Array.from({ length: 12 }, (_, i) => `p${i}`).sort());
  });

  it('resumes a step-version cursor from its prefix; an empty job is done at once', async () => {
    const { store, ds, job } = await newJob({ next: 7, stats: { x: 1 } });
    const trace = newTrace();
    const p = { ...plan(10, { width: 2, batch: 2 }, trace), legacyPrefix: (s: Record<string, Json>) => { const n = s.next as number; delete s.next; return n; } };
    const end = await runWindowJob(store, job.id, p);
    expect(trace.started).toEqual([7, 8, 9]);
    expect(end.cursor).toEqual({ stats: { x: 1 }, items: 10, builds: 2 });
    expect(await storedKeys(store, ds.id)).toEqual(['p7', 'p8', 'p9']);
    const empty = await newJob();
    expect(await runWindowJob(empty.store, empty.job.id, plan(0, { width: 2, batch: 2 }, newTrace()))).toMatchObject({ status: 'done' });
  });

  it('stops without committing when another runner takes the job over', async () => {
    const { store, ds, job } = await newJob();
    const trace = newTrace();
    const updateJob = store.updateJob.bind(store);
    let calls = 0;
    store.updateJob = async (...a: Parameters<typeof updateJob>) => {
      if (++calls === 3) throw new JobConflictError('taken over'); // the second commit
      return updateJob(...a);
    };
    const end = await runWindowJob(store, job.id, plan(20, { width: 3, batch: 3, delay: () => 1 }, trace));
    expect(end.status).toBe('running'); // left to the other runner
    expect(await storedKeys(store, ds.id)).toEqual(committedKeys(end.cursor, 20));
    expect(committedKeys(end.cursor, 20)).toHaveLength(3);
  });

  it('hedge: a troubled straggler of the tail gets a second attempt, the first to finish is kept; others never', async () => {
    const { store, ds, job } = await newJob();
    const calls = new Map<number, number>();
    let twinAborted = false;
    const p: WindowPlan<string> = {
      count: 10, total: 10, width: 4, batch: 100, flushMs: 10_000, hedge: true,
      run: async (i, signal, trouble) => {
        const n = (calls.get(i) ?? 0) + 1;
        calls.set(i, n);
        if (i === 8 && n === 1) {
          trouble(); // failed a try; its retry hangs until aborted
          await sleep(60_000, signal).catch((e: unknown) => { twinAborted = true; throw e; });
        }
        if (i === 9) await sleep(30, signal); // slow but never in trouble: not duplicated
        return `prompt ${i}${n > 1 ? ' (twin)' : ''}`;
      },
      build: (items) => ({ records: items.map(({ index, result }) => rec(`p${index}`, result)), units: items.length }),
    };
    const t0 = performance.now();
    const end = await runWindowJob(store, job.id, p);
    expect(end.status).toBe('done');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(calls.get(8)).toBe(2);
    expect(calls.get(9)).toBe(1);
    expect(twinAborted).toBe(true);
    const recs = await store.getRecords(ds.id, { limit: 100 });
    expect(recs.map((r) => r.key).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`).sort());
    expect(recs.find((r) => r.key === 'p8')!.messages[0]!.content).toBe('prompt 8 (twin)');
    // Without hedge the same plan waits for the straggler (aborted here after 100 ms: paused, p8 not committed).
    const again = await newJob();
    calls.clear();
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const paused = await runWindowJob(again.store, again.job.id, { ...p, hedge: false }, { signal: ctl.signal });
    expect(paused.status).toBe('paused');
    expect(calls.get(8)).toBe(1);
    expect(committedKeys(paused.cursor, 10)).not.toContain('p8');
  });

  it('hedge: a twin that finishes after the item was committed (it ignored its abort) is not counted again', async () => {
    const { store, ds, job } = await newJob();
    const calls = new Map<number, number>();
    const p: WindowPlan<string> = {
      count: 6, total: 6, width: 3, batch: 1, flushMs: 10_000, hedge: true,
      run: async (i, _signal, trouble) => {
        const n = (calls.get(i) ?? 0) + 1;
        calls.set(i, n);
        if (i === 5 && n === 1) { trouble(); await sleep(80); } // deaf to its abort: ends after its twin was committed
        return `prompt ${i}`;
      },
      build: (items) => ({ records: items.map(({ index, result }) => rec(`p${index}`, result)), units: items.length }),
    };
    const end = await runWindowJob(store, job.id, p);
    expect(calls.get(5)).toBe(2);
    expect(end).toMatchObject({ status: 'done', progress: { done: 6, total: 6 } });
    expect(await storedKeys(store, ds.id)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`random interruptions resume with every record exactly once (seed ${seed})`, async () => {
      const rng = new Rng(seed);
      const N = 40;
      const { store: first, factory, name, ds, job } = await newJob();
      let store: DistillStore = first;
      let final: Job | undefined;
      let interruptions = 0;
      const delays = Array.from({ length: N }, () => rng.int(6));
      for (let run = 0; run < 60 && final?.status !== 'done'; run++) {
        const ctl = new AbortController();
        const mode = run < 10 ? (['abort', 'throw', 'commit-crash', 'hang'] as const)[rng.int(4)]! : 'none';
        const at = rng.int(N);
        let seen = 0;
        const trace = newTrace();
        const p = plan(N, {
          width: 1 + rng.int(6), batch: 1 + rng.int(5), flushMs: rng.int(20),
          delay: (i, signal) => {
            if (++seen === 1 + (at % 7)) {
              if (mode === 'abort') setTimeout(() => ctl.abort(), rng.int(5));
              if (mode === 'throw') return Promise.reject(new Error('HTTP 500'));
              if (mode === 'commit-crash') restore = failPutAt(1 + rng.int(4), () => new Error('tab killed mid-commit'));
              if (mode === 'hang') { setTimeout(() => ctl.abort(), 20); return new Promise<void>((_, rej) => signal.addEventListener('abort', () => rej(new DOMException('a', 'AbortError')))); }
            }
            return delays[i]!;
          },
        }, trace);
        final = await runWindowJob(store, job.id, p, { signal: ctl.signal });
        restore?.();
        restore = undefined;
        if (final.status !== 'done') interruptions++;
        const stored = (await store.getJob(job.id))!;
        expect(await storedKeys(store, ds.id)).toEqual(committedKeys(stored.cursor, N));
        expect(stored.progress.done).toBe(committedKeys(stored.cursor, N).length);
        store.close();
        store = await openStore(name, factory); // a fresh handle, as after a reload
      }
      expect(final?.status).toBe('done');
      expect(interruptions).toBeGreaterThan(0);
      expect(await storedKeys(store, ds.id)).toEqual(Array.from({ length: N }, (_, i) => `p${i}`).sort());
      expect((await store.counts(ds.id)).records).toBe(N);
    });
  }
});
