// The resumable job runner: loads a job, calls its `step` from the stored cursor, and commits each step's
// records together with the next cursor and progress in ONE durable transaction (DistillStore.updateJob), so a
// crash or an abort at any point resumes exactly where the last commit left off: every record written once.
// Abort → status 'paused'; an exception → 'failed' with its message; the last step → 'done'. With
// `overlapCommits`, step k+1 already runs (from step k's nextCursor) while step k's commit is written; commits stay
// in order and a step whose predecessor failed to commit is aborted and dropped, so exactly-once still holds.
import { JobConflictError, NotFoundError } from './errors.ts';
import { newId, type Job, type JobProgress, type Json, type PairInput, type RecordInput } from './schema.ts';
import type { DistillStore } from './store.ts';

export interface StepResult {
  /** Records produced by this step (with deterministic idempotency keys). */
  records: RecordInput[];
  pairs?: PairInput[];
  /** Where the next step starts; stored with this step's records. */
  nextCursor: Json;
  /** True when this was the last step. */
  done: boolean;
  /** Total units of work, when the step learns it (progress.total). */
  total?: number;
  /** Units of work this step completed (default: records + pairs produced). */
  units?: number;
}

export type JobStep = (cursor: Json, ctx: { signal: AbortSignal | undefined; job: Job }) => Promise<StepResult>;

export interface RunJobOptions {
  signal?: AbortSignal;
  /** Called after every commit with the job as stored. */
  onProgress?: (job: Job) => void;
  /** Clock (ms) for progress and ETA; Date.now by default (tests inject one). */
  now?: () => number;
  /**
   * Start the next step (from this step's nextCursor) before this step's commit is written, so slow steps (teacher
   * requests) overlap the store's writes instead of waiting for them. Only for steps that do not read what earlier
   * steps wrote to the store: such a step is handed the job as it was before its predecessor's commit, and a signal
   * of its own (aborted with the caller's, or when the predecessor's commit fails and its result is dropped).
   */
  overlapCommits?: boolean;
}

/** A step that has been started: its outcome (never rejects) and a way to abort it. */
interface RunningStep {
  outcome: Promise<{ ok: true; res: StepResult } | { ok: false; error: unknown }>;
  cancel: () => void;
}

/** Teacher tokens and cost of what a commit writes: its records' and its pairs' provenance (feedback writes pairs only). */
function committedUsage(records: readonly RecordInput[], pairs: readonly PairInput[]): { tokens: number; cost: number } {
  let tokens = 0, cost = 0;
  for (const x of [...records, ...pairs]) {
    tokens += x.provenance.usage.input + x.provenance.usage.output;
    cost += x.provenance.cost ?? 0;
  }
  return { tokens, cost };
}

/**
 * A job's progress after a commit of `units` units of work (steps and windows alike): counts, the teacher usage of
 * its records and pairs, and the ETA from this run's rate since `t0`, when `doneAtStart` units were done.
 */
export function progressAfterCommit(
  p: JobProgress,
  commit: { units: number; total: number; done: boolean; records: readonly RecordInput[]; pairs: readonly PairInput[] },
  run: { t0: number; doneAtStart: number; now: number },
): Pick<JobProgress, 'done' | 'total' | 'tokens' | 'cost' | 'etaMs'> {
  const done = p.done + commit.units;
  const total = Math.max(commit.total, done);
  const used = committedUsage(commit.records, commit.pairs);
  const elapsed = run.now - run.t0;
  const rate = elapsed > 0 ? (done - run.doneAtStart) / elapsed : 0; // units per ms in this run
  const etaMs = commit.done ? 0 : rate > 0 && total > done ? Math.round((total - done) / rate) : undefined;
  return { done, total, tokens: p.tokens + used.tokens, cost: p.cost + used.cost, etaMs };
}

function isAbort(e: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (e as { name?: string } | null)?.name === 'AbortError';
}

