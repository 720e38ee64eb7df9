// The services the stages of the page share, in one place: a stage imports what another stage (or the demo) also
// uses from here, never from that stage's folder. Here: the app's data store, the GPU the engine worker got, the
// default teacher, the teacher the engine can run itself, and elicitation jobs run in this page — the Data stage
// and the demo run them through the same runner, so each job shows in the Data stage whoever started it. Services
// that live beside the stage that owns their state are re-exported: loading a local teacher into the teacher worker
// and finding a job's teacher again (src/ui/teacher/); training runs have their own store (src/ui/runs-store.ts).
import { createElicitJob, runElicitJob } from '../elicit/run.ts';
import type { StrategyName, StudentSampler, TeacherLike } from '../elicit/types.ts';
import type { AdapterReport, EngineModel, RunSpec } from '../protocol.ts';
import type { Job, Json } from '../store/schema.ts';
import { openStore, type DistillStore } from '../store/store.ts';
import { emit, type ActiveTeacher } from './app-state.ts';
import { engine } from './engine-client.ts';
import { listeners } from './listeners.ts';
import { withLock } from './locks.ts';

import { jobTeacher } from './data/jobs-client.ts';
import { folderUrlOf } from './teacher/session.ts';
import { reloadableSource } from './teacher/teacher-client.ts';

export { resolveJobTeacher } from './teacher/resolve.ts';
export { loadLocal, type LocalDeviceChoice } from './teacher/session.ts';
export { reloadableSource, type ReloadableSource } from './teacher/teacher-client.ts';
export { runsStore, trainedRuns } from './runs-store.ts';

/** The default teacher shipped with the app (a served folder, relative to the page). */
export const DEFAULT_TEACHER_FOLDER = 'models/brown-teacher/';

// ---- the data store --------------------------------------------------------------------------------------------------

let storePromise: Promise<DistillStore> | null = null;

/** The app's store (IndexedDB 'webgpu-distill'), opened once per page (a failed open is tried again on the next call). */
export function appStore(): Promise<DistillStore> {
  storePromise ??= openStore().catch((e: unknown) => {
    storePromise = null;
    throw e;
  });
  return storePromise;
}

// ---- the GPU ---------------------------------------------------------------------------------------------------------

let settleGpu: (p: Promise<AdapterReport>) => void = () => undefined;

/** Resolves with the adapter once the engine worker has one; rejects with the reason (the page says what to do). */
export const gpuReady: Promise<AdapterReport> = new Promise((resolve) => { settleGpu = resolve; });
gpuReady.catch(() => undefined); // shown by the GPU panel; whoever else waits on it handles it too

/** Asks the engine worker for its adapter (once, by the page's GPU panel); gpuReady follows the answer. */
export function startGpu(): Promise<AdapterReport> {
  const p = engine().gpuInfo();
  settleGpu(p);
  return p;
}

// ---- teachers --------------------------------------------------------------------------------------------------------

/** The engine's teacher for the active teacher, when the engine can run it (a local folder or picked files). */
export function engineTeacher(t: ActiveTeacher | null): RunSpec['teacher'] {
  if (!t) return undefined;
  if (t.folderUrl) return { label: t.model, source: { url: t.folderUrl } };
  if (t.folderFiles) return { label: t.model, source: { files: t.folderFiles } };
  return undefined;
}

/** For each dataset whose top-k rows came from a local teacher served from a folder: that teacher, as the engine
 *  loads it (a KD run from those rows takes its tokenizer when the active teacher is an API). */
export async function topkTeachers(store: DistillStore): Promise<Map<string, EngineModel>> {
  const out = new Map<string, EngineModel>();
  for (const job of await store.listJobs()) {
    if (job.kind !== 'elicit:feature' || out.has(job.datasetId)) continue;
    const ref = jobTeacher(job), source = ref ? reloadableSource(ref.source) : null;
    if (ref && ref.kind !== 'remote' && source?.kind === 'folder') out.set(job.datasetId, { label: String(ref.model), source: { url: folderUrlOf(source.location) } });
  }
  return out;
}

/** What of a picked model folder the engine reads (config, tokenizer files, safetensors weights and their index), by
 *  path; the rest of the folder (other formats, READMEs) is not loaded. */
export async function pickedModelFiles(list: ArrayLike<File>): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const f of Array.from(list)) {
    const path = f.webkitRelativePath || f.name;
    if (/(^|\/)(config\.json|tokenizer\.json|tokenizer_config\.json|[^/]*\.safetensors(\.index\.json)?)$/.test(path)) files[path] = new Uint8Array(await f.arrayBuffer());
  }
  return files;
}

