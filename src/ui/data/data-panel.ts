// The Data stage's job runner: an elicitation job (any of the seven strategies, configured by strategy-form.ts) run
// from the page into the app's IndexedDB store, into a chosen dataset or a new one named after the strategy and
// the time. Each step's records and the job's cursor commit in one transaction (src/store/jobs.ts), so a reload or
// a closed tab loses at most the step in flight: on page load the jobs left 'running' or 'queued' are resumed
// AUTOMATICALLY, each under a Web Lock (one tab runs a job), and every record is written exactly once
// (idempotency keys). Stop pauses a job; Resume continues a paused, failed or interrupted one. The teacher is the
// active one (or the default teacher); a resumed job finds its own again (teacher-link.ts). Jobs run through the
// page's one runner (services.ts runJob), which the demo uses too: whoever runs a job, this panel shows it with its
// progress and Stop. Model output is untrusted: it only ever goes in through text nodes.
// Stable hooks for tests: #data-target, #data-start, #data-stop, #data-resume, #data-teacher,
// #data-progress[data-done][data-total], #data-progress-text,
// #data-status[data-state=idle|loading|waiting|running|done|stopped|error][data-job][data-resumed][data-by=data|demo],
// #data-storage[data-persisted][data-usage][data-quota], #data-records li[data-key].
import { STRATEGY_INFO } from '../../elicit/strategy-info.ts';
import type { Dataset, Job, StoredRecord } from '../../store/schema.ts';
import type { DistillStore } from '../../store/store.ts';
import { emit, on, type ActiveTeacher, type StageStatus } from '../app-state.ts';
import { duration, errorText, formatBytes, h, showError } from '../dom.ts';
import { appStore, newElicitJob, onJobRun, runJob, stopJob } from '../services.ts';
import { fillDatasetSelect, listDatasets, stamp } from './datasets.ts';
import {
  jobMembers, jobStrategyName, jobStudent, jobTeacher, jobTotal, jobUnit, latestJob, storageInfo, teacherRefLabel, unfinishedJobs,
} from './jobs-client.ts';
import { ensemblePanel } from './ensemble-panel.ts';
import type { StrategyForm } from './strategy-form.ts';
import { studentSampler } from './student-link.ts';
import type { TeacherLink } from './teacher-link.ts';

/** Records listed under the job (the dataset may hold more; the list says so). */
const LIST_LIMIT = 200;

type State = 'idle' | 'loading' | 'waiting' | 'running' | 'done' | 'stopped' | 'error';
type Mode = 'new' | 'auto' | 'manual';

function seedOf(config: unknown): number | null {
  const s = (config as { seed?: unknown } | null)?.seed;
  return typeof s === 'number' ? s : null;
}

