// The Teacher stage's local side: a transformers.js teacher in its own worker (workers/teacher.worker.ts). The
// default teacher shipped with the app loads with one click; another model comes from a folder served with the
// app, files picked on disk, or a Hugging Face Hub id. Loading shows progress (WebGPU when the browser has an
// adapter, else WASM) and makes the model the active teacher (session.ts); then "Try it" generates from a prompt and
// shows each generated token with its top-k alternatives. The status follows every load of the worker, including
// one started after a reload or by a Data job. Model output is untrusted: it only ever goes in through textContent.
// Stable hooks for tests: #teacher-default, #teacher-kind, #teacher-source, #teacher-files, #teacher-device,
// #teacher-load, #teacher-progress, #teacher-status[data-done=ready|error][data-device], #teacher-prompt,
// #teacher-greedy, #teacher-max, #teacher-generate, #teacher-output[data-ids][data-prompt-ids],
// #teacher-gen-status[data-done=ok|error], #teacher-topk tr[data-pos][data-id][data-top-ids][data-top-logprobs].
import * as Comlink from 'comlink';
import type { LocalModelSource, TeacherGenerateResult } from '../../teacher/local-protocol.ts';
import { formatBytes, h, showError } from '../dom.ts';
import { DEFAULT_TEACHER_FOLDER } from '../services.ts';
import { loadLocalPrefs, loadLocal, saveLocalPrefs, type LocalDeviceChoice } from './session.ts';
import { latestLoadId, onTeacherLoad, onTeacherWorkerError, teacherWorker } from './teacher-client.ts';

type Kind = 'folder' | 'files' | 'hub';

const show = (s: string) => JSON.stringify(s).slice(1, -1); // control characters and invisible bytes made visible

function setError(el: HTMLElement, e: unknown): void {
  showError(el, e, { onDismiss: () => { el.className = 'muted'; } });
  el.dataset.done = 'error';
}

