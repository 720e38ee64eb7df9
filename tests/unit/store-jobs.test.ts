// The resumable job runner: interrupted at random steps (abort, a throwing step, a crash inside the commit
// transaction) and resumed with a fresh store handle on the same IndexedDB, every record lands exactly once and
// the cursor only moves forward. Also: ETA from the rate so far, 'done' jobs, and two runners on one job.
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type DistillStore } from '../../src/store/store.ts';
import { runJob, type JobStep } from '../../src/store/jobs.ts';
import { Rng } from '../../src/util/rng.ts';
import type { Job } from '../../src/store/schema.ts';
import { failPutAt, freshStore, rec } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => { restore?.(); restore = undefined; });

const N = 40;
/** A deterministic "teacher": from cursor c, answers prompts c .. c+b-1 (b = 1..3 depending on c). */
function teacherStep(calls: number[], hook: (call: number) => void = () => {}): JobStep {
  return async (cursor) => {
    const c = cursor as number | null ?? 0;
    calls.push(c);
    hook(calls.length);
    const b = Math.min(1 + (c % 3), N - c);
    const records = Array.from({ length: b }, (_, i) => rec(`p${c + i}`, `prompt ${c + i}`));
    return { records, nextCursor: c + b, done: c + b >= N, total: N };
  };
}

describe('runJob', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) {
    it(`resumes exactly once after random interruptions (seed ${seed})`, async () => {
      const rng = new Rng(seed);
      const { store: first, factory, name } = await freshStore();
      const ds = await first.createDataset({ name: 'd' });
      const job = await first.createJob({ kind: 'elicit', datasetId: ds.id, config: { prompts: N } });
      let store: DistillStore = first;
      const committed: number[] = [];
      const calls: number[] = [];
      let final: Job | undefined;
      let interruptions = 0;
      for (let run = 0; run < 50 && final?.status !== 'done'; run++) {
        const controller = new AbortController();
        // Interrupt the first 8 runs in one of four ways (or not, when the job ends first), then let it finish.
        const mode = run < 8 ? (['abort', 'abort-throw', 'throw', 'commit-crash'] as const)[rng.int(4)]! : 'none';
        const at = calls.length + 1 + rng.int(4); // the step call at which to interrupt
        const step = teacherStep(calls, (call) => {
          if (call !== at) return;
          if (mode === 'abort') controller.abort(); // pause pressed during the step: it finishes, is committed, then pause
          if (mode === 'abort-throw') { controller.abort(); throw new DOMException('aborted', 'AbortError'); }
          if (mode === 'throw') throw new Error('teacher returned HTTP 500');
          if (mode === 'commit-crash') restore = failPutAt(1 + rng.int(5), () => new Error('tab killed mid-commit'));
        });
        const before = (await store.getJob(job.id))!;
        final = await runJob(store, job.id, step, { signal: controller.signal, onProgress: (j) => committed.push(j.cursor as number) });
        restore?.();
        restore = undefined;
        if (final.status !== 'done') {
          interruptions++;
          expect(final.status).toBe(mode === 'throw' || mode === 'commit-crash' ? 'failed' : 'paused');
          if (final.status === 'failed') expect(final.error).toMatch(mode === 'throw' ? /HTTP 500/ : /tab killed mid-commit/);
        }
        if (before.cursor !== null && calls.length > 0) expect(calls.at(-1)! >= (before.cursor as number)).toBe(true);
        // The invariant that makes resume exactly-once: the stored records are exactly those before the cursor.
        const cursor = ((await store.getJob(job.id))!.cursor as number | null) ?? 0;
        const stored = (await store.getRecords(ds.id, { limit: 1000 })).map((r) => r.key).sort();
        expect(stored).toEqual(Array.from({ length: cursor }, (_, i) => `p${i}`).sort());
        // A fresh handle on the same database, as after a reload.
        store.close();
        store = await openStore(name, factory);
      }
      expect(final?.status).toBe('done');
      expect(interruptions).toBeGreaterThan(0);
      for (let i = 1; i < committed.length; i++) expect(committed[i]!).toBeGreaterThan(committed[i - 1]!);
      const keys = (await store.getRecords(ds.id, { limit: 1000 })).map((r) => r.key);
      expect(keys.length).toBe(N);
      expect(new Set(keys).size).toBe(N);
      expect(new Set(keys)).toEqual(new Set(Array.from({ length: N }, (_, i) => `p${i}`)));
      // progress.done counts every committed record: had a step been committed twice it would exceed N.
      expect(final!.progress.done).toBe(N);
      expect(final!.cursor).toBe(N);
      expect(final!.runId).toBeUndefined();
      expect((await store.counts(ds.id)).records).toBe(N);
    });
  }

  it('computes the ETA from the rate so far and tracks tokens and cost', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {}, total: 10 });
    let clock = 5000;
    const etas: (number | undefined)[] = [];
    const step: JobStep = async (cursor) => {
      const c = (cursor as number | null) ?? 0;
      clock += 100; // each step takes 100 ms
      return { records: [rec(`k${c}`, `q${c}`)], nextCursor: c + 1, done: c + 1 === 10 };
    };
    const end = await runJob(store, job.id, step, { now: () => clock, onProgress: (j) => etas.push(j.progress.etaMs) });
    expect(etas).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(end.progress).toMatchObject({ done: 10, total: 10, tokens: 10 * 30, startedAt: 5000 });
    expect(end.progress.cost).toBeCloseTo(0.01, 10);
    // A finished job is not run again.
    let called = false;
    const again = await runJob(store, job.id, async () => { called = true; return { records: [], nextCursor: 0, done: true }; });
    expect(called).toBe(false);
    expect(again.status).toBe('done');
  });

  it('clears the error on resume and pauses before the first step when already aborted', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
    const failed = await runJob(store, job.id, async () => { throw new TypeError('bad teacher reply'); });
    expect(failed).toMatchObject({ status: 'failed', error: 'TypeError: bad teacher reply' });
    const c = new AbortController();
    c.abort();
    const paused = await runJob(store, job.id, teacherStep([]), { signal: c.signal });
    expect(paused.status).toBe('paused');
    expect(paused.error).toBeUndefined();
    expect((await store.counts(ds.id)).records).toBe(0);
  });

  it('a runner whose job was taken over stops without committing', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let entered!: () => void;
    const inStep = new Promise<void>((r) => { entered = r; });
    const slow: JobStep = async (cursor) => {
      entered();
      await gate; // tab 1 hangs in its first step...
      return teacherStep([])(cursor, { signal: undefined, job: (await store.getJob(job.id))! });
    };
    const a = runJob(store, job.id, slow);
    await inStep;
    const b = await runJob(store, job.id, teacherStep([])); // ...while tab 2 resumes the job and finishes it
    release();
    const aEnd = await a;
    expect(b.status).toBe('done');
    expect(aEnd.status).toBe('done');
    expect((await store.counts(ds.id)).records).toBe(N);
    expect((await store.getJob(job.id))!.progress.done).toBe(N);
  });
});