// ---- elicitation jobs ------------------------------------------------------------------------------------------------

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

/**
 * A new elicitation job in `datasetId`, with the teacher `ref` (and the student, for feedback / self-knowledge)
 * stored in its config next to the strategy's, so that a resumed job finds them again.
 */
export async function newElicitJob(
  store: DistillStore, datasetId: string, strategy: StrategyName, config: unknown, ref: TeacherRef, student?: StudentChoice | null,
  members?: TeacherRef[],
): Promise<Job> {
  const job = await createElicitJob(store, datasetId, strategy, config);
  const cfg = typeof job.config === 'object' && job.config !== null && !Array.isArray(job.config) ? job.config : {};
  const extra: { [k: string]: Json } = { teacher: ref };
  if (members) extra.members = members;
  if (student) extra.student = { runId: student.runId, label: student.label, maxNewTokens: student.maxNewTokens, temperature: student.temperature };
  return (await store.updateJob(job.id, { config: { ...cfg, ...extra } })).job;
}

/** Who runs a job in this page. */
export type JobRunner = 'data' | 'demo';

/**
 * What happens to a job run in this page: 'start' once its lock is held and its teacher found, 'progress' after
 * every committed step, 'end' when the run returns (the job as stored then; `error` when it failed).
 */
export type JobRunEvent =
  | { phase: 'start' | 'progress'; job: Job; by: JobRunner }
  | { phase: 'end'; jobId: string; job: Job | undefined; by: JobRunner; error?: unknown };

export interface JobRunOptions {
  by: JobRunner;
  /** The job's teacher, asked once the lock is held (with the job as stored then). */
  teacher(job: Job): Promise<TeacherLike>;
  /** The student's sampler, for feedback and self-knowledge jobs. */
  student?(job: Job): StudentSampler | undefined;
  /** An ensemble job's teachers, in its order (asked once the lock is held, after `teacher`). */
  members?(job: Job): Promise<TeacherLike[] | undefined>;
  /** Leave the job as it is (besides a job that is done): e.g. one that another tab finished or paused meanwhile. */
  skip?(job: Job): boolean;
  /** Called when another tab holds the job's lock (this waits for it). */
  onWait?(): void;
}

const jobEvents = listeners<JobRunEvent>('job run');
const emitJob = jobEvents.emit;
const runningJobs = new Map<string, { ac: AbortController; done: Promise<Job> }>();

/** Called at every step of every job run in this page. Returns an unsubscribe function. */
export const onJobRun = jobEvents.on;

/**
 * Runs job `jobId` in this page under its Web Lock (one tab runs a job; a second waits) and resolves with the job
 * as stored when the run returns: done, paused by stopJob(), or failed. A job this page already runs is not started
 * twice: the caller gets that run's result.
 */
export function runJob(jobId: string, o: JobRunOptions): Promise<Job> {
  const running = runningJobs.get(jobId);
  if (running) return running.done;
  const ac = new AbortController();
  let last: Job | undefined;
  const done = (async () => {
    const store = await appStore();
    return withLock(`distill-job:${jobId}`, async () => {
      const job = await store.getJob(jobId);
      if (!job) throw new Error(`job ${jobId} no longer exists (deleted in another tab?)`);
      last = job;
      if (job.status === 'done' || ac.signal.aborted || o.skip?.(job)) return job;
      const teacher = await o.teacher(job);
      const members = await o.members?.(job);
      emitJob({ phase: 'start', job, by: o.by });
      const student = o.student?.(job);
      return runElicitJob(store, jobId, {
        teacher, signal: ac.signal, ...(student ? { student } : {}), ...(members ? { members } : {}),
        onProgress: (j) => {
          last = j;
          emitJob({ phase: 'progress', job: j, by: o.by });
          emit('datasets', undefined);
        },
      });
    }, o.onWait);
  })();
  runningJobs.set(jobId, { ac, done });
  const settle = (job: Job | undefined, error?: unknown): void => {
    emitJob({ phase: 'end', jobId, job, by: o.by, ...(error !== undefined ? { error } : {}) });
    emit('datasets', undefined);
  };
  done.then((job) => {
    runningJobs.delete(jobId);
    settle(job);
  }, (e: unknown) => {
    runningJobs.delete(jobId);
    // The job as stored after the failure (the store marks it failed), else as last seen.
    void appStore().then((s) => s.getJob(jobId)).catch(() => last).then((job) => settle(job ?? last, e));
  });
  return done;
}

/** Stops the job's run in this page after the step in flight (it is then 'paused'; a run waiting for the lock ends). */
export function stopJob(jobId: string): void {
  runningJobs.get(jobId)?.ac.abort();
}
