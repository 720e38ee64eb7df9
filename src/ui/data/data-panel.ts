// The Data stage: an elicitation job (strategy 'labeling': the teacher answers each prompt) run from the page into
// the app's IndexedDB store, with the local teacher of the Teacher stage (the shared teacher worker; when no model
// is loaded there, the default embedded teacher is loaded here). Each step's records and the job's cursor commit in
// one transaction (src/store/jobs.ts), so a reload or a closed tab loses at most the step in flight: on page load
// the jobs left 'running' or 'queued' are resumed AUTOMATICALLY, each under a Web Lock (one tab runs a job), and
// every record is written exactly once (idempotency keys). Stop pauses a job; Resume continues a paused, failed
// or interrupted one. Model output is untrusted: it only ever goes in through text nodes.
// Stable hooks for tests: #data-prompts, #data-strategy, #data-max, #data-temperature, #data-batch, #data-device,
// #data-start, #data-stop, #data-resume, #data-progress[data-done][data-total], #data-progress-text,
// #data-status[data-state=idle|loading|waiting|running|done|stopped|error][data-job][data-resumed],
// #data-storage[data-persisted][data-usage][data-quota], #data-records li[data-key].
import { createElicitJob, runElicitJob, strategyByName } from '../../elicit/run.ts';
import { STRATEGY_NAMES } from '../../elicit/types.ts';
import type { Dataset, Job, StoredRecord } from '../../store/schema.ts';
import type { DistillStore } from '../../store/store.ts';
import { duration, errorText, formatBytes, h } from '../dom.ts';
import { appStore, jobTeacher, jobTotal, latestJob, storageInfo, unfinishedJobs, withJobLock, withTeacher, type JobTeacher } from './jobs-client.ts';
import { loadedTeacher, loadTeacher, WorkerTeacher } from '../teacher/teacher-client.ts';
import { DEFAULT_TEACHER_FOLDER } from '../teacher/local-panel.ts';

/** Short prompts for the default teacher (a small model trained on the Brown corpus: news, fiction, essays). */
export const DEFAULT_PROMPTS = [
  'The history of the city', 'In the morning the farmers', 'The President said that', 'Music and art in the schools',
  'The church stood on the hill', 'A new law was passed', 'The team won the game', 'Science and the modern world',
  'She opened the letter and', 'The river ran through the valley', 'The doctor told him', 'After the war the people',
];

/** Records listed under the job (the dataset may hold more; the list says so). */
const LIST_LIMIT = 200;

type State = 'idle' | 'loading' | 'waiting' | 'running' | 'done' | 'stopped' | 'error';
type Mode = 'new' | 'auto' | 'manual';

