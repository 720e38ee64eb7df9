// "Distil the demo": the whole walk, offline, on what the app ships. The embedded teacher (public/models/
// brown-teacher) answers the bundled seed prompts (public/demo/prompts.json) with its top-k distributions (the
// feature strategy), a student learns them by token-level KD and a twin by plain SFT on the same answers, both
// are evaluated against the teacher on held-out answers, and the KD student is ready to export. Each phase goes
// through the same machinery as the stages (a job in the store, runs in the engine, their Web Locks), so a
// reload resumes where it was (the job and the runs resume by themselves; this card picks up its phase from
// localStorage) and every step is visible in its stage. Sizes follow the adapter: a software GPU gets a toy run.
// Stable hooks: #demo-start, #demo-stop, #demo-status[data-phase], #demo-steps li[data-phase][data-state], #demo-results.
import type { EvalReport, RunInfo, RunSpec } from '../../protocol.ts';
import { activeTeacher, emit, gotoStage, loadPref, savePref, type ActiveTeacher } from '../app-state.ts';
import { errorText, h, showError } from '../dom.ts';
import { engine } from '../engine-client.ts';
import {
  appStore, DEFAULT_TEACHER_FOLDER, engineTeacher, gpuReady, loadLocal, newElicitJob, onJobRun, runJob, runsStore, stopJob,
} from '../services.ts';
import { DEMO_SIZES, type DemoSize } from './sizes.ts';

const PHASES = ['teacher', 'data', 'kd', 'sft', 'evaluate', 'done'] as const;
type Phase = (typeof PHASES)[number];

interface DemoState {
  phase: Phase;
  size: DemoSize;
  /** Which size (by adapter) the demo runs at. */
  sizeKind?: 'gpu' | 'software';
  /** The user pressed Stop: a reload does not continue by itself. */
  stopped?: boolean;
  datasetId?: string;
  jobId?: string;
  kdRunId?: string;
  sftRunId?: string;
  results?: { kd: EvalReport; sft: EvalReport };
  error?: string;
}

const LABELS: Record<Phase, string> = {
  teacher: 'Load the embedded teacher (a small model trained on the Brown corpus)',
  data: 'The teacher continues the seed prompts, with its top-20 next-token distributions',
  kd: 'Train a student by token-level KD (forward KL to the teacher + CE)',
  sft: 'Train its twin by plain SFT on the same answers',
  evaluate: 'Evaluate both on held-out answers, against the teacher',
  done: 'The KD student is ready to export',
};

async function seedPrompts(n: number): Promise<string[]> {
  const res = await fetch(new URL('demo/prompts.json', document.baseURI));
  if (!res.ok) throw new Error(`the demo's prompts (demo/prompts.json) answered HTTP ${res.status}`);
  const { prompts } = (await res.json()) as { prompts: string[] };
  return prompts.slice(0, n);
}

