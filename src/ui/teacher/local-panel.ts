// The Teacher stage: a local transformers.js teacher in its own worker (workers/teacher.worker.ts). Pick where the
// model comes from (a folder served with the app, files picked on disk, or a Hugging Face Hub id), load it with
// progress (WebGPU when the browser has an adapter, else WASM), then generate from a prompt and see each generated
// token with its top-k alternatives. Model output is untrusted: it only ever goes in through textContent.
// Stable hooks for tests: #teacher-load, #teacher-status[data-done=ready|error][data-device], #teacher-prompt,
// #teacher-greedy, #teacher-max, #teacher-generate, #teacher-output[data-ids][data-prompt-ids],
// #teacher-gen-status[data-done=ok|error], #teacher-topk tr[data-pos][data-id][data-top-ids][data-top-logprobs].
import * as Comlink from 'comlink';
import type { LocalLoadProgress, LocalModelSource, TeacherGenerateResult } from '../../teacher/local-protocol.ts';
import { formatBytes, h } from '../dom.ts';
import { loadTeacher, onTeacherWorkerError, teacherWorker } from './teacher-client.ts';

/** The default teacher shipped with the app. */
export const DEFAULT_TEACHER_FOLDER = 'models/brown-teacher/';

type Kind = 'folder' | 'files' | 'hub';

const show = (s: string) => JSON.stringify(s).slice(1, -1); // control characters and invisible bytes made visible

