// The windowed job runner (issue #12): a job is `count` independent items (labeling's (input, answer) pairs, a
// curation leaf, an evol input, ...). Up to `width` items run at all times — when one finishes the next starts at
// once, so a slow or hung item holds its own slot and never the others (there is no step to wait for). Finished
// items are committed with the cursor in ONE durable transaction (DistillStore.updateJob), exactly once:
//   - by size: as soon as `batch` finished items are ready in order (a run from the lowest uncommitted item);
//   - by time: when the oldest finished, uncommitted item has waited `flushMs` (then out of order too: items
//     behind a hung one are made durable instead of waiting for it);
//   - at the end, on abort and on failure: everything that finished (answers already paid for are kept).
// Commits run one at a time while the window keeps running (the store's write time hides behind the requests).
// The cursor records which items are committed: `items` = the committed prefix (every item below it), `ahead` =
// sorted, disjoint [from, to) ranges committed beyond it (a hole is an item that was still running); the other
// cursor keys are the strategy's state (counters, feature's token table), updated by `build` at each commit.
// A crash or an abort at any instant resumes from the stored cursor: a committed item is never run again and an
// uncommitted one always is, so every record is written once (its idempotency key guards it as well).
// The tail (with `hedge`): once no new item is left to start, an item that has reported trouble (a failed try it is
// now retrying, a missed deadline) gets a second attempt in the slot the window has free; the first to finish is
// kept, the other aborted (MapReduce's backup tasks): the job no longer waits out its one unlucky straggler's
// retries and backoffs one after the other. An item that never failed is never duplicated.
// Abort → 'paused', an item's error → 'failed' (after committing what finished), all items committed → 'done'.
import { JobConflictError, NotFoundError } from './errors.ts';
import { newId, type Job, type Json, type PairInput, type RecordInput } from './schema.ts';
import type { DistillStore } from './store.ts';
import { progressAfterCommit, type RunJobOptions } from './jobs.ts';

/** What a batch of finished items commits (with the cursor). */
export interface WindowCommit {
  records: RecordInput[];
  pairs?: PairInput[];
  /** Units of work done (progress.done grows by this). */
  units: number;
}

export interface WindowPlan<R> {
  /** Items 0..count-1 make up the job. */
  count: number;
  /** progress.total (units of work). */
  total: number;
  /** Items running at once (≥ 1). */
  width: number;
  /** Commit as soon as this many finished items are ready in order (≥ 1). */
  batch: number;
  /** ... or when the oldest finished, uncommitted item has waited this long (ms). */
  flushMs: number;
  /**
   * Runs item `index` (its retries included). A rejection ends the job: 'paused' after an abort, else 'failed'.
   * `trouble()` says the item failed a try and is retrying it (it may then be hedged, see the banner).
   */
  run(index: number, signal: AbortSignal, trouble: () => void): Promise<R>;
  /**
   * What finished items (ascending index) commit; updates `state` (the cursor's strategy keys) in place. Called once
   * per commit attempt, in commit order, on a copy of the state: a commit that fails leaves the state as it was.
   */
  build(items: { index: number; result: R }[], state: Record<string, Json>): WindowCommit;
  /** The committed prefix of a cursor written before windows existed (its keys may be deleted from `state`). */
  legacyPrefix?(state: Record<string, Json>): number;
  /** Give troubled stragglers of the tail a second attempt (see the banner); `run` must then be safe to call twice. */
  hedge?: boolean;
}

/** Which items are committed: all below `prefix`, and those in the sorted, disjoint [from, to) ranges of `ahead`. */
export interface WindowPosition {
  prefix: number;
  ahead: [number, number][];
}

/** The smallest index ≥ i that is not committed. */
export function nextOpen(pos: WindowPosition, i: number): number {
  let j = Math.max(i, pos.prefix);
  for (const [a, b] of pos.ahead) {
    if (j < a) break;
    if (j < b) j = b;
  }
  return j;
}

