// Elicitation jobs: createElicitJob validates a strategy config (defaults filled, templates resolved, inputsFrom
// snapshotted into inputs) and stores it as a job of kind `elicit:<strategy>`; runElicitJob runs it:
//   - a strategy with a `window` (all but expansion) through src/store/window.ts: items keep ~WINDOW_SLOTS × the
//     teacher's maxConcurrency requests' worth of work going at all times (the teacher's semaphore keeps exactly
//     maxConcurrency requests at the server; the extra items are ready the moment a slot frees and cover items
//     waiting out a retry backoff), finished items committed with the cursor in batches (size or time);
//   - expansion (each generation round needs the pool left by the previous one) through the store's runJob, steps
//     in order, the next step's requests overlapping the previous step's commit.
// Either way records, pairs, top-k rows and the cursor land in one transaction: resumable, exactly once, progress
// and ETA. Retryable teacher errors that outlive the SDK's own retries (a missed deadline among them: the SDK does
// not retry those) are retried here with capped exponential backoff, outside the teacher's concurrency slot, and
// with the deadlines doubled after each miss; transient faults cost time, never records.
import { runJob, type JobStep, type RunJobOptions } from '../store/jobs.ts';
import type { Job, Json, RecordInput } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import { runWindowJob, type WindowPlan } from '../store/window.ts';
import { TeacherError } from '../teacher/types.ts';
import type { ChatMessage, ChatOptions, ChatResult } from '../teacher/types.ts';
import { curation } from './curation.ts';
import { ensemble } from './ensemble.ts';
import { evol } from './evol.ts';
import { expansion } from './expansion.ts';
import { feature } from './feature.ts';
import { feedback } from './feedback.ts';
import { labeling } from './labeling.ts';
import { selfKnowledge } from './self-knowledge.ts';
import {
  bump, cursorStats, ElicitError, isRecord, readInputsFrom, STRATEGY_NAMES,
  type ItemResult, type StepContext, type StepTopK, type Strategy, type StrategyName, type StudentSampler, type TeacherLike,
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
  ensemble: ensemble as Strategy<unknown>,
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
  /** The ensemble strategy's teachers, in the order the job names them (`teacher` then judges). */
  members?: readonly TeacherLike[];
  signal?: AbortSignal;
  /** Called after every committed step with the job as stored (progress.done/total/tokens/cost/etaMs). */
  onProgress?: (job: Job) => void;
  /** The student's sampler (required by 'feedback' and 'self-knowledge'). */
  student?: StudentSampler;
  /** Extra tries of a chat call that failed with a retryable TeacherError after the SDK's retries (default 8). */
  retries?: number;
  /** First backoff before such a retry, doubled each time up to MAX_RETRY_DELAY_MS (default 100 ms). */
  retryDelayMs?: number;
  /** Window strategies: commit what finished once the oldest uncommitted answer has waited this long (default 1000 ms). */
  commitEveryMs?: number;
  /**
   * Window strategies, remote teachers: once no new item is left, give an item that is retrying a second attempt
   * in a free slot (the first answer is kept, the other aborted). Shortens the tail of a job against a faulty
   * server at the price of a few requests that may be answered twice (default false; the CLI turns it on).
   */
  hedge?: boolean;
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
  const retries = options.retries ?? 8;
  const retryDelayMs = options.retryDelayMs ?? 100;
  const ctx: StepContext<unknown> = {
    config,
    jobId,
    datasetId: job.datasetId,
    teacher,
    student: options.student,
    signal,
    now,
    chat: (messages, opts, onRetry) => chatWithRetries(teacher, messages, opts, retries, retryDelayMs, onRetry),
  };
  if (options.members) {
    const members = options.members;
    ctx.members = members;
    ctx.chatMember = (i, messages, opts, onRetry) => {
      const m = members[i];
      if (!m) throw new ElicitError(`no member teacher ${i} (the job was given ${members.length})`);
      return chatWithRetries(m, messages, opts, retries, retryDelayMs, onRetry);
    };
  }
  const runOpts: RunJobOptions = { now };
  if (signal) runOpts.signal = signal;
  if (options.onProgress) runOpts.onProgress = options.onProgress;
  if (strategy.window) {
    let plan: WindowPlan<ItemResult>;
    try {
      plan = windowPlan(strategy, config, ctx, options.commitEveryMs ?? 1000, options.hedge ?? false);
    } catch (e) {
      return (await store.updateJob(jobId, { status: 'failed', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })).job;
    }
    return runWindowJob(store, jobId, plan, runOpts);
  }
  const stepFn = strategy.step;
  if (!stepFn) throw new ElicitError(`strategy '${strategy.name}' has neither a window nor steps`);
  // Each step gets the runner's signal for that step: with overlapCommits the runner aborts a step started ahead
  // whose predecessor failed to commit.
  const step: JobStep = async (cursor, { signal: stepSignal }) => {
    const r = await stepFn(cursor, { ...ctx, signal: stepSignal });
    return { records: attachTopK(r.records, r.topk ?? []), pairs: r.pairs ?? [], nextCursor: r.nextCursor, done: r.done, total: r.total, units: r.units };
  };
  // Steps never read the store (StepContext has none), so the next step's teacher requests may run while this
  // step's records are committed: the store's write time is hidden behind the requests (issue #5).
  return runJob(store, jobId, step, { ...runOpts, overlapCommits: true });
}

