// Page-side glue of the Data stage: the app's one DistillStore (IndexedDB database 'webgpu-distill', the store's
// default name, through idb), persistent storage and the usage/quota estimate, the elicitation jobs a reload left
// unfinished, a Web Lock per job so two tabs never run one job at once (a second tab waits, then sees it done),
// and the teacher (ActiveTeacher.ref, never a key) and student a job runs with, stored in the job's config so a
// resumed job finds them again.
import { elicitJobStrategy, JOB_KIND_PREFIX } from '../../elicit/run.ts';
import { plannedTotal } from '../../elicit/strategy-info.ts';
import { STRATEGY_NAMES, type StrategyName } from '../../elicit/types.ts';
import type { Job, Json } from '../../store/schema.ts';
import { openStore, requestPersistentStorage, storageEstimate, type DistillStore } from '../../store/store.ts';
import { withLock } from '../locks.ts';
import { reloadableSource } from '../teacher/teacher-client.ts';

export { reloadableSource };

let storePromise: Promise<DistillStore> | null = null;

/** The app's store, opened once per page (a failed open is tried again on the next call). */
export function appStore(): Promise<DistillStore> {
  storePromise ??= openStore().catch((e: unknown) => {
    storePromise = null;
    throw e;
  });
  return storePromise;
}

export interface StorageInfo {
  /** navigator.storage.persist()'s answer; undefined where the browser has no such API. */
  persisted: boolean | undefined;
  usage?: number;
  quota?: number;
}

/** Asks for persistent storage (once per page) and reads usage and quota. Never throws. */
let persistAnswer: Promise<boolean | undefined> | null = null;
export async function storageInfo(): Promise<StorageInfo> {
  persistAnswer ??= requestPersistentStorage().catch(() => undefined);
  const [persisted, est] = await Promise.all([persistAnswer, storageEstimate().catch(() => undefined)]);
  return { persisted, ...(est ? { usage: est.usage, quota: est.quota } : {}) };
}

/** What a job stores to find its teacher again: ActiveTeacher.ref (never a key). Older jobs: {model, source, device}. */
export type TeacherRef = { [k: string]: Json };

/** The student a feedback or self-knowledge job samples: a training run and how to sample it. */
export interface StudentChoice {
  runId: string;
  /** Shown to the user, e.g. "tiny-1m run, step 400". */
  label: string;
  maxNewTokens: number;
  temperature: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}


/** The teacher ref stored in the job's config by withTeacher; null for a job created elsewhere (CLI, tests). */
export function jobTeacher(job: Job): TeacherRef | null {
  const t = isObject(job.config) ? job.config.teacher : undefined;
  if (!isObject(t) || typeof t.model !== 'string') return null;
  return t as TeacherRef;
}

/** One line about a stored teacher ref, e.g. "brown-teacher (local, webgpu)" or "gpt-4o-mini at api.openai.com". */
export function teacherRefLabel(ref: TeacherRef): string {
  const model = String(ref.model);
  if (ref.kind === 'remote') {
    let host = '';
    try { host = new URL(String(ref.baseURL)).host; } catch { /* not a URL */ }
    return host ? `${model} at ${host}` : `${model} (remote)`;
  }
  const device = typeof ref.device === 'string' ? ref.device : 'auto';
  return `${model} (local, ${device}${reloadableSource(ref.source) ? '' : ', picked files'})`;
}

/** The student stored in the job's config by withTeacher, or null. */
export function jobStudent(job: Job): StudentChoice | null {
  const s = isObject(job.config) ? job.config.student : undefined;
  if (!isObject(s) || typeof s.runId !== 'string') return null;
  return {
    runId: s.runId,
    label: typeof s.label === 'string' ? s.label : s.runId,
    maxNewTokens: typeof s.maxNewTokens === 'number' ? s.maxNewTokens : 64,
    temperature: typeof s.temperature === 'number' ? s.temperature : 1,
  };
}

/** Stores the teacher `ref` (and the student, for feedback / self-knowledge) in the job's config next to the strategy's config. */
export async function withTeacher(store: DistillStore, job: Job, ref: TeacherRef, student?: StudentChoice | null): Promise<Job> {
  const cfg = isObject(job.config) ? (job.config as { [k: string]: Json }) : {};
  const extra: { [k: string]: Json } = { teacher: ref };
  if (student) extra.student = { runId: student.runId, label: student.label, maxNewTokens: student.maxNewTokens, temperature: student.temperature };
  return (await store.updateJob(job.id, { config: { ...cfg, ...extra } })).job;
}

/** The strategy name of an elicitation job ('labeling' for one whose config cannot be read). */
export function jobStrategyName(job: Job): StrategyName {
  const n = job.kind.slice(JOB_KIND_PREFIX.length);
  return (STRATEGY_NAMES as readonly string[]).includes(n) ? (n as StrategyName) : 'labeling';
}

function isElicitJob(job: Job): boolean {
  return job.kind.startsWith(JOB_KIND_PREFIX);
}

/** Elicitation jobs to resume on page load: 'running' (the page that ran them went away) or 'queued', oldest first. */
export async function unfinishedJobs(store: DistillStore): Promise<Job[]> {
  const jobs = await store.listJobs();
  return jobs.filter((j) => isElicitJob(j) && (j.status === 'running' || j.status === 'queued')).sort((a, b) => a.createdAt - b.createdAt);
}

/** The most recently created elicitation job, if any. */
export async function latestJob(store: DistillStore): Promise<Job | undefined> {
  const jobs = (await store.listJobs()).filter(isElicitJob);
  return jobs.sort((a, b) => b.createdAt - a.createdAt)[0];
}

/** The job's inputs (labeling and the other input-list strategies); [] where the config has none. */
export function jobInputs(job: Job): string[] {
  try {
    const { config } = elicitJobStrategy(job);
    const inputs = isObject(config) ? config.inputs : undefined;
    return Array.isArray(inputs) ? inputs.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** Units of work of the job: progress.total once a step has reported it, else what its config plans. */
export function jobTotal(job: Job): number {
  if (job.progress.total > 0) return job.progress.total;
  try {
    const { strategy, config } = elicitJobStrategy(job);
    return plannedTotal(strategy.name, config);
  } catch {
    return jobInputs(job).length;
  }
}

/**
 * Runs `fn` holding the job's Web Lock (released when `fn` settles, or when the tab closes or reloads). While
 * another tab holds it, `onWait` is called and this waits. Without navigator.locks, `fn` just runs (the store's
 * runId check still keeps a second runner's commits out).
 */
export function withJobLock<T>(jobId: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  return withLock(`distill-job:${jobId}`, fn, onWait);
}
