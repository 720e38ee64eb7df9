// The page's one list of training runs, shared by every stage that shows runs (Train, Evaluate, Export, the demo,
// the Data stage's student picker). It is read from the engine once, then kept current by what goes through it:
// runs it creates and deletes, and the engine's events of the runs this tab trains (status events carry the whole
// RunInfo; step events move its step). Stages subscribe instead of refetching and filtering on their own.
// Training runs under a Web Lock named after the run, so two tabs never train one run (the second waits); on page
// load, runs a reload interrupted (status 'running') resume by themselves from their last checkpoint.
import { judgeAll, type JudgeGrade, type JudgeItem } from '../elicit/judge.ts';
import type { RlJudge } from '../engine/runs/types.ts';
import type { ActiveTeacher } from './app-state.ts';
import { resolveJobTeacher } from './teacher/resolve.ts';
import type { RunEvent, RunInfo, RunSpec } from '../protocol.ts';
import { engine, proxy } from './engine-client.ts';
import { withLock } from './locks.ts';

/** What changed: the list (a run came or went, or was reloaded), a run's status, or a running run's step. */
export type RunsChange = 'list' | 'status' | 'step';
type Listener = (runs: readonly RunInfo[], change: RunsChange) => void;
type EventListener = (runId: string, e: RunEvent) => void;

class RunsStore {
  private runs: RunInfo[] = [];
  private loading: Promise<readonly RunInfo[]> | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly eventListeners = new Set<EventListener>();
  private readonly training = new Map<string, Promise<RunInfo>>();

  /** The runs as last known (oldest first); [] before the first load. */
  list(): readonly RunInfo[] {
    return this.runs;
  }

  get(id: string): RunInfo | undefined {
    return this.runs.find((r) => r.id === id);
  }

  /** Reads the list from the engine (once at start; again only to pick up another tab's runs). */
  load(): Promise<readonly RunInfo[]> {
    this.loading ??= engine().listRuns().then((runs) => {
      this.runs = runs;
      this.notify('list');
      return this.runs;
    }).finally(() => { this.loading = null; });
    return this.loading;
  }

  /** Calls `fn` on every change (not for the current state: call list() for that). Returns an unsubscribe function. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every event of the runs this tab trains (logs, status, progress). Returns an unsubscribe function. */
  onEvent(fn: EventListener): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  private notify(change: RunsChange): void {
    for (const fn of [...this.listeners]) {
      try { fn(this.runs, change); } catch (err) { console.error('runs listener failed', err); }
    }
  }

  private put(run: RunInfo, change: RunsChange): void {
    const i = this.runs.findIndex((r) => r.id === run.id);
    if (i >= 0) this.runs[i] = run; else this.runs.push(run);
    this.notify(change);
  }

  private event(runId: string, e: RunEvent): void {
    for (const fn of [...this.eventListeners]) {
      try { fn(runId, e); } catch (err) { console.error('run event listener failed', err); }
    }
    if (e.kind === 'status') this.put(e.run, 'status');
    else if (e.kind === 'step') {
      const r = this.get(runId);
      if (r) { r.step = e.step; this.notify('step'); }
    }
  }

  async create(spec: RunSpec, onProgress?: (e: RunEvent) => void): Promise<RunInfo> {
    const run = await engine().createRun(spec, proxy((e: RunEvent) => onProgress?.(e)));
    this.put(run, 'list');
    return run;
  }

  async remove(id: string): Promise<void> {
    await engine().deleteRun(id);
    this.runs = this.runs.filter((r) => r.id !== id);
    this.notify('list');
  }

  /** Whether this page is training (or waiting to train) the run. */
  isTraining(id: string): boolean {
    return this.training.has(id);
  }

  /** Trains a run in this tab under its Web Lock; resolves with the run when it is done, paused or failed. */
  train(runId: string, onWait?: () => void): Promise<RunInfo> {
    const running = this.training.get(runId);
    if (running) return running;
    const p = withLock(`distill-run:${runId}`, async () => {
      // Another tab may have trained it meanwhile: the engine's copy decides.
      const run = (await engine().listRuns()).find((r) => r.id === runId);
      if (!run) throw new Error(`run ${runId} no longer exists (deleted in another tab?)`);
      if (run.status === 'done') { this.put(run, 'status'); return run; }
      return engine().runRun(runId, proxy((e: RunEvent) => this.event(runId, e)), run.spec.method === 'rl' && run.spec.judge ? proxy(pageJudge(run.spec.judge)) : undefined);
    }, onWait).finally(() => {
      this.training.delete(runId);
      this.notify('status');
    });
    this.training.set(runId, p);
    return p;
  }

  async pause(runId: string): Promise<void> {
    await engine().pauseRun(runId);
  }

  /** Resumes, in this tab, every run a reload or a closed tab left training. */
  async resumeInterrupted(onError: (run: RunInfo, e: unknown) => void): Promise<void> {
    for (const r of (await this.load()).filter((x) => x.status === 'running')) {
      void this.train(r.id).catch((e) => onError(r, e));
    }
  }
}

/** RL's judge in this page: the run's teacher found again (the active one, or loaded / rebuilt from its reference
 *  with the key this page holds), grading each answer through the elicitation layer. Resolved at the first grade;
 *  an error (no key, a teacher that cannot be loaded) fails the run with what to do. */
function pageJudge(j: RlJudge): (items: JudgeItem[]) => Promise<JudgeGrade[]> {
  let teacher: Promise<ActiveTeacher> | undefined;
  return async (items) => {
    teacher ??= resolveJobTeacher(j.ref);
    const t = await teacher.catch((e: unknown) => { teacher = undefined; throw e; });
    return judgeAll(t.teacher, items, { scoreMax: j.scoreMax ?? 10 });
  };
}

/** The one runs store of the page. */
export const runsStore = new RunsStore();

/** Runs with a checkpoint: what Evaluate, Export and the student picker can use. */
export const trainedRuns = (runs: readonly RunInfo[]): RunInfo[] => runs.filter((r) => r.checkpointStep > 0);
