// Elicitation jobs: createElicitJob validates a strategy config (defaults filled, templates resolved, inputsFrom
// snapshotted into inputs) and stores it as a job of kind `elicit:<strategy>`; runElicitJob drives the strategy's
// steps through the store's runJob (each step's records, pairs, top-k rows and cursor in one transaction: resumable,
// exactly-once, progress and ETA), the next step's requests overlapping the previous step's commit. Retryable
// teacher errors that outlive the SDK's own retries are retried here with backoff, so transient faults cost time,
// never records.
import { runJob, type JobStep } from '../store/jobs.ts';
import type { Job, Json, RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import { TeacherError } from '../teacher/types.ts';
import type { ChatMessage, ChatOptions, ChatResult } from '../teacher/types.ts';
import { curation } from './curation.ts';
import { evol } from './evol.ts';
import { expansion } from './expansion.ts';
import { feature } from './feature.ts';
import { feedback } from './feedback.ts';
import { labeling } from './labeling.ts';
import { selfKnowledge } from './self-knowledge.ts';
import {
  ElicitError, isRecord, readInputsFrom, STRATEGY_NAMES,
  type StepContext, type Strategy, type StrategyName, type StudentSampler, type TeacherLike,
} from './types.ts';

/** Every strategy by name. */
export const STRATEGIES: { readonly [N in StrategyName]: Strategy<unknown> } = {
  labeling: labeling as Strategy<unknown>,
  expansion: expansion as Strategy<unknown>,
  curation: curation as Strategy<unknown>,
  evol: evol as Strategy<unknown>,
  feature: feature as Strategy<unknown>,
  feedback: feedback as Strategy<unknown>,
  'self-knowledge': selfKnowledge as Strategy<unknown>,
};

export const JOB_KIND_PREFIX = 'elicit:';

export function strategyByName(name: unknown): Strategy<unknown> {
  if (typeof name !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(name)) {
    throw new ElicitError(`unknown strategy ${JSON.stringify(name)} (expected one of ${STRATEGY_NAMES.join(', ')})`);
  }
  return STRATEGIES[name as StrategyName];
}

/**
 * Creates a queued job on `datasetId` running `strategy` with `config` (validated here: a bad config throws
 * ElicitError naming the key and nothing is stored). The job's config is `{strategy, config}` with every default
 * filled in and `inputsFrom` replaced by the inputs it named, so the job does not change if that dataset does.
 */
export async function createElicitJob(store: DistillStore, datasetId: string, strategy: StrategyName | Strategy<unknown>, config: unknown): Promise<Job> {
  const s = typeof strategy === 'string' ? strategyByName(strategy) : strategy;
  const c = s.validate(config) as Record<string, unknown>;
  if (isRecord(c.inputsFrom) && Array.isArray(c.inputs)) {
    c.inputs = await readInputsFrom(store, c.inputsFrom as never, `${s.name} config`);
    c.inputsFrom = null;
  }
  if (!(await store.getDataset(datasetId))) throw new ElicitError(`createElicitJob: no dataset "${datasetId}"`);
  const cursor = s.init ? await s.init(store, datasetId, c) : null;
  const job = await store.createJob({ kind: JOB_KIND_PREFIX + s.name, datasetId, config: { strategy: s.name, config: c as Json } });
  if (cursor === null) return job;
  return (await store.updateJob(job.id, { cursor })).job;
}

export interface RunElicitOptions {
  teacher: TeacherLike;
  signal?: AbortSignal;
  /** Called after every committed step with the job as stored (progress.done/total/tokens/cost/etaMs). */
  onProgress?: (job: Job) => void;
  /** The student's sampler (required by 'feedback' and 'self-knowledge'). */
  student?: StudentSampler;
  /** Extra tries of a chat call that failed with a retryable TeacherError after the SDK's retries (default 4). */
  retries?: number;
  /** First backoff before such a retry, doubled each time (default 500 ms). */
  retryDelayMs?: number;
  /** Clock (ms) for provenance times, progress and ETA (default Date.now). */
  now?: () => number;
}

/** The strategy and validated config of a stored elicitation job. */
export function elicitJobStrategy(job: Job): { strategy: Strategy<unknown>; config: unknown } {
  const cfg = job.config;
  if (!job.kind.startsWith(JOB_KIND_PREFIX) || !isRecord(cfg) || !('config' in cfg)) {
    throw new ElicitError(`job "${job.id}" (kind ${job.kind}) is not an elicitation job`);
  }
  const strategy = strategyByName(cfg.strategy);
  return { strategy, config: strategy.validate(cfg.config) };
}

/**
 * Runs (or resumes) elicitation job `jobId` until done ('done'), aborted ('paused') or failed ('failed', with the
 * error message stored). Resolves with the job as stored at the end.
 */
export async function runElicitJob(store: DistillStore, jobId: string, options: RunElicitOptions): Promise<Job> {
  const job = await store.getJob(jobId);
  if (!job) throw new ElicitError(`runElicitJob: no job "${jobId}"`);
  const { strategy, config } = elicitJobStrategy(job);
  const { teacher, signal } = options;
  const now = options.now ?? Date.now;
  const retries = options.retries ?? 4;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const ctx: StepContext<unknown> = {
    config,
    jobId,
    datasetId: job.datasetId,
    teacher,
    student: options.student,
    signal,
    now,
    chat: (messages, opts) => chatWithRetries(teacher, messages, opts, retries, retryDelayMs),
  };
  // Each step gets the runner's signal for that step: with overlapCommits the runner aborts a step started ahead
  // whose predecessor failed to commit.
  const step: JobStep = async (cursor, { signal: stepSignal }) => {
    const r = await strategy.step(cursor, { ...ctx, signal: stepSignal });
    return { records: attachTopK(r.records, r.topk ?? []), pairs: r.pairs ?? [], nextCursor: r.nextCursor, done: r.done, total: r.total, units: r.units };
  };
  // Steps never read the store (StepContext has none), so the next step's teacher requests may run while this
  // step's records are committed: the store's write time is hidden behind the requests (issue #5).
  const runOpts: Parameters<typeof runJob>[3] = { now, overlapCommits: true };
  if (signal) runOpts.signal = signal;
  if (options.onProgress) runOpts.onProgress = options.onProgress;
  return runJob(store, jobId, step, runOpts);
}

function attachTopK(records: RecordInput[], topk: NonNullable<Awaited<ReturnType<Strategy<unknown>['step']>>['topk']>): RecordInput[] {
  if (topk.length === 0) return records;
  const byKey = new Map(records.map((r) => [r.key, r]));
  for (const t of topk) {
    const r = byKey.get(t.key);
    if (!r) throw new ElicitError(`step returned top-k rows for "${t.key}", which is not one of its records`);
    (r.topk ??= []).push({ turn: t.turn, rows: t.rows, tokens: t.tokens });
  }
  return records;
}

async function chatWithRetries(teacher: TeacherLike, messages: ChatMessage[], opts: ChatOptions, retries: number, delayMs: number): Promise<ChatResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await teacher.chat(messages, opts);
    } catch (e) {
      const retry = e instanceof TeacherError && e.retryable && attempt < retries && !opts.signal?.aborted;
      if (!retry) throw e;
      await sleep(delayMs * 2 ** attempt, opts.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new TeacherError('aborted', 'the request was aborted'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(new TeacherError('aborted', 'the request was aborted')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