/**
 * Runs (or resumes) job `jobId` until its step reports `done`, the signal aborts ('paused'), or something throws
 * ('failed', error message stored). Resolves with the job as stored at the end; a job already 'done' is
 * returned as is. The runner owns the job through a fresh runId: if another runner takes the job over, this one
 * stops without committing (the job is left to the other runner).
 */
export async function runJob(store: DistillStore, jobId: string, step: JobStep, options: RunJobOptions = {}): Promise<Job> {
  const { signal, onProgress } = options;
  const now = options.now ?? Date.now;
  let job = await store.getJob(jobId);
  if (!job) throw new NotFoundError(`runJob: no job "${jobId}"`);
  if (job.status === 'done') return job;

  const runId = newId();
  const t0 = now();
  ({ job } = await store.updateJob(jobId, {
    status: 'running',
    runId,
    error: null,
    progress: { startedAt: job.progress.startedAt || t0 },
  }));
  const doneAtStart = job.progress.done;

  const stop = async (patch: { status: 'paused' | 'failed'; error?: string }): Promise<Job> => {
    try {
      const r = await store.updateJob(jobId, { ...patch, runId: null }, {}, { runId });
      return r.job;
    } catch (e) {
      if (e instanceof JobConflictError) return (await store.getJob(jobId))!;
      throw e;
    }
  };

  // Without overlap the step gets the caller's signal itself; with overlap each step gets its own, linked to it.
  const start = (cursor: Json, at: Job): RunningStep => {
    if (!options.overlapCommits) {
      return { outcome: settle(() => step(cursor, { signal, job: at })), cancel: () => undefined };
    }
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal?.reason);
    if (signal?.aborted) ctl.abort(signal.reason);
    else signal?.addEventListener('abort', onAbort, { once: true });
    const outcome = settle(() => step(cursor, { signal: ctl.signal, job: at }));
    void outcome.then(() => signal?.removeEventListener('abort', onAbort));
    return { outcome, cancel: () => ctl.abort() };
  };

  let next: RunningStep | null = null;
  try {
    for (;;) {
      // A step already started is awaited even after an abort: if it completed anyway, it is committed first.
      if (!next && signal?.aborted) return await stop({ status: 'paused' });
      const running: RunningStep = next ?? start(job.cursor, job);
      next = null;
      const out = await running.outcome;
      if (!out.ok) {
        if (isAbort(out.error, signal)) return await stop({ status: 'paused' });
        return await stop({ status: 'failed', error: errorMessage(out.error) });
      }
      const res = out.res;
      const records = res.records ?? [];
      const pairs = res.pairs ?? [];
      const progress = progressAfterCommit(
        job.progress,
        { units: res.units ?? records.length + pairs.length, total: res.total ?? job.progress.total, done: res.done, records, pairs },
        { t0, doneAtStart, now: now() },
      );
      // The next step starts now, from the cursor this commit is about to store (dropped if the commit fails).
      if (options.overlapCommits && !res.done && !signal?.aborted) next = start(res.nextCursor, job);
      try {
        ({ job } = await store.updateJob(
          jobId,
          {
            cursor: res.nextCursor,
            status: res.done ? 'done' : 'running',
            progress,
            ...(res.done ? { runId: null } : {}),
          },
          { records, pairs },
          { runId },
        ));
      } catch (e) {
        next?.cancel(); // its cursor was never stored: stop its requests now (awaited below)
        if (e instanceof JobConflictError) return (await store.getJob(jobId))!;
        return await stop({ status: 'failed', error: errorMessage(e) });
      }
      onProgress?.(job);
      if (res.done) return job;
    }
  } finally {
    // A step started ahead whose turn never came: abort it and wait, so no work outlives this call.
    if (next) {
      next.cancel();
      await next.outcome;
    }
  }
}

function settle(run: () => Promise<StepResult>): RunningStep['outcome'] {
  try {
    return run().then((res) => ({ ok: true as const, res }), (error: unknown) => ({ ok: false as const, error }));
  } catch (error) {
    return Promise.resolve({ ok: false as const, error });
  }
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