export function dataPanel(form: StrategyForm, teachers: TeacherLink, onActivity: (s: StageStatus | null) => void): HTMLElement {
  const target = h('select', { id: 'data-target', class: 'wide' });
  const startButton = h('button', { id: 'data-start', disabled: true }, 'Start job');
  const stopButton = h('button', { id: 'data-stop', class: 'secondary', disabled: true }, 'Stop');
  const resumeButton = h('button', { id: 'data-resume', class: 'secondary', disabled: true }, 'Resume');
  const teacherLine = h('div', { id: 'data-teacher', class: 'muted small' });
  const progress = h('progress', { id: 'data-progress', max: '1', value: '0', 'data-done': '0', 'data-total': '0' });
  const progressText = h('div', { id: 'data-progress-text', class: 'muted' });
  const status = h('div', { id: 'data-status', class: 'muted', 'data-state': 'idle' }, 'Opening the data store…');
  const storage = h('div', { id: 'data-storage', class: 'muted small' });
  const records = h('ul', { id: 'data-records', class: 'records' });
  const recordsNote = h('div', { class: 'muted small' });
  const ensemble = ensemblePanel();
  const jobRecords = h('details', { id: 'data-job-records', open: true, hidden: true },
    h('summary', {}, 'Records of the job’s dataset'), recordsNote, h('div', { class: 'scroll-box' }, records));

  /** The job this page runs (or waits to run) and this panel shows; null when none. */
  let running: string | null = null;
  /** How the panel's own run of `running` started ('new', resumed on load, resumed by the button). */
  let mode: Mode = 'new';
  let shown: Job | null = null;
  let opened = false;

  const setState = (state: State, text: string, cls = 'muted'): void => {
    status.dataset.state = state;
    status.className = cls;
    status.textContent = text;
    if (state !== 'running' && state !== 'loading' && state !== 'waiting') onActivity(null);
  };
  /** An error, until the user dismisses it or acts again (Start, Resume, or another job's run replaces it). */
  const setError = (e: unknown, prefix?: string): void => {
    status.dataset.state = 'error';
    showError(status, e, { ...(prefix ? { prefix } : {}), onDismiss: () => { status.dataset.state = 'idle'; onActivity(null); } });
    onActivity({ state: 'error', text: 'a job failed' });
  };
  const syncButtons = (): void => {
    const blocked = form.blocker() !== null;
    startButton.disabled = running !== null || !opened || blocked;
    stopButton.disabled = running === null;
    resumeButton.disabled = running !== null || !shown || shown.status === 'done';
  };
  form.onChange(syncButtons);

  const refreshTargets = async (): Promise<void> => {
    try {
      fillDatasetSelect(target, await listDatasets(), [{ value: '', label: 'a new dataset (strategy + time)' }]);
    } catch { /* shown by the status line */ }
  };
  on('datasets', () => void refreshTargets());

  const refreshStorage = async (): Promise<void> => {
    const s = await storageInfo();
    storage.dataset.persisted = String(s.persisted);
    if (s.quota !== undefined) {
      storage.dataset.usage = String(s.usage);
      storage.dataset.quota = String(s.quota);
    }
    const used = s.quota !== undefined ? `${formatBytes(s.usage ?? 0)} used of ${formatBytes(s.quota)} this site may use` : 'usage and quota unknown in this browser';
    const persisted = s.persisted === undefined ? 'persistence unknown' : s.persisted ? 'persistent (the browser will not evict it)'
      : 'not persistent: the browser may evict it under storage pressure (export datasets you want to keep)';
    storage.textContent = `Storage: ${used}; ${persisted}.`;
  };

  let recordsSeq = 0;
  const refreshRecords = async (datasetId: string): Promise<void> => {
    const seq = ++recordsSeq;
    let list: StoredRecord[];
    let ds: Dataset | undefined;
    try {
      const store = await appStore();
      [list, ds] = await Promise.all([store.getRecords(datasetId, { limit: LIST_LIMIT }), store.getDataset(datasetId)]);
    } catch (e) {
      recordsNote.textContent = `The records could not be read: ${errorText(e)}`;
      return;
    }
    if (seq !== recordsSeq) return; // a newer refresh is on its way
    jobRecords.hidden = false;
    records.replaceChildren(...list.map((r) => {
      const user = [...r.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const answer = r.messages.at(-1)?.role === 'assistant' ? r.messages.at(-1)!.content : '';
      return h('li', { 'data-key': r.key }, h('span', { class: 'text q' }, user), answer ? h('span', { class: 'text a' }, answer) : null);
    }));
    const n = ds?.counts.records ?? list.length;
    const pairs = ds && ds.counts.pairs > 0 ? ` and ${ds.counts.pairs} preference pair${ds.counts.pairs === 1 ? '' : 's'}` : '';
    void ensemble.show(datasetId);
    recordsNote.textContent = `${n} record${n === 1 ? '' : 's'}${pairs} in dataset “${ds?.name ?? datasetId}”${n > list.length ? ` (first ${list.length} shown; browse them all under “Your datasets”)` : ''}.`;
  };

  const renderJob = (job: Job): void => {
    shown = job;
    const total = jobTotal(job);
    const { done, tokens, cost } = job.progress;
    progress.max = Math.max(total, 1);
    progress.value = Math.min(done, total);
    progress.dataset.done = String(done);
    progress.dataset.total = String(total);
    const name = jobStrategyName(job);
    const eta = job.status === 'running' && done < total ? ` · ETA ${duration(job.progress.etaMs)}` : '';
    progressText.textContent = `${done}/${total} ${jobUnit(job)}${eta} · ${tokens.toLocaleString('en')} tokens · cost $${cost.toFixed(4)}`;
    status.dataset.job = job.id;
    const t = jobTeacher(job);
    const s = jobStudent(job);
    const m = jobMembers(job);
    const who = m ? ` · teachers ${m.map(teacherRefLabel).join(', ')}${t ? ` · judge ${teacherRefLabel(t)}` : ''}` : t ? ` · teacher ${teacherRefLabel(t)}` : '';
    teacherLine.textContent = `${STRATEGY_INFO[name].title} job${who}${s ? ` · student ${s.label}` : ''}`;
    if (job.status === 'running' && job.id === running) onActivity({ state: 'busy', text: `${name}: ${done}/${total}` });
  };

  /** Shows a job that is not running here: done, stopped, failed, or running in another tab. */
  const showFinished = (job: Job): void => {
    renderJob(job);
    const total = jobTotal(job);
    if (job.status === 'done') setState('done', `Done: ${job.progress.done}/${total} ${jobUnit(job)}.`, 'ok');
    else if (job.status === 'paused') setState('stopped', `Stopped at ${job.progress.done}/${total}. Resume continues where it stopped.`);
    else if (job.status === 'failed') setError(`The job failed: ${job.error ?? 'unknown error'}. Resume retries from the last commit.`);
    else if (job.status === 'running') setState('waiting', 'The job is unfinished and not running here (another tab may run it). Resume continues it here.');
    else setState('idle', 'The job is queued: Resume starts it.');
  };

  const loadingStatus = (text: string): void => {
    if (status.dataset.state === 'loading') status.textContent = text;
  };

  // Every job run in this page, the demo's included: its start, each committed step and its end.
  onJobRun((e) => {
    if (e.phase === 'end') {
      if (e.jobId !== running) return;
      running = null;
      if (e.job) void refreshRecords(e.job.datasetId);
      if (e.error !== undefined) {
        if (e.job) renderJob(e.job);
        setError(e.error);
      } else if (e.job) showFinished(e.job);
      syncButtons();
      void refreshStorage();
      return;
    }
    if (e.phase === 'start') {
      running = e.job.id;
      status.dataset.by = e.by;
      status.dataset.resumed = String(e.by === 'data' && mode !== 'new');
      renderJob(e.job);
      onActivity({ state: 'busy', text: `${jobStrategyName(e.job)}: running` });
      setState('running', e.by === 'demo'
        ? 'The demo runs this job (“Distil the demo” above): every step is committed with the job’s cursor. Stop pauses it, here or there.'
        : `${mode === 'new' ? 'Running' : 'Resumed'}: every step is committed with the job’s cursor, so a reload resumes it.`);
      syncButtons();
    } else if (e.job.id === running) {
      renderJob(e.job);
      void refreshStorage();
    } else return;
    void refreshRecords(e.job.datasetId);
  });

  /** Runs job `jobId` in this page ('auto': only if it is still unfinished once its lock is held); shown by the events above. */
  const runHere = async (jobId: string, how: Mode, ready?: ActiveTeacher): Promise<void> => {
    mode = how;
    running = jobId;
    syncButtons();
    await runJob(jobId, {
      by: 'data',
      skip: (job) => how === 'auto' && job.status !== 'running' && job.status !== 'queued',
      teacher: async (job) => {
        renderJob(job);
        void refreshRecords(job.datasetId);
        if (ready) return ready.teacher;
        setState('loading', 'Finding the job’s teacher…');
        const ref = jobTeacher(job);
        return (ref ? await teachers.forJob(ref, loadingStatus) : await teachers.forNewJob(loadingStatus)).teacher;
      },
      // An ensemble's teachers, one after the other (a local one may have to be loaded again).
      members: async (job) => {
        const refs = jobMembers(job);
        if (!refs) return undefined;
        const out = [];
        for (const ref of refs) out.push((await teachers.forJob(ref, loadingStatus)).teacher);
        return out;
      },
      student: (job) => {
        const s = jobStudent(job);
        return s ? studentSampler(s, seedOf((job.config as { config?: unknown } | null)?.config)) : undefined;
      },
      onWait: () => setState('waiting', 'Another tab is running this job: waiting for it to finish or close…'),
    }).catch(() => undefined); // shown by the 'end' event
  };

  startButton.addEventListener('click', async () => {
    if (running) return;
    startButton.disabled = true;
    delete status.dataset.resumed;
    setState('loading', 'Starting…');
    let created: string | null = null;
    let store: DistillStore | null = null;
    try {
      const blocked = form.blocker();
      if (blocked) throw new Error(blocked);
      const reading = form.read(); // a bad setting fails here, naming the key, before anything is stored
      store = await appStore();
      const teacher = await teachers.forNewJob(loadingStatus);
      let datasetId = target.value;
      if (datasetId === '' || !(await store.getDataset(datasetId))) {
        const info = STRATEGY_INFO[reading.name];
        const ds = await store.createDataset({ name: `${info.name}: ${stamp()}` });
        datasetId = created = ds.id;
      }
      // An ensemble asks the active teacher (also its judge) and the other teachers the form names (remote).
      const members = reading.members ? [teacher.ref, ...reading.members.map((m) => ({
        kind: 'remote', preset: teacher.kind === 'remote' && teacher.ref.baseURL === m.baseURL ? teacher.ref.preset ?? 'custom' : 'custom', baseURL: m.baseURL, model: m.model,
      }))] : undefined;
      const job = await newElicitJob(store, datasetId, reading.name, reading.config, teacher.ref, reading.student, members);
      created = null;
      target.value = datasetId;
      emit('datasets', undefined);
      records.replaceChildren();
      await runHere(job.id, 'new', teacher);
    } catch (e) {
      // A dataset made for a job that could not be created (e.g. a feature job refused by the dataset) goes again.
      if (created && store) await store.deleteDataset(created).catch(() => undefined);
      setError(e);
    } finally {
      syncButtons();
    }
  });
  stopButton.addEventListener('click', () => {
    if (running) stopJob(running);
    stopButton.disabled = true;
  });
  resumeButton.addEventListener('click', async () => {
    if (running || !shown) return;
    resumeButton.disabled = true;
    setState('loading', 'Resuming…');
    await runHere(shown.id, 'manual');
  });

  // On load: persistence and quota, then resume what a reload or a closed tab left unfinished.
  void (async () => {
    try {
      const store = await appStore();
      opened = true;
      void refreshStorage();
      await refreshTargets();
      const todo = await unfinishedJobs(store);
      if (todo.length === 0 && !running) {
        const last = await latestJob(store);
        if (last) {
          showFinished(last);
          void refreshRecords(last.datasetId);
        } else setState('idle', 'No job yet: choose a strategy, check the preview and press Start.');
      }
      syncButtons();
      for (const job of todo) await runHere(job.id, 'auto');
    } catch (e) {
      setError(e, 'The data store could not be opened: ');
    } finally {
      syncButtons();
    }
  })();

  return h('div', { id: 'data-panel' },
    h('div', { class: 'row' }, h('label', {}, 'write into', target)),
    h('div', { class: 'buttons' }, startButton, stopButton, resumeButton),
    teacherLine, progress, progressText, status,
    jobRecords,
    ensemble.el,
    storage,
  );
}
