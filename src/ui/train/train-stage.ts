// The Train stage: a new run's form (train-form.ts), the runs stored in this browser with their configs and
// latest held-out perplexity (from the page's runs store, src/ui/runs-store.ts), and the selected run's live view
// (run-view.ts). A run trains in the engine worker under a Web Lock; a reload mid-training resumes it from its
// last checkpoint by itself. Stable hooks: #run-list tr[data-run][data-status] (a row's run name opens it:
// button[data-open]), #train-gpu-note, #train-status.
import { methodOf } from '../../engine/runs/methods.ts';
import type { RunInfo, RunSpec } from '../../protocol.ts';
import { gotoStage, loadPref, on, savePref, setStageStatus } from '../app-state.ts';
import { errorText, h, showError } from '../dom.ts';
import { engine } from '../engine-client.ts';
import { appStore, gpuReady, runsStore, topkTeachers } from '../services.ts';
import { RunView } from './run-view.ts';
import { SOFTWARE_SETTINGS, trainForm } from './train-form.ts';

const methodText = (r: RunInfo) => methodOf(r.spec).describe(r.spec, r.train);
/** The run's last held-out figure: perplexity, or a pair method's preference accuracy. */
const heldOutText = ({ lastEval: e }: RunInfo) => (!e ? '—' : e.pairAccuracy !== undefined ? `${(e.pairAccuracy * 100).toFixed(0)}% pairs`
  : Number.isFinite(e.ppl) ? e.ppl.toFixed(1) : e.reward !== undefined ? `reward ${e.reward.toFixed(2)}` : '—');
const lmEval = (r: RunInfo) => r.lastEval && r.lastEval.pairAccuracy === undefined && Number.isFinite(r.lastEval.ppl);