/** `pos` with `indices` (uncommitted items) committed too, the prefix advanced over every range it reaches. */
export function commitItems(pos: WindowPosition, indices: readonly number[]): WindowPosition {
  const ranges: [number, number][] = [...pos.ahead.map(([a, b]) => [a, b] as [number, number]), ...indices.map((i) => [i, i + 1] as [number, number])];
  ranges.sort((x, y) => x[0] - y[0]);
  let prefix = pos.prefix;
  const ahead: [number, number][] = [];
  for (const [a, b] of ranges) {
    if (a <= prefix) { prefix = Math.max(prefix, b); continue; }
    const last = ahead[ahead.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else ahead.push([a, b]);
  }
  return { prefix, ahead };
}

/** Splits a stored cursor into the window's position and the strategy's state (null = the start). */
export function readWindowCursor(cursor: Json, count: number, legacyPrefix?: (state: Record<string, Json>) => number): WindowPosition & { state: Record<string, Json> } {
  if (cursor !== null && (typeof cursor !== 'object' || Array.isArray(cursor))) throw new Error('window job: the stored cursor is not an object (was the job created by another version?)');
  const state: Record<string, Json> = { ...(cursor ?? {}) };
  const { items, ahead } = state;
  delete state.items;
  delete state.ahead;
  if (items === undefined) return { prefix: Math.min(count, legacyPrefix?.(state) ?? 0), ahead: [], state };
  if (typeof items !== 'number' || !Number.isInteger(items) || items < 0) throw new Error(`window job: cursor.items must be an integer ≥ 0, got ${JSON.stringify(items)}`);
  const ranges: [number, number][] = [];
  let last = items;
  for (const r of Array.isArray(ahead) ? ahead : ahead === undefined ? [] : [null]) {
    const ok = Array.isArray(r) && r.length === 2 && r.every((x) => typeof x === 'number' && Number.isInteger(x)) && (r[0] as number) > last && (r[1] as number) > (r[0] as number);
    if (!ok) throw new Error(`window job: cursor.ahead must be sorted, disjoint [from, to) ranges above cursor.items, got ${JSON.stringify(ahead)}`);
    ranges.push([r[0] as number, r[1] as number]);
    last = r[1] as number;
  }
  return { prefix: items, ahead: ranges, state };
}

/** The stored cursor of a position and state. */
export function windowCursor(pos: WindowPosition, state: Record<string, Json>): Json {
  return { ...state, items: pos.prefix, ...(pos.ahead.length > 0 ? { ahead: pos.ahead } : {}) };
}

function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (e as { name?: string } | null)?.name === 'AbortError';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Runs (or resumes) job `jobId` as a window over `plan`'s items until every item is committed ('done'), the
 * signal aborts ('paused') or an item or a commit fails ('failed'). Resolves with the job as stored at the end; a
 * job already 'done' is returned as is. Owns the job through a fresh runId, like runJob: if another runner takes
 * the job over, this one stops without committing again.
 */
export async function runWindowJob<R>(store: DistillStore, jobId: string, plan: WindowPlan<R>, options: RunJobOptions = {}): Promise<Job> {
  const { signal, onProgress } = options;
  const now = options.now ?? Date.now;
  const clock = (): number => performance.now(); // flush timing: real time, whatever `now` the caller injects
  const width = Math.max(1, Math.floor(plan.width));
  const batch = Math.max(1, Math.floor(plan.batch));
  let job = await store.getJob(jobId);
  if (!job) throw new NotFoundError(`runWindowJob: no job "${jobId}"`);
  if (job.status === 'done') return job;
  const read = readWindowCursor(job.cursor, plan.count, plan.legacyPrefix);
  let pos: WindowPosition = { prefix: read.prefix, ahead: read.ahead };
  let state = read.state;

  const runId = newId();
  const t0 = now();
  ({ job } = await store.updateJob(jobId, { status: 'running', runId, error: null, progress: { startedAt: job.progress.startedAt || t0 } }));
  const doneAtStart = job.progress.done;
  const stop = async (patch: { status: 'paused' | 'failed'; error?: string }): Promise<Job> => {
    try {
      return (await store.updateJob(jobId, { ...patch, runId: null }, {}, { runId })).job;
    } catch (e) {
      if (e instanceof JobConflictError) return (await store.getJob(jobId))!;
      throw e;
    }
  };

  // `ctl` stops the window (the caller's abort, an item's failure, a failed commit) and aborts every item's own
  // controller: each item gets a signal of its own, so wide windows add no listeners to one shared signal.
  const ctl = new AbortController();
  const itemCtls = new Set<AbortController>();
  ctl.signal.addEventListener('abort', () => { for (const c of itemCtls) c.abort(ctl.signal.reason); }, { once: true });
  let wakeUp: (() => void) | null = null;
  const wake = (): void => { const w = wakeUp; wakeUp = null; w?.(); };
  const onAbort = (): void => { ctl.abort(signal?.reason); wake(); };
  if (signal?.aborted) ctl.abort(signal.reason);
  else signal?.addEventListener('abort', onAbort, { once: true });

  // An item runs as one attempt, or two once hedged; `attempts` counts them all (the window's width).
  interface Attempt { ctl: AbortController; settled: boolean; done: Promise<void> }
  interface Running { started: number; attempts: Attempt[]; troubled: boolean; won: boolean }
  const running = new Map<number, Running>();
  let attempts = 0;
  const finished = new Map<number, { result: R; at: number }>();
  let failure: { error: unknown } | null = null;
  let lost: { conflict: boolean; error: unknown } | null = null; // a commit that did not land: stop at once
  let next = nextOpen(pos, 0);

  const launch = (i: number, r: Running): void => {
    const ictl = new AbortController();
    itemCtls.add(ictl);
    attempts++;
    let p: Promise<R>;
    const trouble = (): void => {
      if (r.troubled) return;
      r.troubled = true;
      queueMicrotask(startItems); // not from inside the item's own call stack
    };
    try { p = plan.run(i, ictl.signal, trouble); } catch (e) { p = Promise.reject(e); }
    const a: Attempt = { ctl: ictl, settled: false, done: Promise.resolve() };
    a.done = p.then(
      (result) => {
        if (r.won) return; // its twin was first (and may be committed already)
        r.won = true;
        finished.set(i, { result, at: clock() });
        for (const o of r.attempts) if (o !== a) o.ctl.abort();
      },
      (error: unknown) => {
        const twinRuns = r.attempts.some((o) => o !== a && !o.settled);
        if (!twinRuns && !r.won && !failure && !isAbort(error, ictl.signal)) { failure = { error }; ctl.abort(); }
      },
    ).finally(() => {
      a.settled = true;
      itemCtls.delete(ictl);
      attempts--;
      if (r.attempts.every((o) => o.settled)) running.delete(i);
      startItems();
      wake();
    });
    r.attempts.push(a);
  };

  /** The oldest troubled single-attempt item, once no new item is left to start (null: none, or no hedging). */
  const straggler = (): { i: number; r: Running } | null => {
    if (!plan.hedge || nextOpen(pos, next) < plan.count) return null;
    let best: { i: number; r: Running } | null = null;
    for (const [i, r] of running) {
      if (!r.troubled || r.attempts.length !== 1 || r.won) continue;
      if (!best || r.started < best.r.started) best = { i, r };
    }
    return best;
  };

  const startItems = (): void => {
    while (!ctl.signal.aborted && !lost && attempts < width) {
      next = nextOpen(pos, next);
      if (next >= plan.count) {
        const s = straggler();
        if (!s) return;
        launch(s.i, s.r);
        continue;
      }
      const i = next++;
      const r: Running = { started: clock(), attempts: [], troubled: false, won: false };
      running.set(i, r);
      launch(i, r);
    }
  };

  /** The items to commit now, or null to wait. */
  const pick = (): number[] | null => {
    if (finished.size === 0) return null;
    const inOrder: number[] = [];
    for (let i = nextOpen(pos, 0); finished.has(i) && inOrder.length < batch; i = nextOpen(pos, i + 1)) inOrder.push(i);
    if (inOrder.length >= batch) return inOrder;
    const ending = running.size === 0 && (ctl.signal.aborted || nextOpen(pos, next) >= plan.count);
    let oldest = Infinity;
    for (const f of finished.values()) oldest = Math.min(oldest, f.at);
    if (!ending && clock() - oldest < plan.flushMs) return null;
    return [...finished.keys()].sort((a, b) => a - b).slice(0, batch);
  };

  const commit = async (indices: number[]): Promise<void> => {
    const nextState = structuredClone(state);
    let built: WindowCommit;
    try {
      built = plan.build(indices.map((index) => ({ index, result: finished.get(index)!.result })), nextState);
    } catch (error) {
      failure ??= { error };
      ctl.abort();
      for (const i of indices) finished.delete(i);
      return;
    }
    const nextPos = commitItems(pos, indices);
    const isDone = nextPos.prefix >= plan.count;
    const progress = progressAfterCommit(
      job!.progress,
      { units: built.units, total: plan.total, done: isDone, records: built.records, pairs: built.pairs ?? [] },
      { t0, doneAtStart, now: now() },
    );
    try {
      ({ job } = await store.updateJob(
        jobId,
        { cursor: windowCursor(nextPos, nextState), status: isDone ? 'done' : 'running', progress, ...(isDone ? { runId: null } : {}) },
        { records: built.records, pairs: built.pairs ?? [] },
        { runId },
      ));
    } catch (error) {
      lost = { conflict: error instanceof JobConflictError, error };
      ctl.abort();
      return;
    }
    for (const i of indices) finished.delete(i);
    pos = nextPos;
    state = nextState;
    onProgress?.(job!);
  };

  try {
    startItems();
    for (;;) {
      if (lost) break;
      const take = pick();
      if (take) { await commit(take); continue; }
      if (running.size === 0 && (ctl.signal.aborted || nextOpen(pos, next) >= plan.count)) break;
      let wait = Infinity;
      for (const f of finished.values()) wait = Math.min(wait, f.at + plan.flushMs - clock());
      await new Promise<void>((resolve) => {
        const t = wait === Infinity ? undefined : setTimeout(() => { wakeUp = null; resolve(); }, Math.max(0, wait));
        wakeUp = () => { clearTimeout(t); resolve(); };
      });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    ctl.abort(); // nothing outlives this call: stop and settle whatever still runs (only after a lost commit)
    await Promise.all([...running.values()].flatMap((r) => r.attempts.map((a) => a.done)));
  }
  const l = lost as { conflict: boolean; error: unknown } | null;
  if (l?.conflict) return (await store.getJob(jobId))!;
  if (l) return stop({ status: 'failed', error: errorMessage(l.error) });
  const f = failure as { error: unknown } | null;
  if (f) return stop({ status: 'failed', error: errorMessage(f.error) });
  if (pos.prefix >= plan.count) {
    if (job.status === 'done') return job;
    const total = Math.max(plan.total, job.progress.done);
    return (await store.updateJob(jobId, { status: 'done', runId: null, progress: { total, etaMs: 0 } }, {}, { runId })).job;
  }
  return stop({ status: 'paused' });
}