export function dataPanel(): HTMLElement {
  const prompts = h('textarea', { id: 'data-prompts', rows: '8', cols: '40', spellcheck: 'false' });
  prompts.value = DEFAULT_PROMPTS.join('\n');
  const strategy = h('select', { id: 'data-strategy' },
    ...STRATEGY_NAMES.map((n) => h('option', { value: n, disabled: n !== 'labeling' }, n === 'labeling' ? 'labeling (answer each prompt)' : `${n} (not in the app yet)`)));
  const maxTokens = h('input', { id: 'data-max', type: 'number', min: '1', max: '4096', value: '32', size: '4' });
  const temperature = h('input', { id: 'data-temperature', type: 'number', min: '0', max: '2', step: '0.05', value: '0.7', size: '4' });
  const batch = h('input', { id: 'data-batch', type: 'number', min: '1', max: '64', value: '2', size: '3' });
  const device = h('select', { id: 'data-device' },
    h('option', { value: 'auto' }, 'auto (WebGPU, else WASM)'), h('option', { value: 'webgpu' }, 'WebGPU'), h('option', { value: 'wasm' }, 'WASM (CPU)'));
  const startButton = h('button', { id: 'data-start', disabled: true }, 'Start job');
  const stopButton = h('button', { id: 'data-stop', disabled: true }, 'Stop');
  const resumeButton = h('button', { id: 'data-resume', disabled: true }, 'Resume');
  const teacherLine = h('div', { id: 'data-teacher', class: 'muted' });
  const progress = h('progress', { id: 'data-progress', max: '1', value: '0', 'data-done': '0', 'data-total': '0' });
  const progressText = h('div', { id: 'data-progress-text', class: 'muted' });
  const status = h('div', { id: 'data-status', class: 'muted', 'data-state': 'idle' }, 'Opening the data store…');
  const storage = h('div', { id: 'data-storage', class: 'muted' });
  const records = h('ul', { id: 'data-records' });
  const recordsNote = h('div', { class: 'muted' });

  let running: { jobId: string; ac: AbortController } | null = null;
  let shown: Job | null = null;

  const setState = (state: State, text: string, cls = 'muted'): void => {
    status.dataset.state = state;
    status.className = cls;
    status.textContent = text;
  };
  const syncButtons = (): void => {
    startButton.disabled = running !== null;
    stopButton.disabled = running === null;
    resumeButton.disabled = running !== null || !shown || shown.status === 'done';
  };

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
  const refreshRecords = async (store: DistillStore, datasetId: string): Promise<void> => {
    const seq = ++recordsSeq;
    let list: StoredRecord[];
    let ds: Dataset | undefined;
    try {
      [list, ds] = await Promise.all([store.getRecords(datasetId, { limit: LIST_LIMIT }), store.getDataset(datasetId)]);
    } catch (e) {
      recordsNote.textContent = `The records could not be read: ${errorText(e)}`;
      return;
    }
    if (seq !== recordsSeq) return; // a newer refresh is on its way
    records.replaceChildren(...list.map((r) => {
      const user = [...r.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const answer = r.messages.at(-1)?.role === 'assistant' ? r.messages.at(-1)!.content : '';
      return h('li', { 'data-key': r.key }, h('strong', {}, user), ' → ', h('span', {}, answer));
    }));
    const n = ds?.counts.records ?? list.length;
    recordsNote.textContent = `${n} record${n === 1 ? '' : 's'} in dataset “${ds?.name ?? datasetId}”${n > list.length ? ` (first ${list.length} shown)` : ''}.`;
  };

  const renderJob = (job: Job): void => {
    shown = job;
    const total = jobTotal(job);
    const { done, tokens, cost } = job.progress;
    progress.max = Math.max(total, 1);
    progress.value = Math.min(done, total);
    progress.dataset.done = String(done);
    progress.dataset.total = String(total);
    const eta = job.status === 'running' && done < total ? ` · ETA ${duration(job.progress.etaMs)}` : '';
    progressText.textContent = `${done}/${total} prompts${eta} · ${tokens.toLocaleString('en')} tokens · cost $${cost.toFixed(4)}`;
    status.dataset.job = job.id;
    const t = jobTeacher(job);
    teacherLine.textContent = t ? `Teacher: ${t.model} (${t.device}${t.source ? '' : ', picked files'})` : '';
  };

  /** Shows a job that is not running here: done, stopped, failed, or running in another tab. */
  const showFinished = (job: Job): void => {
    renderJob(job);
    if (job.status === 'done') setState('done', `Done: ${job.progress.done}/${jobTotal(job)} prompts answered.`, 'ok');
    else if (job.status === 'paused') setState('stopped', `Stopped at ${job.progress.done}/${jobTotal(job)}. Resume continues where it stopped.`);
    else if (job.status === 'failed') setState('error', `The job failed: ${job.error ?? 'unknown error'}. Resume retries from the last commit.`, 'error');
    else if (job.status === 'running') setState('waiting', 'The job is unfinished and not running here (another tab may run it). Resume continues it here.');
    else setState('idle', 'The job is queued: Resume starts it.');
  };

  /** The teacher for `job` (or a new job): the loaded model if it is the job's, else the job's source loaded again. */
  const teacherFor = async (job: Job | null): Promise<{ teacher: WorkerTeacher; ref: JobTeacher }> => {
    const want = job ? jobTeacher(job) : null;
    const cur = loadedTeacher();
    if (cur && (!want || cur.info.model === want.model)) {
      return { teacher: new WorkerTeacher(cur.info.model), ref: { model: cur.info.model, source: cur.source, device: cur.info.device } };
    }
    if (want && !want.source) {
      throw new Error(`this job's teacher "${want.model}" came from files picked on this computer: load it again in the Teacher stage, then press Resume.`);
    }
    const source = want?.source ?? { kind: 'folder' as const, location: DEFAULT_TEACHER_FOLDER };
    // A resumed job runs on WASM if it ran there, else on the best this browser has now.
    const dev = want ? (want.device === 'wasm' ? 'wasm' : 'auto') : (device.value as 'auto' | 'webgpu' | 'wasm');
    setState('loading', 'Loading the teacher…');
    const info = await loadTeacher(source, { device: dev, baseUrl: document.baseURI }, (p) => {
      if (status.dataset.state === 'loading') status.textContent = `Loading the teacher: ${p.message}`;
    });
    return { teacher: new WorkerTeacher(info.model), ref: { model: info.model, source, device: info.device } };
  };

  /** Runs job `jobId` in this tab under its Web Lock: 'auto' only if it is still unfinished once the lock is held. */
  const runHere = async (store: DistillStore, jobId: string, mode: Mode, ready?: WorkerTeacher): Promise<void> => {
    const ac = new AbortController();
    running = { jobId, ac };
    syncButtons();
    try {
      await withJobLock(jobId, async () => {
        const job = await store.getJob(jobId);
        if (!job) throw new Error(`job ${jobId} no longer exists (deleted in another tab?)`);
        renderJob(job);
        void refreshRecords(store, job.datasetId);
        if (job.status === 'done' || (mode === 'auto' && job.status !== 'running' && job.status !== 'queued')) return showFinished(job);
        if (ac.signal.aborted) return setState('stopped', 'Stopped before the job started here.'); // Stop while waiting for the lock
        status.dataset.resumed = String(mode !== 'new');
        const teacher = ready ?? (await teacherFor(job)).teacher;
        setState('running', `${mode === 'new' ? 'Running' : 'Resumed'}: the teacher answers each prompt; every step is committed with the job's cursor.`);
        const final = await runElicitJob(store, jobId, {
          teacher,
          signal: ac.signal,
          onProgress: (j) => {
            renderJob(j);
            void refreshRecords(store, j.datasetId);
            void refreshStorage();
          },
        });
        await refreshRecords(store, final.datasetId);
        showFinished(final);
      }, () => setState('waiting', 'Another tab is running this job: waiting for it to finish or close…'));
    } catch (e) {
      setState('error', errorText(e), 'error');
      const job = await store.getJob(jobId).catch(() => undefined);
      if (job) { renderJob(job); void refreshRecords(store, job.datasetId); }
    } finally {
      running = null;
      syncButtons();
      void refreshStorage();
    }
  };

  startButton.addEventListener('click', async () => {
    if (running) return;
    startButton.disabled = true;
    delete status.dataset.resumed;
    setState('loading', 'Starting…');
    try {
      const inputs = prompts.value.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      if (inputs.length === 0) throw new Error('write at least one prompt (one per line).');
      const config = {
        inputs, maxTokens: Number(maxTokens.value), temperature: Number(temperature.value), batchSize: Number(batch.value),
        seed: Math.floor(Math.random() * 2 ** 31), // stored: a step redone after a reload asks the same questions
      };
      strategyByName(strategy.value).validate(config); // a bad setting fails here, naming the key, before anything is stored
      const store = await appStore();
      const { teacher, ref } = await teacherFor(null);
      const ds = await store.createDataset({ name: `labeling: ${inputs.length} prompts, ${new Date().toISOString().slice(0, 19).replace('T', ' ')}` });
      const job = await withTeacher(store, await createElicitJob(store, ds.id, 'labeling', config), ref);
      records.replaceChildren();
      await runHere(store, job.id, 'new', teacher);
    } catch (e) {
      setState('error', errorText(e), 'error');
    } finally {
      syncButtons();
    }
  });
  stopButton.addEventListener('click', () => {
    running?.ac.abort();
    stopButton.disabled = true;
  });
  resumeButton.addEventListener('click', async () => {
    if (running || !shown) return;
    resumeButton.disabled = true;
    setState('loading', 'Resuming…');
    try {
      await runHere(await appStore(), shown.id, 'manual');
    } catch (e) {
      setState('error', errorText(e), 'error');
    }
  });

  // On load: persistence and quota, then resume what a reload or a closed tab left unfinished.
  void (async () => {
    try {
      const store = await appStore();
      void refreshStorage();
      const todo = await unfinishedJobs(store);
      if (todo.length === 0) {
        const last = await latestJob(store);
        if (last) {
          showFinished(last);
          void refreshRecords(store, last.datasetId);
        } else setState('idle', 'No job yet: write prompts and press Start.');
      }
      for (const job of todo) await runHere(store, job.id, 'auto');
    } catch (e) {
      setState('error', `The data store could not be opened: ${errorText(e)}`, 'error');
    } finally {
      syncButtons();
    }
  })();

  return h('div', { id: 'data-panel' },
    h('label', {}, 'Prompts, one per line', h('br', {}), prompts),
    h('p', {},
      h('label', {}, 'Strategy ', strategy), ' ', h('label', {}, 'max tokens ', maxTokens), ' ',
      h('label', {}, 'temperature ', temperature), ' ', h('label', {}, 'prompts per commit ', batch)),
    h('p', {}, h('label', {}, 'Device (when this stage loads the default teacher) ', device)),
    h('p', {}, startButton, ' ', stopButton, ' ', resumeButton),
    teacherLine, progress, progressText, status, storage,
    h('h3', {}, 'Records'), recordsNote, records,
  );
}
