// runJob with overlapCommits (the elicitation jobs' mode, issue #5): step k+1 really starts before step k's commit
// has finished (and never without it in the plain mode); commits stay in cursor order; random interruptions (abort,
// throwing steps, a crash inside the commit) still leave every record exactly once; a step started ahead whose
// predecessor fails to commit is aborted and settled before runJob returns; a step that completes after an abort
// is committed, one that honours the abort is not.
import { afterEach, describe, expect, it } from 'vitest';
import { runJob, type JobStep } from '../../src/store/jobs.ts';
import { openStore, type DistillStore } from '../../src/store/store.ts';
import type { Job } from '../../src/store/schema.ts';
import { Rng } from '../../src/util/rng.ts';
import { failPutAt, freshStore, rec } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => { restore?.(); restore = undefined; });

const N = 30;

/** From cursor c, answers prompts c .. c+b-1 (b = 1..3 depending on c), after `delayMs`. */
function countingStep(calls: number[], hook: (call: number, signal: AbortSignal | undefined) => void | Promise<void> = () => {}, delayMs = 0): JobStep {
  return async (cursor, { signal }) => {
    const c = (cursor as number | null) ?? 0;
    calls.push(c);
    await hook(calls.length, signal);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const b = Math.min(1 + (c % 3), N - c);
    return { records: Array.from({ length: b }, (_, i) => rec(`p${c + i}`, `prompt ${c + i}`)), nextCursor: c + b, done: c + b >= N, total: N };
  };
}

async function storedKeys(store: DistillStore, datasetId: string): Promise<string[]> {
  return (await store.getRecords(datasetId, { limit: 1000 })).map((r) => r.key).sort();
}
const keysBefore = (cursor: number) => Array.from({ length: cursor }, (_, i) => `p${i}`).sort();

/** Logs step starts and commit starts/ends of a store in order. */
function traceCommits(store: DistillStore, log: string[]): void {
  const updateJob = store.updateJob.bind(store);
  store.updateJob = async (id, patch, commit, opts) => {
    const tag = JSON.stringify(patch.cursor ?? null);
    log.push(`commit-start ${tag}`);
    try {
      return await updateJob(id, patch, commit, opts);
    } finally {
      log.push(`commit-end ${tag}`);
    }
  };
}