export function demoCard(): Node {
  let state: DemoState | null = loadPref<DemoState | null>('demo', null);
  let running = false;
  let stopRequested = false;
  const startBtn = h('button', { id: 'demo-start' }, 'Distil the demo');
  const stopBtn = h('button', { id: 'demo-stop', class: 'secondary', disabled: true }, 'Stop');
  const hideBtn = h('button', { id: 'demo-hide', class: 'link' }, 'hide');
  const status = h('div', { id: 'demo-status', class: 'muted' });
  const steps = h('ol', { id: 'demo-steps', class: 'demo-steps' });
  const results = h('div', { id: 'demo-results' });
  const intro = h('p', { class: 'muted' },
    'New here? One click runs the whole walk offline on what this app ships: the embedded teacher answers seed prompts with its token distributions, ',
    'a student learns them by knowledge distillation and a twin by plain fine-tuning, both are evaluated against the teacher, and the distilled student is ready to download. ',
    'Every step happens in the stages below, where you can watch it.');
  const card = h('section', { id: 'demo', class: 'card demo' },
    h('div', { class: 'demo-head' }, h('h2', {}, 'Distil the demo'), hideBtn), intro,
    h('div', { class: 'buttons' }, startBtn, stopBtn), status, steps, results);

  const save = () => savePref('demo', state);
  const render = () => {
    const at = state ? PHASES.indexOf(state.phase) : -1;
    steps.replaceChildren(...PHASES.map((p, i) => {
      const st = !state ? 'todo' : state.phase === 'done' || i < at ? 'done' : i === at ? (state.error ? 'error' : running ? 'busy' : 'todo') : 'todo';
      return h('li', { 'data-phase': p, 'data-state': st }, h('span', { class: 'demo-mark' }, st === 'done' ? '✓' : st === 'busy' ? '⟳' : st === 'error' ? '!' : '○'), ' ', LABELS[p]);
    }));
    status.dataset.phase = state?.phase ?? 'idle';
    startBtn.disabled = running;
    stopBtn.disabled = !running;
    // "Continue" only for a demo that was stopped, failed or cut off by closing the tab.
    startBtn.textContent = running ? 'Demo running…' : state && state.phase !== 'done' ? 'Continue the demo' : 'Distil the demo';
    if (state?.error && !running) {
      showError(status, `${state.error} — press Continue the demo to try again from this step.`, {
        onDismiss: () => { if (state) { delete state.error; state.stopped = true; save(); render(); } },
      });
    }
    if (state?.results) renderResults(state.results);
  };
  const say = (text: string) => { status.className = 'muted'; status.textContent = text; };

  const renderResults = (r: { kd: EvalReport; sft: EvalReport }) => {
    const row = (label: string, f: (x: EvalReport) => number | undefined, d: number, id: string) =>
      h('tr', { 'data-metric': id }, h('td', {}, label), ...[r.kd, r.sft].map((x) => { const v = f(x); return h('td', { class: 'num' }, v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d)); }));
    const teacherPpl = r.kd.teacher?.ppl;
    const gain = r.sft.ppl !== undefined && r.kd.ppl !== undefined ? (r.sft.ppl - r.kd.ppl) / r.sft.ppl : undefined;
    const verdict = gain === undefined ? `No held-out evaluation: ${[...r.kd.notes, ...r.sft.notes].join('; ') || 'no held-out tokens'}.`
      : state?.sizeKind === 'software'
      ? `On a software GPU the demo is a toy (${state.size.steps} steps on ${state.size.prompts} answers): the numbers show that the walk works, not which method wins. Open the page on a machine with a GPU for the real demo.`
      : gain > 0.02 ? `Distillation beat plain fine-tuning by ${(gain * 100).toFixed(0)}% in perplexity.`
        : gain < -0.02 ? 'Here plain fine-tuning did better: the demo data is small; more prompts (step 2) and steps (step 3) change that.'
          : 'The two are within 2% here: the demo data is small; more prompts (step 2) and steps (step 3) tell them apart.';
    const go = h('button', {}, 'Export the distilled student →');
    go.addEventListener('click', () => gotoStage('export'));
    const see = h('button', { class: 'secondary' }, 'Compare them in Evaluate →');
    see.addEventListener('click', () => gotoStage('evaluate'));
    results.replaceChildren(
      h('table', {}, h('tr', {}, h('th', {}, 'held out'), h('th', { class: 'num' }, 'KD student'), h('th', { class: 'num' }, 'SFT twin')),
        row('perplexity (lower is better)', (x) => x.ppl, 2, 'ppl'), row('KL(teacher ‖ student)', (x) => x.klToTeacher, 4, 'kl'), row('top-1 agreement with the teacher', (x) => x.top1Agreement, 3, 'top1')),
      h('p', { class: 'muted small', id: 'demo-verdict' }, `The teacher's own perplexity on the same answers: ${teacherPpl?.toFixed(2) ?? '—'}. ${verdict}`),
      h('div', { class: 'buttons' }, go, see));
  };

  const teacher = async (): Promise<ActiveTeacher> => {
    const t = activeTeacher();
    if (t && t.kind === 'local' && t.folderUrl?.endsWith('/models/brown-teacher/')) return t;
    say('Loading the embedded teacher…');
    return loadLocal({ kind: 'folder', location: DEFAULT_TEACHER_FOLDER }, 'auto', (p) => say(`Loading the embedded teacher: ${p.message}`));
  };

  const spec = (name: string, datasetId: string, t: ActiveTeacher, kd: boolean): RunSpec => {
    const s = state!.size;
    const common = {
      name, datasetId, preset: s.preset, tokenizer: { kind: 'teacher' as const }, format: 'continuation' as const, teacher: engineTeacher(t)!,
      train: {
        steps: s.steps, batchSize: s.batch, seqLen: s.seqLen, lr: 3e-3, warmupSteps: Math.max(1, Math.round(s.steps / 15)), seed: 1,
        evalEvery: Math.max(1, Math.round(s.steps / 6)), checkpointEvery: Math.max(1, Math.round(s.steps / 6)), evalBatches: 8,
        ...(kd ? { objective: 'fkl' as const, kdWeight: 0.5, ceWeight: 0.5, temperature: 1 } : {}),
      },
      sampleEvery: Math.max(1, Math.round(s.steps / 3)), samplePrompts: ['The history of the city', 'In the morning the farmers'], heldOutEvery: s.heldOutEvery,
    };
    return kd ? { ...common, method: 'kd', kdSource: 'store-topk' } : { ...common, method: 'sft' };
  };

  const train = async (which: 'kd' | 'sft', t: ActiveTeacher): Promise<RunInfo> => {
    const key = which === 'kd' ? 'kdRunId' : 'sftRunId';
    if (!state![key]) {
      say(`Preparing the ${which === 'kd' ? 'KD student' : 'SFT twin'}…`);
      const run = await runsStore.create(spec(which === 'kd' ? 'demo: KD student' : 'demo: SFT twin', state!.datasetId!, t, which === 'kd'));
      state![key] = run.id;
      save();
    }
    gotoStage('train');
    say(`Training the ${which === 'kd' ? 'KD student' : 'SFT twin'} on this GPU (watch it in step 3)…`);
    const run = await runsStore.train(state![key]!);
    if (run.status === 'failed') throw new Error(`the ${which === 'kd' ? 'KD' : 'SFT'} run failed: ${run.error}`);
    return run;
  };

  const go = async () => {
    if (running) return;
    running = true;
    stopRequested = false;
    render();
    say(state && state.phase !== 'done' ? 'Continuing the demo…' : 'Starting the demo…');
    if (!state || state.phase === 'done') {
      const adapter = await gpuReady.catch((e) => { throw new Error(`the demo trains on WebGPU: ${errorText(e)}`); });
      const sizeKind = adapter.isFallbackAdapter ? 'software' : 'gpu';
      state = { phase: 'teacher', size: DEMO_SIZES[sizeKind], sizeKind };
      results.replaceChildren();
    }
    state.stopped = false;
    delete state.error;
    save();
    render();
    try {
      const t = await teacher();
      if (state.phase === 'teacher') { state.phase = 'data'; save(); render(); }
      if (state.phase === 'data') {
        const store = await appStore();
        if (!state.jobId) {
          const inputs = await seedPrompts(state.size.prompts);
          const ds = await store.createDataset({ name: `demo: ${inputs.length} prompts answered by brown-teacher with top-20`, description: 'made by "Distil the demo"' });
          const job = await newElicitJob(store, ds.id, 'feature', {
            inputs, topLogprobs: 20, includeSampled: true, temperature: 0.8, maxTokens: state.size.maxTokens, seed: 1, batchSize: 4,
          }, t.ref);
          state.datasetId = ds.id;
          state.jobId = job.id;
          save();
          emit('datasets', undefined);
        }
        if (!(await store.getJob(state.jobId!))) throw new Error('the demo\'s data job was deleted: press Distil the demo to start again');
        gotoStage('data');
        say('The teacher answers the prompts (watch them in step 2)…');
        // The Data stage shows the job as it runs, with its Stop (services.ts runJob).
        const done = await runJob(state.jobId!, { by: 'demo', teacher: async () => t.teacher, onWait: () => say('The data job runs in another tab: waiting for it…') });
        if (done.status !== 'done') throw new Error(done.status === 'paused' ? 'stopped' : `the data job ${done.status}: ${done.error ?? ''}`);
        state.phase = 'kd'; save(); render();
      }
      if (state.phase === 'kd') { await train('kd', t); if (stopRequested) throw new Error('stopped'); state.phase = 'sft'; save(); render(); }
      if (state.phase === 'sft') { await train('sft', t); if (stopRequested) throw new Error('stopped'); state.phase = 'evaluate'; save(); render(); }
      if (state.phase === 'evaluate') {
        say('Evaluating both students against the teacher…');
        const kd = await engine().evaluate({ runId: state.kdRunId! });
        const sft = await engine().evaluate({ runId: state.sftRunId! });
        state.results = { kd, sft };
        state.phase = 'done';
        save();
        savePref('eval-run', state.kdRunId);
        savePref('eval-compare', state.sftRunId);
        savePref('export-source', `run:${state.kdRunId}`);
      }
      status.className = 'ok';
      const ppl = (r: EvalReport) => r.ppl?.toFixed(2) ?? '—';
      status.textContent = `Done: the KD student's held-out perplexity is ${ppl(state.results!.kd)} (SFT twin ${ppl(state.results!.sft)}, teacher ${state.results!.kd.teacher?.ppl.toFixed(2) ?? '—'}).`;
    } catch (e) {
      if (stopRequested || /stopped|aborted/i.test(String((e as Error)?.message))) {
        state.stopped = true;
        say('Stopped. Continue the demo picks up where it stopped.');
      } else state.error = errorText(e);
      save();
    } finally {
      running = false;
      render();
    }
  };

  onJobRun((e) => {
    if (running && e.phase === 'progress' && e.job.id === state?.jobId) {
      say(`The teacher answers the prompts: ${e.job.progress.done} of ${e.job.progress.total} (watch them in step 2)…`);
    }
  });
  startBtn.addEventListener('click', () => void go());
  stopBtn.addEventListener('click', () => {
    stopRequested = true;
    if (state?.jobId) stopJob(state.jobId);
    for (const id of [state?.kdRunId, state?.sftRunId]) if (id) void runsStore.pause(id);
    stopBtn.disabled = true;
  });
  hideBtn.addEventListener('click', () => { card.hidden = true; savePref('demo-hidden', true); });
  card.hidden = loadPref('demo-hidden', false) && !(state && state.phase !== 'done');
  render();
  // A reload mid-demo continues it (unless the user had stopped it or it failed).
  if (state && state.phase !== 'done' && !state.stopped && !state.error) void go();
  return card;
}
