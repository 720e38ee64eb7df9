// The resumable job runner: loads a job, calls its `step` from the stored cursor, and commits each step's
// records together with the next cursor and progress in ONE durable transaction (DistillStore.updateJob), so a
// crash or an abort at any point resumes exactly where the last commit left off: every record written once.
// Abort → status 'paused'; an exception → 'failed' with its message; the last step → 'done'.
import { JobConflictError, NotFoundError } from './errors.ts';
import { newId, type Job, type Json, type PairInput, type RecordInput } from './schema.ts';
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

  for (;;) {
    if (signal?.aborted) return stop({ status: 'paused' });
    let res: StepResult;
    try {
      res = await step(job.cursor, { signal, job });
    } catch (e) {
      if (isAbort(e, signal)) return stop({ status: 'paused' });
      return stop({ status: 'failed', error: errorMessage(e) });
    }
    const records = res.records ?? [];
    const pairs = res.pairs ?? [];
    const p = job.progress;
    const done = p.done + (res.units ?? records.length + pairs.length);
    const total = Math.max(res.total ?? p.total, done);
    let tokens = p.tokens;
    let cost = p.cost;
    for (const r of records) {
      tokens += r.provenance.usage.input + r.provenance.usage.output;
      cost += r.provenance.cost ?? 0;
    }
    const elapsed = now() - t0;
    const rate = elapsed > 0 ? (done - doneAtStart) / elapsed : 0; // units per ms in this run
    const etaMs = res.done ? 0 : rate > 0 && total > done ? Math.round((total - done) / rate) : undefined;
    try {
      ({ job } = await store.updateJob(
        jobId,
        {
          cursor: res.nextCursor,
          status: res.done ? 'done' : 'running',
          progress: { done, total, tokens, cost, etaMs },
          ...(res.done ? { runId: null } : {}),
        },
        { records, pairs },
        { runId },
      ));
    } catch (e) {
      if (e instanceof JobConflictError) return (await store.getJob(jobId))!;
      return stop({ status: 'failed', error: errorMessage(e) });
    }
    onProgress?.(job);
    if (res.done) return job;
  }
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
