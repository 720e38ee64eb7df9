// Page-side glue of training runs: the engine worker trains (src/engine/runs/), the page starts, pauses and
// watches. Each run trains under a Web Lock named after it, so two tabs never train one run (the second waits);
// on page load, runs a reload interrupted (status 'running') resume by themselves from their last checkpoint.
// Events of every run this page started fan out to subscribers (the Train stage's view) and, for status changes,
// to the other stages through app-state's 'runs' event.
import type { RunEvent, RunInfo } from '../../protocol.ts';
import { emit } from '../app-state.ts';
import { engine, proxy } from '../engine-client.ts';
import { withLock } from '../locks.ts';

type Listener = (runId: string, e: RunEvent) => void;
const listeners = new Set<Listener>();
const training = new Map<string, Promise<RunInfo>>();

export function onRunEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function fanOut(runId: string, e: RunEvent): void {
  for (const fn of [...listeners]) {
    try { fn(runId, e); } catch (err) { console.error('run listener failed', err); }
  }
  if (e.kind === 'status') emit('runs', undefined);
}

/** Whether this page is training (or waiting to train) the run. */
export function isTraining(runId: string): boolean {
  return training.has(runId);
}

/** Trains a run in this tab under its Web Lock; resolves with the run when it is done, paused or failed. */
export function trainRun(runId: string, onWait?: () => void): Promise<RunInfo> {
  const running = training.get(runId);
  if (running) return running;
  const p = withLock(`distill-run:${runId}`, async () => {
    const run = (await engine().listRuns()).find((r) => r.id === runId);
    if (!run) throw new Error(`run ${runId} no longer exists (deleted in another tab?)`);
    if (run.status === 'done') return run;
    return engine().runRun(runId, proxy((e: RunEvent) => fanOut(runId, e)));
  }, onWait).finally(() => {
    training.delete(runId);
    emit('runs', undefined);
  });
  training.set(runId, p);
  return p;
}

export async function pauseRun(runId: string): Promise<void> {
  await engine().pauseRun(runId);
}

/** Resumes, in this tab, every run a reload or a closed tab left training. */
export async function resumeInterrupted(onError: (run: RunInfo, e: unknown) => void): Promise<void> {
  const runs = await engine().listRuns();
  for (const r of runs.filter((x) => x.status === 'running')) {
    void trainRun(r.id).catch((e) => onError(r, e));
  }
}
