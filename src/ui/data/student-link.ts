// The Data stage's side of the student: feedback and self-knowledge work on a trained student's own samples. The
// runs of the Train stage (the page's runs store: 'done', 'paused', or 'running' with a step > 0) are offered in a
// select; the sampler asks the engine worker for K samples of one prompt (engine().sampleStudent). Without a run,
// the form says to train a student first. Stable hooks: #data-student[data-runs], #data-student-run,
// #data-student-max, #data-student-temperature, #data-student-note, #data-goto-train.
import { methodOf } from '../../engine/runs/methods.ts';
import type { RunInfo } from '../../engine/runs/types.ts';
import type { StudentSampler } from '../../elicit/types.ts';
import { engine } from '../engine-client.ts';
import { gotoStage } from '../app-state.ts';
import { runsStore } from '../runs-store.ts';
import { errorText, h } from '../dom.ts';
import type { StudentChoice } from '../services.ts';

/** Runs whose latest checkpoint can be sampled. */
export function usableRuns(runs: readonly RunInfo[]): RunInfo[] {
  // A reward model scores answers and writes none: it is no student to sample.
  return runs.filter((r) => methodOf(r.spec).generates && (r.status === 'done' || r.status === 'paused' || (r.status === 'running' && r.step > 0)));
}

function runLabel(r: RunInfo): string {
  return `${r.name} · step ${r.step} (${r.status})`;
}

/** A 32-bit FNV-1a hash of a prompt, to give each prompt its own sampling seed. */
function hash32(s: string): number {
  let x = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return x;
}

/** The sampler of a job's student: K samples per prompt from the engine worker (seeded by the job's seed and the prompt). */
export function studentSampler(s: StudentChoice, seed: number | null): StudentSampler {
  return async (prompt, k, signal) => {
    if (signal?.aborted) throw new DOMException('the request was aborted', 'AbortError');
    const out = await engine().sampleStudent(s.runId, prompt, k, {
      maxNewTokens: s.maxNewTokens, temperature: s.temperature, seed: ((seed ?? 0) ^ hash32(prompt)) >>> 0,
    });
    if (signal?.aborted) throw new DOMException('the request was aborted', 'AbortError');
    return out;
  };
}

export interface StudentLink {
  el: HTMLElement;
  /** Whether a run can be sampled now. */
  available(): boolean;
  /** The chosen run and sampling settings; throws naming a bad number. */
  choice(): StudentChoice;
  onChange(fn: () => void): void;
}

export function studentLink(): StudentLink {
  const run = h('select', { id: 'data-student-run', class: 'wide' });
  const max = h('input', { id: 'data-student-max', type: 'number', min: '1', max: '1024', value: '48' });
  const temperature = h('input', { id: 'data-student-temperature', type: 'number', min: '0', max: '2', step: '0.05', value: '1' });
  const note = h('div', { id: 'data-student-note', class: 'note' });
  const gotoTrain = h('button', { id: 'data-goto-train', type: 'button', class: 'secondary' }, 'Go to step 3 (Train)');
  const fields = h('div', { class: 'row' },
    h('label', {}, 'student (a training run)', run), h('label', {}, 'student max tokens', max), h('label', {}, 'student temperature', temperature));
  const el = h('div', { id: 'data-student', 'data-runs': '0' }, fields, note);
  const listeners: (() => void)[] = [];
  let runs: RunInfo[] = [];

  const render = (error?: string): void => {
    const keep = run.value;
    run.replaceChildren(...runs.map((r) => h('option', { value: r.id }, runLabel(r))));
    if (runs.some((r) => r.id === keep)) run.value = keep;
    el.dataset.runs = String(runs.length);
    fields.hidden = runs.length === 0;
    note.hidden = runs.length > 0 && !error;
    if (error) note.replaceChildren(`The training runs could not be listed: ${error}`);
    else if (runs.length === 0) note.replaceChildren('Train a student first (step 3), then come back: this strategy works on the student’s own samples. ', gotoTrain);
    for (const fn of listeners) fn();
  };

  const refresh = async (): Promise<void> => {
    try {
      runs = usableRuns(runsStore.list().length ? runsStore.list() : await runsStore.load());
      render();
    } catch (e) {
      runs = [];
      render(errorText(e));
    }
  };
  gotoTrain.addEventListener('click', () => gotoStage('train'));
  for (const x of [run, max, temperature]) x.addEventListener('change', () => { for (const fn of listeners) fn(); });
  runsStore.subscribe((_, change) => { if (change !== 'step') void refresh(); });
  render();
  void refresh();

  return {
    el,
    available: () => runs.length > 0,
    choice() {
      const r = runs.find((x) => x.id === run.value);
      if (!r) throw new Error('Train a student first (step 3), then come back: this strategy needs the student’s samples.');
      const m = Number(max.value);
      const t = Number(temperature.value);
      if (!Number.isInteger(m) || m < 1 || m > 1024) throw new Error(`student max tokens must be a whole number in 1..1024, got “${max.value}”`);
      if (!Number.isFinite(t) || t < 0 || t > 2) throw new Error(`student temperature must be a number in 0..2, got “${temperature.value}”`);
      return { runId: r.id, label: runLabel(r), maxNewTokens: m, temperature: t };
    },
    onChange(fn) {
      listeners.push(fn);
    },
  };
}
