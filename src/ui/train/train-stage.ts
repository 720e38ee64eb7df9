// The Train stage: a new run's form (train-form.ts), the runs stored in this browser with their configs and
// latest held-out perplexity, and the selected run's live view (run-view.ts). A run trains in the engine worker
// under a Web Lock (runs-client.ts); a reload mid-training resumes it from its last checkpoint by itself.
// Stable hooks: #run-list tr[data-run][data-status], #train-gpu-note.
import type { RunEvent, RunInfo, RunSpec } from '../../protocol.ts';
import { gotoStage, loadPref, on, savePref, setStageStatus } from '../app-state.ts';
import { errorText, h } from '../dom.ts';
import { engine, proxy } from '../engine-client.ts';
import { appStore, gpuReady } from '../services.ts';
import { onRunEvent, pauseRun, resumeInterrupted, trainRun } from './runs-client.ts';
import { RunView } from './run-view.ts';
import { SOFTWARE_SETTINGS, trainForm } from './train-form.ts';

const METHOD_LABEL: Record<string, string> = { sft: 'SFT', kd: 'token KD', 'on-policy': 'on-policy', dpo: 'DPO', ipo: 'IPO' };

export function trainStage(): Node {
  const gpuNote = h('div', { id: 'train-gpu-note', class: 'muted' });
  const status = h('div', { id: 'train-status', class: 'muted' });
  const list = h('table', { id: 'run-list' });
  let runs: RunInfo[] = [];
  let selected: string | null = loadPref<string | null>('train-run', null);

  const view = new RunView({
    resume: (r) => start(r.id),
    pause: (r) => void pauseRun(r.id).catch((e) => view.showError(e)),
    remove: async (r) => {
      try {
        await engine().deleteRun(r.id);
        if (selected === r.id) { selected = null; savePref('train-run', null); view.hide(); }
        await refresh();
      } catch (e) { view.showError(e); }
    },
  });

  const select = async (id: string) => {
    selected = id;
    savePref('train-run', id);
    try {
      const { run, logs } = await engine().runHistory(id);
      view.show(run, logs);
      renderList();
    } catch (e) {
      view.showError(e);
    }
  };

  const start = (runId: string) => {
    if (selected !== runId) void select(runId);
    trainRun(runId, () => { status.className = 'muted'; status.textContent = 'Another tab is training this run: waiting for it to pause or close…'; })
      .then(() => refresh())
      .catch(async (e) => {
        status.className = 'error';
        status.textContent = `The run stopped: ${errorText(e)}`;
        await refresh();
      });
  };

  const form = trainForm(async (spec: RunSpec) => {
    status.className = 'muted';
    status.textContent = 'Preparing the run…';
    try {
      const run = await engine().createRun(spec, proxy((e: RunEvent) => { if (e.kind === 'progress') status.textContent = `Preparing the run: ${e.message}`; }));
      status.textContent = run.data.notes.length ? run.data.notes.join(' · ') : '';
      await refresh();
      start(run.id);
    } catch (e) {
      status.className = 'error';
      status.textContent = errorText(e);
    }
  });

  const renderList = () => {
    list.replaceChildren(
      h('tr', {}, ...['run', 'method', 'student', 'status', 'step', 'held-out ppl', ''].map((t) => h('th', {}, t))),
      ...runs.slice().reverse().map((r) => {
        const open = h('button', { class: 'link', 'data-open': r.id }, r.id === selected ? 'shown' : 'show');
        open.addEventListener('click', () => void select(r.id));
        return h('tr', { 'data-run': r.id, 'data-status': r.status, ...(r.id === selected ? { 'aria-selected': 'true' } : {}) },
          h('td', {}, r.name), h('td', {}, `${METHOD_LABEL[r.spec.method] ?? r.spec.method}${r.spec.method === 'kd' ? ` (${r.spec.kdSource === 'dense' ? 'dense' : 'top-k'}, ${r.train.objective})` : ''}`),
          h('td', {}, `${r.spec.initFrom ? 'from a run' : r.spec.preset} · ${(r.params / 1e6).toFixed(2)}M`),
          h('td', { class: r.status === 'failed' ? 'bad' : r.status === 'done' ? 'ok' : '' }, r.status),
          h('td', { class: 'num' }, `${r.step}/${r.train.steps}`), h('td', { class: 'num' }, r.lastEval ? r.lastEval.ppl.toFixed(1) : '—'), h('td', {}, open));
      }),
    );
    list.hidden = runs.length === 0;
  };

  const updateStageStatus = () => {
    const running = runs.find((r) => r.status === 'running');
    if (running) setStageStatus('train', { state: 'busy', text: `${running.name}: step ${running.step}/${running.train.steps}` });
    else if (runs.some((r) => r.status === 'done')) {
      const best = runs.filter((r) => r.lastEval).sort((a, b) => a.lastEval!.ppl - b.lastEval!.ppl)[0];
      setStageStatus('train', { state: 'done', text: `${runs.length} run${runs.length > 1 ? 's' : ''}${best ? ` · best ppl ${best.lastEval!.ppl.toFixed(1)}` : ''}` });
    } else if (runs.some((r) => r.status === 'failed')) setStageStatus('train', { state: 'error', text: 'a run stopped with an error' });
    else setStageStatus('train', { state: runs.length ? 'ready' : 'todo', text: runs.length ? `${runs.length} run(s)` : '' });
  };

  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> => (refreshing ??= (async () => {
    try {
      const [store, list2] = await Promise.all([appStore(), engine().listRuns()]);
      runs = list2;
      form.refresh(await store.listDatasets(), runs);
      renderList();
      updateStageStatus();
      const shown = runs.find((r) => r.id === selected);
      if (shown && view.runId !== shown.id) await select(shown.id);
      else if (shown) view.setStatus(shown);
    } catch (e) {
      status.className = 'error';
      status.textContent = errorText(e);
    } finally {
      refreshing = null;
    }
  })());

  onRunEvent((runId, e) => {
    if (runId === view.runId) view.onEvent(e);
    if (e.kind === 'status') {
      const i = runs.findIndex((r) => r.id === runId);
      if (i >= 0) runs[i] = e.run; else runs.push(e.run);
      renderList();
      updateStageStatus();
    } else if (e.kind === 'step') {
      const r = runs.find((x) => x.id === runId);
      if (r) { r.step = e.step; if (e.step % 5 === 0) { renderList(); updateStageStatus(); } }
    }
  });
  on('datasets', () => void refresh());
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

  void refresh().then(() => resumeInterrupted((r, e) => { status.className = 'error'; status.textContent = `Run “${r.name}” could not resume: ${errorText(e)}`; }));
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
