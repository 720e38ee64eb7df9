// Page-side glue of the Data stage: persistent storage and the usage/quota estimate, the elicitation jobs a reload
// left unfinished, and reading back what a job stores besides its strategy's config — the teacher (ActiveTeacher.ref,
// never a key) and the student it runs with — so a resumed job finds them again. The store itself, creating a job
// with its teacher and running one under its Web Lock are services the demo shares (src/ui/services.ts).
import { elicitJobStrategy, JOB_KIND_PREFIX } from '../../elicit/run.ts';
import { plannedTotal, progressUnit, STRATEGY_INFO } from '../../elicit/strategy-info.ts';
import { STRATEGY_NAMES, type StrategyName } from '../../elicit/types.ts';
import type { Job } from '../../store/schema.ts';
import { requestPersistentStorage, storageEstimate, type DistillStore } from '../../store/store.ts';
import { reloadableSource, type StudentChoice, type TeacherRef } from '../services.ts';

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

/** An ensemble job's teachers as stored by newElicitJob (refs, in the job's order), or null. */
export function jobMembers(job: Job): TeacherRef[] | null {
  const m = isObject(job.config) ? job.config.members : undefined;
  return Array.isArray(m) && m.every(isObject) ? (m as TeacherRef[]) : null;
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

/** What the job's progress counts: "prompts", "questions", …; "answers (10 prompts × 3)" for labeling with several answers per prompt. */
export function jobUnit(job: Job): string {
  try {
    const { strategy, config } = elicitJobStrategy(job);
    const unit = progressUnit(strategy.name, config);
    const k = isObject(config) ? config.answersPerInput : undefined;
    return unit === 'answers' && typeof k === 'number' ? `answers (${jobInputs(job).length} prompts × ${k})` : unit;
  } catch {
    return STRATEGY_INFO[jobStrategyName(job)].unit;
  }
}