export function teacherPanel(): HTMLElement {
  // The worker is the page's one teacher worker, shared with the Data stage (teacher-client.ts).
  const worker = teacherWorker;
  const prefs = loadLocalPrefs(DEFAULT_TEACHER_FOLDER);

  const defaultButton = h('button', { id: 'teacher-default', type: 'button' }, 'Load the default teacher');
  const defaultState = h('span', { id: 'teacher-default-state', class: 'muted small' }, 'One click: about 12 MB from this app, nothing to install.');
  const kind = h('select', { id: 'teacher-kind' },
    h('option', { value: 'folder' }, 'Folder served with the app'),
    h('option', { value: 'files' }, 'Folder on this computer'),
    h('option', { value: 'hub' }, 'Hugging Face Hub id (needs internet)'));
  kind.value = prefs.kind;
  const source = h('input', { id: 'teacher-source', type: 'text', class: 'wide', value: prefs.kind === 'files' ? DEFAULT_TEACHER_FOLDER : prefs.source, spellcheck: 'false' });
  const files = h('input', { id: 'teacher-files', type: 'file', multiple: true, webkitdirectory: true, hidden: true });
  const device = h('select', { id: 'teacher-device' },
    h('option', { value: 'auto' }, 'auto (WebGPU, else WASM)'), h('option', { value: 'webgpu' }, 'WebGPU'), h('option', { value: 'wasm' }, 'WASM (CPU)'));
  device.value = prefs.device;
  const loadButton = h('button', { id: 'teacher-load', type: 'button', class: 'secondary' }, 'Load');
  const progress = h('progress', { id: 'teacher-progress', max: '1', value: '0' });
  const status = h('div', { id: 'teacher-status', class: 'muted' }, 'Nothing loaded yet. transformers.js runs the model in its own worker; nothing leaves this machine for a served folder or picked files.');

  const prompt = h('textarea', { id: 'teacher-prompt', rows: '3', spellcheck: 'false' });
  prompt.value = 'The';
  const greedy = h('input', { id: 'teacher-greedy', type: 'checkbox', checked: true });
  const maxTokens = h('input', { id: 'teacher-max', type: 'number', min: '1', max: '512', value: '32' });
  const temperature = h('input', { id: 'teacher-temperature', type: 'number', min: '0.05', max: '2', step: '0.05', value: '1', disabled: true });
  const topK = h('input', { id: 'teacher-k', type: 'number', min: '1', max: '20', value: '5' });
  const generateButton = h('button', { id: 'teacher-generate', type: 'button', disabled: true }, 'Generate');
  const stopButton = h('button', { id: 'teacher-stop', type: 'button', class: 'secondary', disabled: true }, 'Stop');
  const genStatus = h('div', { id: 'teacher-gen-status', class: 'muted' }, 'Load a model first.');
  const output = h('div', { id: 'teacher-output', class: 'text teacher-output' });
  const table = h('table', { id: 'teacher-topk' });

  const save = () => saveLocalPrefs({ kind: kind.value as Kind, source: source.value.trim(), device: device.value as LocalDeviceChoice });
  const syncKind = () => {
    const k = kind.value as Kind;
    source.hidden = k === 'files';
    files.hidden = k !== 'files';
    if (k === 'folder' && source.value.trim() === '') source.value = DEFAULT_TEACHER_FOLDER;
    source.placeholder = k === 'hub' ? 'owner/name' : DEFAULT_TEACHER_FOLDER;
  };
  kind.addEventListener('change', () => { syncKind(); save(); });
  source.addEventListener('change', save);
  device.addEventListener('change', save);
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
    if (v === '') throw new Error(k === 'hub' ? 'enter a Hub model id (owner/name)' : 'enter the folder (e.g. models/brown-teacher/)');
    return k === 'hub' ? { kind: 'hub', id: v } : { kind: 'folder', location: v };
  };

  // The status follows every load of the shared worker, whoever started it.
  let shownLoad = 0;
  const busy = (on: boolean) => {
    loadButton.disabled = on;
    defaultButton.disabled = on;
    if (on) generateButton.disabled = true;
  };
  onTeacherLoad((e) => {
    if (e.id < latestLoadId()) return; // a late message of a replaced load
    if (e.phase === 'start') {
      shownLoad = e.id;
      defaultState.className = 'muted small';
      defaultState.textContent = 'One click: about 12 MB from this app, nothing to install.';
      busy(true);
      delete status.dataset.done;
      delete status.dataset.device;
      status.className = 'muted';
      status.textContent = 'Loading…';
      progress.max = 1;
      progress.value = 0;
    } else if (e.id !== shownLoad) {
      return;
    } else if (e.phase === 'progress') {
      if (status.dataset.done) return;
      const p = e.progress;
      if (p.total > 0) {
        progress.max = p.total;
        progress.value = p.loaded;
      }
      status.textContent = p.total > 0 ? `${p.message} (${formatBytes(p.loaded)} of ${formatBytes(p.total)})` : p.message;
    } else if (e.phase === 'done') {
      const info = e.info;
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
      const isDefault = e.source.kind === 'folder' && e.source.location.replace(/^\.\//, '') === DEFAULT_TEACHER_FOLDER;
      defaultState.className = isDefault ? 'ok' : 'muted small';
      defaultState.textContent = isDefault ? '✓ Loaded' : 'One click: about 12 MB from this app, nothing to install.';
      genStatus.className = 'muted';
      if (!genStatus.dataset.done) genStatus.textContent = `Write a prompt and press Generate to see ${info.model}'s answer and each token's alternatives.`;
      busy(false);
    } else {
      progress.value = 0;
      setError(status, e.error);
      busy(false);
    }
  });
  onTeacherWorkerError((e) => { setError(status, e); busy(false); });

  const load = async (src: () => LocalModelSource) => {
    let s: LocalModelSource;
    try {
      s = src();
    } catch (e) {
      setError(status, e);
      return;
    }
    save();
    await loadLocal(s, device.value as LocalDeviceChoice).catch(() => undefined); // shown by the listener above
  };
  loadButton.addEventListener('click', () => void load(sourceOf));
  defaultButton.addEventListener('click', () => {
    kind.value = 'folder';
    source.value = DEFAULT_TEACHER_FOLDER;
    syncKind();
    void load(() => ({ kind: 'folder', location: DEFAULT_TEACHER_FOLDER }));
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
        h('td', {}, h('div', { class: 'chips' }, ...ids.map((a, i) => h('span', { class: a === id ? 'chip on' : 'chip' }, `${show(r.topTexts[j * r.k + i]!)} ${lps[i]!.toFixed(2)}`)))));
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
    h('div', { class: 'subcard' },
      h('h3', {}, 'Suggested: the default teacher'),
      h('p', {}, 'brown-teacher is a small model (2.9M parameters, held-out perplexity 52) trained on the Brown corpus and shipped with this app. ' +
        'It writes English-like text, not answers: enough to try every step offline, on this computer.'),
      h('div', { class: 'buttons' }, defaultButton, defaultState)),
    h('div', { class: 'subcard' },
      h('h3', {}, 'Or another model'),
      h('p', { class: 'muted small' }, 'A transformers.js text-generation folder (config.json, tokenizer files, onnx/model.onnx): served with the app, picked from this computer, or a Hugging Face Hub id.'),
      h('div', { class: 'row' },
        h('label', {}, 'Where it comes from', kind),
        h('label', { class: 'grow' }, 'Folder or Hub id', source, files)),
      h('div', { class: 'row' }, h('label', {}, 'Device', device), loadButton)),
    h('div', { class: 'teacher-load-status' }, progress, status),
    h('div', { class: 'subcard' },
      h('h3', {}, 'Try it'),
      h('label', { class: 'block', for: 'teacher-prompt' }, 'Prompt'),
      prompt,
      h('div', { class: 'row' },
        h('label', { class: 'inline' }, greedy, 'greedy'), h('label', {}, 'temperature', temperature),
        h('label', {}, 'max tokens', maxTokens), h('label', {}, 'top-k shown', topK), h('div', { class: 'buttons' }, generateButton, stopButton)),
      genStatus, output, h('div', { class: 'scroll' }, table)),
  );
}
