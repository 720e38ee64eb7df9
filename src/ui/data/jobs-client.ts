// Page-side glue of the Data stage: the app's one DistillStore (IndexedDB database 'webgpu-distill', the store's
// default name, through idb), persistent storage and the usage/quota estimate, the elicitation jobs a reload left
// unfinished, a Web Lock per job so two tabs never run one job at once (a second tab waits, then sees it done),
// and the teacher a job runs with (stored in the job's config, so a resumed job loads the same model).
import { elicitJobStrategy, JOB_KIND_PREFIX } from '../../elicit/run.ts';
import type { Job, Json } from '../../store/schema.ts';
import { openStore, requestPersistentStorage, storageEstimate, type DistillStore } from '../../store/store.ts';
import type { ReloadableSource } from '../teacher/teacher-client.ts';

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

/** The teacher a job was started with: its model name, where to load it from again, and the device it ran on. */
export interface JobTeacher {
  model: string;
  source: ReloadableSource | null;
  device: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readSource(v: unknown): ReloadableSource | null {
  if (!isObject(v)) return null;
  if (v.kind === 'folder' && typeof v.location === 'string') return { kind: 'folder', location: v.location };
  if (v.kind === 'hub' && typeof v.id === 'string') {
    return { kind: 'hub', id: v.id, ...(typeof v.revision === 'string' ? { revision: v.revision } : {}) };
  }
  return null;
}

/** The teacher stored in the job's config by withTeacher; null for a job created elsewhere (CLI, tests). */
export function jobTeacher(job: Job): JobTeacher | null {
  const t = isObject(job.config) ? job.config.teacher : undefined;
  if (!isObject(t) || typeof t.model !== 'string') return null;
  return { model: t.model, source: readSource(t.source), device: typeof t.device === 'string' ? t.device : 'auto' };
}

/** Stores `teacher` in the job's config next to the strategy's config. */
export async function withTeacher(store: DistillStore, job: Job, teacher: JobTeacher): Promise<Job> {
  const cfg = isObject(job.config) ? job.config : {};
  const t: { [k: string]: Json } = { model: teacher.model, source: teacher.source as Json, device: teacher.device };
  return (await store.updateJob(job.id, { config: { ...(cfg as { [k: string]: Json }), teacher: t } })).job;
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

/** Units of work of the job: progress.total once a step has reported it, else its input count. */
export function jobTotal(job: Job): number {
  return job.progress.total > 0 ? job.progress.total : jobInputs(job).length;
}

type LockManagerLike = {
  request<T>(name: string, opts: { ifAvailable?: boolean }, fn: (lock: unknown) => Promise<T>): Promise<T>;
};

/**
 * Runs `fn` holding the job's Web Lock (released when `fn` settles, or when the tab closes or reloads). While
 * another tab holds it, `onWait` is called and this waits. Without navigator.locks, `fn` just runs (the store's
 * runId check still keeps a second runner's commits out).
 */
export async function withJobLock<T>(jobId: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const locks = (navigator as { locks?: LockManagerLike }).locks;
  if (!locks) return fn();
  const name = `distill-job:${jobId}`;
  const NOT_AVAILABLE = Symbol('not available');
  const first = await locks.request<T | typeof NOT_AVAILABLE>(name, { ifAvailable: true }, async (lock) => (lock === null ? NOT_AVAILABLE : fn()));
  if (first !== NOT_AVAILABLE) return first;
  onWait?.();
  return locks.request<T>(name, {}, () => fn());
}