/** Items in the window per request slot of the teacher (see the banner). */
export const WINDOW_SLOTS = 2;
/** Request slots of a teacher that does not say (a local model): its chat() queues what it cannot run at once. */
const UNKNOWN_CONCURRENCY = 4;
/** Longest backoff between two tries of one chat call. */
export const MAX_RETRY_DELAY_MS = 30_000;

/** The teacher's maxConcurrency, or UNKNOWN_CONCURRENCY. */
export function teacherConcurrency(teacher: TeacherLike): number {
  const c = teacher.settings.maxConcurrency;
  return typeof c === 'number' && Number.isInteger(c) && c >= 1 ? c : UNKNOWN_CONCURRENCY;
}

/** The window plan of a window strategy's job: its items, their commit, the window's width and batch. */
function windowPlan(strategy: Strategy<unknown>, config: unknown, ctx: StepContext<unknown>, flushMs: number, hedge: boolean): WindowPlan<ItemResult> {
  const w = strategy.window!;
  const slots = teacherConcurrency(ctx.teacher);
  const perItem = Math.max(1, w.requestsPerItem?.(config) ?? 1);
  const plan: WindowPlan<ItemResult> = {
    count: w.items(config),
    total: w.total(config),
    width: Math.max(1, Math.ceil((WINDOW_SLOTS * slots) / perItem)),
    batch: Math.max(1, w.batch?.(config, slots) ?? slots),
    flushMs,
    // Not for a local model: it runs one request at a time, a duplicate would only queue behind the straggler.
    hedge: hedge && typeof ctx.teacher.settings.maxConcurrency === 'number',
    run: (index, signal, trouble) => w.item(index, {
      ...ctx, signal, chat: (m, o) => ctx.chat(m, o, trouble),
      ...(ctx.chatMember ? { chatMember: (i: number, m: ChatMessage[], o: ChatOptions) => ctx.chatMember!(i, m, o, trouble) } : {}),
    }),
    build: (items, state) => {
      w.commit?.(items, state, config);
      const stats = cursorStats(state);
      for (const { result } of items) for (const [k, v] of Object.entries(result.stats ?? {})) bump(stats, k, v);
      state.stats = stats;
      return {
        records: items.flatMap(({ result }) => attachTopK(result.records.map((r) => ({ ...r })), result.topk ?? [])),
        pairs: items.flatMap(({ result }) => result.pairs ?? []),
        units: items.reduce((a, { result }) => a + (result.units ?? 1), 0),
      };
    },
  };
  if (w.legacyPrefix) plan.legacyPrefix = (state) => w.legacyPrefix!(state, config);
  return plan;
}

function attachTopK(records: RecordInput[], topk: StepTopK[]): RecordInput[] {
  if (topk.length === 0) return records;
  const byKey = new Map(records.map((r) => [r.key, r]));
  for (const t of topk) {
    const r = byKey.get(t.key);
    if (!r) throw new ElicitError(`step returned top-k rows for "${t.key}", which is not one of its records`);
    (r.topk ??= []).push({ turn: t.turn, rows: t.rows, tokens: t.tokens });
  }
  return records;
}

/** The teacher's chat with the elicitation layer's retries of retryable TeacherErrors (capped exponential backoff). */
export async function chatWithRetries(
  teacher: TeacherLike, messages: ChatMessage[], opts: ChatOptions, retries: number, delayMs: number, onRetry?: () => void,
): Promise<ChatResult> {
  let scale = 1;
  for (let attempt = 0; ; attempt++) {
    try {
      return await teacher.chat(messages, scale > 1 ? { ...opts, deadlineScale: scale } : opts);
    } catch (e) {
      const retry = e instanceof TeacherError && e.retryable && attempt < retries && !opts.signal?.aborted;
      if (!retry) throw e;
      onRetry?.();
      if (e.kind === 'timeout') scale = Math.min(64, scale * 2); // a request slow by nature gets more time each try
      await sleep(Math.min(MAX_RETRY_DELAY_MS, delayMs * 2 ** attempt), opts.signal);
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