export function trainStage(): Node {
  const gpuNote = h('div', { id: 'train-gpu-note', class: 'muted' });
  const status = h('div', { id: 'train-status', class: 'muted' });
  const list = h('table', { id: 'run-list' });
  let selected: string | null = loadPref<string | null>('train-run', null);
  const say = (text: string) => { status.className = 'muted'; status.textContent = text; };
  const fail = (e: unknown, prefix = '') => showError(status, e, { prefix });

  const view = new RunView({
    resume: (r) => start(r.id),
    pause: (r) => void runsStore.pause(r.id).catch((e) => view.showError(e)),
    remove: async (r) => {
      try {
        await runsStore.remove(r.id);
        if (selected === r.id) { selected = null; savePref('train-run', null); view.hide(); }
      } catch (e) { view.showError(e); }
    },
  });

  const select = async (id: string) => {
    selected = id;
    savePref('train-run', id);
    renderList(runsStore.list());
    try {
      const { run, logs } = await engine().runHistory(id);
      view.show(run, logs);
    } catch (e) {
      view.showError(e);
    }
  };

  const start = (runId: string) => {
    if (selected !== runId) void select(runId);
    say('');
    runsStore.train(runId, () => say('Another tab is training this run: waiting for it to pause or close…'))
      .catch((e) => fail(e, 'The run stopped: '));
  };

  const form = trainForm(async (spec: RunSpec) => {
    say('Preparing the run…');
    try {
      const run = await runsStore.create(spec, (e) => { if (e.kind === 'progress') say(`Preparing the run: ${e.message}`); });
      say(run.data.notes.join(' · '));
      start(run.id);
    } catch (e) {
      fail(e);
    }
  });

  const renderList = (runs: readonly RunInfo[]) => {
    list.replaceChildren(
      h('tr', {}, ...['run', 'method', 'student', 'status', 'ppl'].map((t, i) => h('th', i === 4 ? { class: 'num', title: 'held-out perplexity' } : {}, t))),
      ...runs.slice().reverse().map((r) => {
        const open = h('button', { class: 'link', 'data-open': r.id, title: r.id === selected ? 'shown below' : 'show this run' }, r.name);
        open.addEventListener('click', () => void select(r.id));
        return h('tr', { 'data-run': r.id, 'data-status': r.status, ...(r.id === selected ? { 'aria-selected': 'true' } : {}) },
          h('td', {}, open), h('td', {}, methodText(r)),
          h('td', {}, `${r.spec.initFrom ? 'from a run' : r.spec.preset} · ${(r.params / 1e6).toFixed(2)}M`),
          h('td', { class: r.status === 'failed' ? 'bad' : r.status === 'done' ? 'ok' : '' }, `${r.status} ${r.step}/${r.train.steps}`),
          h('td', { class: 'num' }, heldOutText(r)));
      }),
    );
    list.hidden = runs.length === 0;
  };

  const updateStageStatus = (runs: readonly RunInfo[]) => {
    const running = runs.find((r) => r.status === 'running');
    if (running) setStageStatus('train', { state: 'busy', text: `${running.name}: step ${running.step}/${running.train.steps}` });
    else if (runs.some((r) => r.status === 'done')) {
      const best = runs.filter(lmEval).sort((a, b) => a.lastEval!.ppl - b.lastEval!.ppl)[0];
      setStageStatus('train', { state: 'done', text: `${runs.length} run${runs.length > 1 ? 's' : ''}${best ? ` · best ppl ${best.lastEval!.ppl.toFixed(1)}` : ''}` });
    } else if (runs.some((r) => r.status === 'failed')) setStageStatus('train', { state: 'error', text: 'a run stopped with an error' });
    else setStageStatus('train', { state: runs.length ? 'ready' : 'todo', text: runs.length ? `${runs.length} run(s)` : '' });
  };

  const refreshForm = async () => {
    try {
      const store = await appStore();
      const [datasets, teachers] = await Promise.all([store.listDatasets(), topkTeachers(store)]);
      form.refresh(datasets, runsStore.list() as RunInfo[], teachers);
    } catch (e) {
      fail(e);
    }
  };

  runsStore.subscribe((runs, change) => {
    renderList(runs);
    updateStageStatus(runs);
    if (change === 'step') return;
    void refreshForm();
    const shown = runs.find((r) => r.id === selected);
    if (shown && view.runId !== shown.id) void select(shown.id);
    else if (shown) view.setStatus(shown);
    else if (view.runId) view.hide();
  });
  runsStore.onEvent((runId, e) => { if (runId === view.runId) view.onEvent(e); });
  on('datasets', () => void refreshForm());
  on('teacher', () => form.replan());

  gpuReady.then((r) => {
    if (r.isFallbackAdapter && form.firstVisit) form.set(SOFTWARE_SETTINGS);
    gpuNote.textContent = r.isFallbackAdapter
      ? 'This browser gives a software GPU (correct but slow): pick the nano or micro student and few steps, or open the page on a machine with a GPU.'
      : '';
  }, (e) => {
    gpuNote.className = 'error';
    gpuNote.textContent = `Training needs WebGPU: ${errorText(e)}`;
  });

  void runsStore.resumeInterrupted((r, e) => fail(e, `Run “${r.name}” could not resume: `)).catch((e) => fail(e));
  const toEvaluate = h('button', { class: 'secondary' }, 'Evaluate a run →');
  toEvaluate.addEventListener('click', () => gotoStage('evaluate'));

  return h('div', { id: 'train-panel' },
    gpuNote,
    h('div', { class: 'panel-grid' }, form.element,
      h('div', { class: 'subcard' }, h('h3', {}, 'Runs in this browser'), h('div', { class: 'scroll' }, list),
        h('p', { class: 'muted small' }, 'Checkpoints are kept in this browser (IndexedDB): a reload resumes a training run from its last checkpoint. Evaluate and export a run in steps 4 and 5.'),
        h('div', { class: 'buttons' }, toEvaluate))),
    status, view.element,
  );
}