describe('runJob overlapCommits', () => {
  for (const overlap of [true, false]) {
    it(`${overlap ? 'starts the next step during the commit' : 'without overlap, starts no step before the commit ends'}`, async () => {
      const { store } = await freshStore();
      const ds = await store.createDataset({ name: 'd' });
      const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
      const log: string[] = [];
      traceCommits(store, log);
      const calls: number[] = [];
      const end = await runJob(store, job.id, countingStep(calls, (_n) => { log.push(`step ${calls.at(-1)}`); }, 2), { overlapCommits: overlap });
      expect(end.status).toBe('done');
      expect(await storedKeys(store, ds.id)).toEqual(keysBefore(N));
      // Step from cursor c starts after the commit that stored cursor c began (it needs that cursor), and — with
      // overlap — before that commit ended; without overlap, after it ended.
      let overlapped = 0;
      for (const c of calls.slice(1)) {
        const stepAt = log.indexOf(`step ${c}`);
        const startAt = log.indexOf(`commit-start ${c}`);
        const endAt = log.indexOf(`commit-end ${c}`);
        expect(startAt).toBeGreaterThanOrEqual(0);
        if (overlap) {
          expect(stepAt).toBeLessThan(endAt);
          if (stepAt < endAt) overlapped++;
        } else {
          expect(stepAt).toBeGreaterThan(endAt);
        }
      }
      if (overlap) expect(overlapped).toBe(calls.length - 1);
      // Commits in cursor order, each once.
      const committed = log.filter((l) => l.startsWith('commit-end ')).map((l) => JSON.parse(l.slice(11)) as number | null).filter((c) => typeof c === 'number');
      expect(committed).toEqual([...committed].sort((a, b) => a! - b!));
      expect(new Set(committed).size).toBe(committed.length);
    });
  }

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`resumes exactly once after random interruptions (seed ${seed})`, async () => {
      const rng = new Rng(seed);
      const { store: first, factory, name } = await freshStore();
      const ds = await first.createDataset({ name: 'd' });
      const job = await first.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
      let store: DistillStore = first;
      const calls: number[] = [];
      let final: Job | undefined;
      let interruptions = 0;
      for (let run = 0; run < 50 && final?.status !== 'done'; run++) {
        const controller = new AbortController();
        const mode = run < 8 ? (['abort', 'abort-throw', 'throw', 'commit-crash'] as const)[rng.int(4)]! : 'none';
        const at = calls.length + 1 + rng.int(4);
        const step = countingStep(calls, (call) => {
          if (call !== at) return;
          if (mode === 'abort') controller.abort();
          if (mode === 'abort-throw') { controller.abort(); throw new DOMException('aborted', 'AbortError'); }
          if (mode === 'throw') throw new Error('teacher returned HTTP 500');
          if (mode === 'commit-crash') restore = failPutAt(1 + rng.int(5), () => new Error('tab killed mid-commit'));
        }, rng.int(3));
        final = await runJob(store, job.id, step, { signal: controller.signal, overlapCommits: true });
        restore?.();
        restore = undefined;
        if (final.status !== 'done') {
          interruptions++;
          expect(final.status).toBe(mode === 'throw' || mode === 'commit-crash' ? 'failed' : 'paused');
        }
        // The invariant that makes resume exactly-once: the stored records are exactly those before the cursor.
        const cursor = ((await store.getJob(job.id))!.cursor as number | null) ?? 0;
        expect(await storedKeys(store, ds.id)).toEqual(keysBefore(cursor));
        store.close();
        store = await openStore(name, factory);
      }
      expect(final?.status).toBe('done');
      expect(interruptions).toBeGreaterThan(0);
      expect(await storedKeys(store, ds.id)).toEqual(keysBefore(N));
      expect(final!.progress.done).toBe(N);
      expect((await store.counts(ds.id)).records).toBe(N);
    });
  }

  it('aborts and settles the step started ahead when the commit before it fails', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
    let aheadAborted = false;
    let aheadSettled = false;
    const calls: number[] = [];
    const step = countingStep(calls, async (call, signal) => {
      if (call === 3) {
        // Step 3 starts just before step 2's commit, makes that commit fail, and waits on its signal.
        restore = failPutAt(1, () => new Error('disk gone'));
        try {
          await new Promise<void>((_, reject) => signal!.addEventListener('abort', () => { aheadAborted = true; reject(new DOMException('aborted', 'AbortError')); }, { once: true }));
        } finally {
          await new Promise((r) => setTimeout(r, 30)); // slow to wind down, like a request being cancelled
          aheadSettled = true;
        }
      }
    });
    const end = await runJob(store, job.id, step, { overlapCommits: true });
    expect(aheadSettled).toBe(true); // settled before runJob returned
    expect(aheadAborted).toBe(true);
    expect(end.status).toBe('failed');
    expect(end.error).toMatch(/disk gone/);
    expect(calls.length).toBe(3);
    expect(await storedKeys(store, ds.id)).toEqual(keysBefore(end.cursor as number));
    expect(end.cursor).toBe(calls[1]); // step 1's commit only
  });

  it('after an abort, commits a step that completed anyway, drops one that honoured it', async () => {
    for (const honour of [false, true]) {
      const { store } = await freshStore();
      const ds = await store.createDataset({ name: 'd' });
      const job = await store.createJob({ kind: 'elicit', datasetId: ds.id, config: {} });
      const ctl = new AbortController();
      const calls: number[] = [];
      const step = countingStep(calls, async (call, signal) => {
        if (call !== 2) return;
        ctl.abort(); // pause pressed while step 2 runs (started ahead of step 1's commit)
        if (honour) { expect(signal!.aborted).toBe(true); throw new DOMException('aborted', 'AbortError'); }
      });
      const end = await runJob(store, job.id, step, { signal: ctl.signal, overlapCommits: true });
      expect(end.status).toBe('paused');
      expect(calls.length).toBe(2);
      const cursor = end.cursor as number;
      expect(cursor).toBe(honour ? calls[1] : calls[1]! + Math.min(1 + (calls[1]! % 3), N - calls[1]!));
      expect(await storedKeys(store, ds.id)).toEqual(keysBefore(cursor));
    }
  });
});