function setError(el: HTMLElement, e: unknown): void {
  const err = e as Error;
  el.className = 'error';
  el.textContent = `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
  el.dataset.done = 'error';
}

export function teacherPanel(): HTMLElement {
  // The worker is the page's one teacher worker, shared with the Data stage (teacher-client.ts).
  const worker = teacherWorker;
  onTeacherWorkerError((e) => setError(status, e));

  const kind = h('select', { id: 'teacher-kind' },
    h('option', { value: 'folder' }, 'Folder served with the app'),
    h('option', { value: 'files' }, 'Folder on this computer'),
    h('option', { value: 'hub' }, 'Hugging Face Hub id (needs internet)'));
  const source = h('input', { id: 'teacher-source', type: 'text', value: DEFAULT_TEACHER_FOLDER, size: '32', spellcheck: 'false' });
  const files = h('input', { id: 'teacher-files', type: 'file', multiple: true, webkitdirectory: true, hidden: true });
  const device = h('select', { id: 'teacher-device' },
    h('option', { value: 'auto' }, 'auto (WebGPU, else WASM)'), h('option', { value: 'webgpu' }, 'WebGPU'), h('option', { value: 'wasm' }, 'WASM (CPU)'));
  const loadButton = h('button', { id: 'teacher-load' }, 'Load');
  const progress = h('progress', { id: 'teacher-progress', max: '1', value: '0' });
  const status = h('div', { id: 'teacher-status', class: 'muted' }, 'transformers.js runs the model in its own worker; nothing leaves this machine for a folder or picked files.');

  const prompt = h('textarea', { id: 'teacher-prompt', rows: '3', cols: '40', spellcheck: 'false' });
  prompt.value = 'The';
  const greedy = h('input', { id: 'teacher-greedy', type: 'checkbox', checked: true });
  const maxTokens = h('input', { id: 'teacher-max', type: 'number', min: '1', max: '512', value: '32', size: '4' });
  const temperature = h('input', { id: 'teacher-temperature', type: 'number', min: '0.05', max: '2', step: '0.05', value: '1', size: '4', disabled: true });
  const topK = h('input', { id: 'teacher-k', type: 'number', min: '1', max: '20', value: '5', size: '3' });
  const generateButton = h('button', { id: 'teacher-generate', disabled: true }, 'Generate');
  const stopButton = h('button', { id: 'teacher-stop', disabled: true }, 'Stop');
  const genStatus = h('div', { id: 'teacher-gen-status', class: 'muted' });
  const output = h('div', { id: 'teacher-output', style: 'white-space: pre-wrap; font-family: ui-monospace, monospace; margin: 8px 0' });
  const table = h('table', { id: 'teacher-topk' });

  const syncKind = () => {
    const k = kind.value as Kind;
    source.hidden = k === 'files';
    files.hidden = k !== 'files';
    if (k === 'folder' && source.value.trim() === '') source.value = DEFAULT_TEACHER_FOLDER;
    source.placeholder = k === 'hub' ? 'owner/name' : DEFAULT_TEACHER_FOLDER;
  };
  kind.addEventListener('change', syncKind);
  greedy.addEventListener('change', () => { temperature.disabled = greedy.checked; });

  const sourceOf = (): LocalModelSource => {
    const k = kind.value as Kind;
    if (k === 'files') {
      const list = files.files;
      if (!list || list.length === 0) throw new Error('pick the model folder first (config.json, tokenizer.json, onnx/model.onnx, …)');
      const first = list[0]!.webkitRelativePath.split('/')[0] || 'picked files';
      return { kind: 'files', files: Array.from(list), name: first };
    }
    const v = source.value.trim();
    return k === 'hub' ? { kind: 'hub', id: v } : { kind: 'folder', location: v };
  };

  let loadSeq = 0;
  loadButton.addEventListener('click', async () => {
    const seq = ++loadSeq;
    loadButton.disabled = true;
    generateButton.disabled = true;
    delete status.dataset.done;
    status.className = 'muted';
    status.textContent = 'Loading…';
    progress.value = 0;
    try {
      const info = await loadTeacher(sourceOf(), { device: device.value as 'auto', baseUrl: document.baseURI },
        (p: LocalLoadProgress) => {
          if (seq !== loadSeq || status.dataset.done) return; // a late message of a finished or replaced load
          if (p.total > 0) {
            progress.max = p.total;
            progress.value = p.loaded;
          }
          status.textContent = p.total > 0 ? `${p.message} (${formatBytes(p.loaded)} of ${formatBytes(p.total)})` : p.message;
        });
      progress.max = 1;
      progress.value = 1;
      status.className = 'ok';
      status.textContent = [
        `Loaded ${info.model} on ${info.device.toUpperCase()} (${info.dtype}), vocabulary ${info.vocabSize}.`,
        info.deviceNote, info.hiddenStatesNote,
      ].filter(Boolean).map((x) => x.charAt(0).toUpperCase() + x.slice(1)).join(' ');
      status.dataset.device = info.device;
      status.dataset.done = 'ready';
      generateButton.disabled = false;
    } catch (e) {
      setError(status, e);
    } finally {
      loadButton.disabled = false;
    }
  });

  const render = (r: TeacherGenerateResult) => {
    output.textContent = r.text;
    output.dataset.ids = r.ids.join(',');
    output.dataset.promptIds = r.promptIds.join(',');
    table.replaceChildren(
      h('tr', {}, ...['#', 'token', 'log p', `top ${r.k}`].map((t) => h('th', {}, t))),
      ...r.ids.map((id, j) => {
        const ids = Array.from(r.topIds.subarray(j * r.k, (j + 1) * r.k));
        const lps = Array.from(r.topLogprobs.subarray(j * r.k, (j + 1) * r.k));
        return h('tr', {
          'data-pos': String(j), 'data-id': String(id), 'data-top-ids': ids.join(','), 'data-top-logprobs': lps.map((x) => x.toPrecision(9)).join(','),
        },
        h('td', { class: 'num' }, j), h('td', {}, h('code', {}, show(r.tokenTexts[j]!))), h('td', { class: 'num' }, r.logprobs[j]!.toFixed(3)),
        h('td', {}, ...ids.map((a, i) => h('span', { class: a === id ? 'chip on' : 'chip' }, `${show(r.topTexts[j * r.k + i]!)} ${lps[i]!.toFixed(2)}`))));
      }),
    );
  };

  generateButton.addEventListener('click', async () => {
    generateButton.disabled = true;
    stopButton.disabled = false;
    delete genStatus.dataset.done;
    genStatus.className = 'muted';
    genStatus.textContent = 'Generating…';
    output.textContent = '';
    table.replaceChildren();
    let n = 0;
    try {
      const opts = {
        greedy: greedy.checked, maxNewTokens: Number(maxTokens.value), k: Number(topK.value),
        ...(greedy.checked ? {} : { temperature: Number(temperature.value) }),
      };
      const r = await worker().generate(prompt.value, opts, Comlink.proxy(() => { if (!genStatus.dataset.done) genStatus.textContent = `Generating… ${++n} tokens`; }));
      render(r);
      genStatus.className = 'ok';
      genStatus.textContent = `${r.ids.length} tokens in ${(r.ms / 1000).toFixed(2)} s (${r.finishReason === 'stop' ? 'end of text' : 'length limit'}).`;
      genStatus.dataset.done = 'ok';
    } catch (e) {
      setError(genStatus, e);
    } finally {
      generateButton.disabled = false;
      stopButton.disabled = true;
    }
  });
  stopButton.addEventListener('click', () => { void worker().abort(); });

  syncKind();
  return h('div', { id: 'teacher-panel' },
    h('h3', {}, 'Local model (transformers.js)'),
    h('p', {}, kind, ' ', source, files),
    h('p', {}, h('label', {}, 'Device ', device), ' ', loadButton),
    progress, status,
    h('p', {}, prompt),
    h('p', {},
      h('label', {}, greedy, ' greedy'), ' ', h('label', {}, 'temperature ', temperature), ' ',
      h('label', {}, 'max tokens ', maxTokens), ' ', h('label', {}, 'top-k shown ', topK), ' ', generateButton, ' ', stopButton),
    genStatus, output, table,
    h('p', { class: 'muted' }, 'A remote OpenAI-compatible teacher is configured through the CLI (elicit) for now.'),
  );
}
