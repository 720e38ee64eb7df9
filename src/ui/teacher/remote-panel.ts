// The Teacher stage's remote side: any OpenAI-compatible server as the teacher. A preset (OpenAI, vLLM, llama.cpp,
// Ollama, …) fills the base URL and shows its notes; the API key is a password field kept in memory, or on this
// device when the user ticks "Remember" (keys.ts); the model is picked from what GET /models lists (free text
// always allowed) — asked when a key is entered, by "List the models" or by Test connection, never just because the
// stage opened or a preset was picked (nothing is requested before the user asks for it); limits and prices go to the RemoteTeacher (the Data stage counts cost from them). "Test
// connection" (src/teacher/connection.ts) sends one tiny request and says plainly what works (token-level KD or only
// sequence-level) or what failed and what to do; a passing test, or "Use this teacher", makes it the active teacher.
// Server text is untrusted and goes in through textContent only. The key appears nowhere in the DOM but the
// password field. Stable hooks: #remote-preset, #remote-notes, #remote-base-url, #remote-key, #remote-remember,
// #remote-remember-warning, #remote-model, #remote-models (datalist), #remote-models-refresh, #remote-models-status[data-count],
// #remote-concurrency, #remote-rpm, #remote-price-in, #remote-price-out, #remote-test, #remote-use,
// #remote-report[data-result=testing|ok|error|need-key][data-problem][data-logprobs=yes|no|unknown][data-kd].
import { activeTeacher, setStageStatus } from '../app-state.ts';
import { errorText, h } from '../dom.ts';
import { seconds, testConnection, type ConnectionReport, hostOf } from '../../teacher/connection.ts';
import { PRESETS } from '../../teacher/presets.ts';
import { LazyRemoteTeacher } from '../../teacher/lazy-remote.ts';
import type { PresetName } from '../../teacher/types.ts';
import { apiKeyFor, forgetAllApiKeys, keyBase, setApiKey } from './keys.ts';
import { activateRemote, clearWaitingForKey, loadRemotePrefs, remoteWaitingForKey, saveRemotePrefs, type RemotePrefs } from './session.ts';

const PRESET_ORDER: PresetName[] = ['openai', 'openrouter', 'together', 'groq', 'vllm', 'llamacpp', 'ollama', 'lmstudio', 'custom'];

/** Server text with control characters made visible (newlines kept). */
function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function remotePanel(): HTMLFormElement {
  const prefs = loadRemotePrefs();
  if (!prefs.remember) forgetAllApiKeys(); // "remember" off: no key may be left on this device

  const preset = h('select', { id: 'remote-preset' }, ...PRESET_ORDER.map((p) => h('option', { value: p }, PRESETS[p].label)));
  preset.value = prefs.preset;
  const notes = h('ul', { id: 'remote-notes', class: 'muted small teacher-notes' });
  const baseURL = h('input', { id: 'remote-base-url', type: 'url', class: 'wide', spellcheck: 'false', autocomplete: 'off', value: prefs.baseURL });
  const key = h('input', { id: 'remote-key', type: 'password', class: 'wide', spellcheck: 'false', autocomplete: 'off' });
  key.value = apiKeyFor(prefs.baseURL);
  const remember = h('input', { id: 'remote-remember', type: 'checkbox', checked: prefs.remember });
  const rememberWarning = h('p', { id: 'remote-remember-warning', class: 'note bad small', hidden: !prefs.remember },
    'The key is then stored unencrypted in this browser\'s localStorage: anyone using this browser profile can read it. ' +
      'Leave this off on a shared computer; untick it to delete the stored key.');
  const model = h('input', { id: 'remote-model', type: 'text', class: 'wide', list: 'remote-models', spellcheck: 'false', autocomplete: 'off', value: prefs.model, placeholder: 'e.g. gpt-4o-mini' });
  const modelList = h('datalist', { id: 'remote-models' });
  const modelsStatus = h('div', { id: 'remote-models-status', class: 'muted small' });
  const modelsButton = h('button', { id: 'remote-models-refresh', type: 'button', class: 'secondary' }, 'List the models');
  const concurrency = h('input', { id: 'remote-concurrency', type: 'number', min: '1', max: '1024', step: '1', value: String(prefs.maxConcurrency) });
  const rpm = h('input', { id: 'remote-rpm', type: 'number', min: '0', step: '1', value: String(prefs.requestsPerMinute) });
  const priceIn = h('input', { id: 'remote-price-in', type: 'number', min: '0', step: '0.01', value: String(prefs.pricePer1MInput) });
  const priceOut = h('input', { id: 'remote-price-out', type: 'number', min: '0', step: '0.01', value: String(prefs.pricePer1MOutput) });
  const testButton = h('button', { id: 'remote-test', type: 'button' }, 'Test connection');
  const useButton = h('button', { id: 'remote-use', type: 'button', class: 'secondary' }, 'Use this teacher');
  const report = h('div', { id: 'remote-report', class: 'subcard teacher-report', hidden: true, 'aria-live': 'polite' });

  const numberOf = (el: HTMLInputElement, lo: number, d: number) => {
    const v = Number(el.value);
    return el.value.trim() !== '' && Number.isFinite(v) && v >= lo ? v : d;
  };
  const form = (): RemotePrefs => ({
    preset: preset.value as PresetName, baseURL: baseURL.value.trim(), model: model.value.trim(),
    maxConcurrency: Math.max(1, Math.round(numberOf(concurrency, 1, 4))), requestsPerMinute: numberOf(rpm, 0, 0),
    pricePer1MInput: numberOf(priceIn, 0, 0), pricePer1MOutput: numberOf(priceOut, 0, 0), remember: remember.checked,
  });
  const save = () => saveRemotePrefs(form());
  const settingsOf = (f: RemotePrefs) => {
    const { remember: _r, ...s } = f;
    return s;
  };

  const renderNotes = () => {
    const p = PRESETS[preset.value as PresetName];
    notes.replaceChildren(
      // How the key is kept is this stage's to say (memory, or this device when remembered): the preset's own line
      // about it would contradict "Remember".
      ...p.notes.filter((n) => !/API key is kept in memory/.test(n)).map((n) => h('li', {}, n)),
      h('li', {}, p.needsApiKey ? 'Needs an API key.' : 'Usually no API key (unless the server was started with one).'),
    );
    key.placeholder = p.needsApiKey ? 'your API key' : '(none needed unless the server asks)';
    baseURL.placeholder = p.baseURL || 'http://host:port/v1';
  };

  // ---- the models the server lists ----
  let listSeq = 0;
  let listTimer: ReturnType<typeof setTimeout> | undefined;
  const showModels = (ids: string[] | null, note?: string) => {
    modelList.replaceChildren(...(ids ?? []).map((id) => h('option', { value: id })));
    modelsStatus.dataset.count = String(ids?.length ?? 0);
    if (!ids) {
      modelsStatus.textContent = note ?? '';
      return;
    }
    if (ids.length === 0) {
      modelsStatus.textContent = 'The server lists no models: type the model name.';
      return;
    }
    const shown = ids.slice(0, 24);
    modelsStatus.replaceChildren(
      `The server lists ${ids.length} model${ids.length === 1 ? '' : 's'}${ids.length > shown.length ? ` (first ${shown.length} shown; type to search them all)` : ''}: `,
      h('span', { class: 'chips teacher-model-chips' }, ...shown.map((id) => {
        const b = h('button', { type: 'button', class: 'chip teacher-chip', 'data-model': id }, id);
        b.addEventListener('click', () => { model.value = id; save(); });
        return b;
      })),
    );
    if (model.value.trim() === '') {
      model.value = ids[0]!;
      save();
    }
  };
  /** Asks the server for its models; `asked`: the user pressed "List the models" (say why nothing is asked). */
  const listModels = async (asked: boolean) => {
    const seq = ++listSeq;
    const f = form();
    const k = key.value;
    const missing = f.baseURL === '' ? 'Enter the base URL first.' : PRESETS[f.preset].needsApiKey && k === '' ? `Enter your API key first: ${PRESETS[f.preset].label} lists its models only with one.` : null;
    if (missing) {
      if (asked) showModels(null, missing);
      return;
    }
    modelsStatus.textContent = 'Asking the server for its models…';
    try {
      const t = new LazyRemoteTeacher({ preset: f.preset, baseURL: f.baseURL, apiKey: k, model: f.model || 'unset', maxRetries: 0, timeoutMs: 10_000 });
      const ids = await t.listModels();
      if (seq === listSeq) showModels(ids);
    } catch (e) {
      if (seq === listSeq) showModels(null, `Could not list the models: ${errorText(e)}. Press Test connection to see why, or type the model name.`);
    }
  };
  const listSoon = () => {
    clearTimeout(listTimer);
    listTimer = setTimeout(() => void listModels(false), 300);
  };

  // ---- the key: one per base URL, in memory (and on this device when remembered) ----
  let keyBaseShown = keyBase(baseURL.value);
  key.addEventListener('input', () => setApiKey(keyBaseShown, key.value, remember.checked));
  key.addEventListener('change', () => {
    clearWaitingForKey();
    if (key.value !== '') listSoon(); // a key was entered: the models it may use
  });
  modelsButton.addEventListener('click', () => { clearTimeout(listTimer); void listModels(true); });
  remember.addEventListener('change', () => {
    rememberWarning.hidden = !remember.checked;
    if (remember.checked) setApiKey(keyBaseShown, key.value, true);
    else forgetAllApiKeys();
    save();
  });
  /** Base URL changed: by hand, the typed key goes along when the new URL has none; by preset, the new URL's key. */
  const baseChanged = (byPreset: boolean) => {
    const b = keyBase(baseURL.value);
    if (b === keyBaseShown) return;
    const stored = apiKeyFor(b);
    if (stored !== '' || byPreset) key.value = stored;
    else if (key.value !== '') setApiKey(b, key.value, remember.checked);
    keyBaseShown = b;
    showModels(null, '');
  };
  baseURL.addEventListener('change', () => { baseChanged(false); save(); });
  preset.addEventListener('change', () => {
    const p = PRESETS[preset.value as PresetName];
    if (p.baseURL !== '') baseURL.value = p.baseURL;
    baseChanged(true);
    renderNotes();
    save();
  });
  for (const el of [model, concurrency, rpm, priceIn, priceOut]) el.addEventListener('change', save);

  // ---- test and activation ----
  let last: { baseURL: string; model: string; key: string; report: ConnectionReport } | null = null;
  const row = (label: string, value: Node | string, cls?: string) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', cls ? { class: cls } : {}, value));
  const yesNo = (v: boolean | null) => (v === true ? 'yes' : v === false ? 'no' : 'not known');

  const renderReport = (r: ConnectionReport) => {
    report.hidden = false;
    report.dataset.result = r.ok ? 'ok' : 'error';
    report.dataset.logprobs = r.kd === 'token' ? 'yes' : r.kd === 'sequence' ? 'no' : 'unknown';
    if (r.problem) report.dataset.problem = r.problem;
    else delete report.dataset.problem;
    if (r.kd) report.dataset.kd = r.kd;
    else delete report.dataset.kd;
    const parts: Node[] = [h('p', { id: 'remote-summary', class: r.ok ? 'ok' : 'bad' }, r.summary)];
    if (r.ok) {
      parts.push(h('table', { class: 'teacher-facts' },
        row('Reachable', 'yes'),
        row('Latency', r.latencyMs === null ? '—' : `${seconds(r.latencyMs)} for a ${r.sample?.length ?? 0}-character answer`),
        row('Model that answered', r.servedModel ?? r.model),
        row('Token log-probabilities', yesNo(r.logprobs)),
        row('Top alternatives per token', yesNo(r.topLogprobs)),
        row('Its answer', visible(r.sample ?? ''), 'text')));
      parts.push(h('p', { id: 'remote-kd', class: r.kd === 'token' ? 'note' : 'note bad' }, r.kdNote));
      parts.push(h('p', { class: 'muted small' }, 'This is now the active teacher: go on to the Data step.'));
    } else {
      parts.push(h('table', { class: 'teacher-facts' }, row('Reachable', r.reachable ? 'yes: the server answered' : 'no')));
      if (r.advice.length) parts.push(h('p', {}, 'What to do:'), h('ul', { id: 'remote-advice' }, ...r.advice.map((a) => h('li', {}, a))));
      if (r.detail) parts.push(h('p', { class: 'muted small error-detail' }, `Details: ${r.detail}`));
    }
    if (r.modelsNote) parts.push(h('p', { class: 'muted small' }, r.modelsNote));
    if (r.warnings.length) parts.push(h('ul', { class: 'muted small' }, ...r.warnings.map((w) => h('li', {}, w))));
    report.replaceChildren(...parts);
  };

  const activate = (f: RemotePrefs, k: string, r: ConnectionReport | null) => {
    activateRemote({
      settings: settingsOf(f), apiKey: k, logprobs: r ? (r.kd === 'token' ? true : r.kd === 'sequence' ? false : null) : null,
      logprobsOff: r?.logprobsRejected ?? false,
    });
  };
  const sameAsActive = (f: RemotePrefs) => {
    const a = activeTeacher();
    return a?.kind === 'remote' && keyBase(String(a.ref.baseURL)) === keyBase(f.baseURL) && a.model === f.model;
  };

  testButton.addEventListener('click', async () => {
    const f = form();
    const k = key.value;
    save();
    testButton.disabled = true;
    useButton.disabled = true;
    report.hidden = false;
    report.dataset.result = 'testing';
    delete report.dataset.problem;
    delete report.dataset.logprobs;
    delete report.dataset.kd;
    report.replaceChildren(h('p', { class: 'muted' }, `Testing ${hostOf(f.baseURL)}: listing the models, then one short chat request with log-probabilities…`));
    if (!activeTeacher()) setStageStatus('teacher', { state: 'busy', text: 'testing the connection…' });
    try {
      const r = await testConnection({
        preset: f.preset, baseURL: f.baseURL, apiKey: k, model: f.model, maxConcurrency: f.maxConcurrency, requestsPerMinute: f.requestsPerMinute,
      }, { pageOrigin: location.origin, timeoutMs: 20_000 });
      if (r.models) showModels(r.models);
      if (r.ok && f.model === '') {
        model.value = r.model;
        f.model = r.model;
        save();
      }
      last = { baseURL: keyBase(f.baseURL), model: r.model, key: k, report: r };
      renderReport(r);
      if (r.ok) {
        activate(f, k, r);
      } else if (!activeTeacher() || sameAsActive(f)) {
        setStageStatus('teacher', { state: 'error', text: `connection failed: ${r.summary}`.slice(0, 160) });
      }
    } finally {
      testButton.disabled = false;
      useButton.disabled = false;
    }
  });

  useButton.addEventListener('click', () => {
    const f = form();
    const k = key.value;
    save();
    try {
      if (f.model === '') throw new Error('enter the model name first (or press Test connection, which picks the first model the server lists)');
      if (k === '' && PRESETS[f.preset].needsApiKey) throw new Error(`${PRESETS[f.preset].label} needs an API key: enter it first`);
      const r = last && last.baseURL === keyBase(f.baseURL) && last.model === f.model && last.key === k && last.report.ok ? last.report : null;
      activate(f, k, r);
      report.hidden = false;
      if (!r) {
        report.dataset.result = 'ok';
        report.dataset.logprobs = 'unknown';
        delete report.dataset.problem;
        delete report.dataset.kd;
        report.replaceChildren(
          h('p', { class: 'ok' }, `Using ${f.model} at ${hostOf(f.baseURL)} as the teacher (not tested).`),
          h('p', { class: 'muted small' }, 'Whether it returns token log-probabilities is not known yet: Test connection tells, and so will the first answers of a Data job.'),
        );
      }
    } catch (e) {
      report.hidden = false;
      report.dataset.result = 'error';
      report.dataset.problem = 'config';
      report.replaceChildren(h('p', { class: 'bad' }, `Cannot use these settings: ${errorText(e).replace(/^Teacher config: /, '')}`));
    }
  });

  // After a reload: the remote teacher that was active waits for its key (it was not remembered).
  const waiting = remoteWaitingForKey();
  if (waiting) {
    report.hidden = false;
    report.dataset.result = 'need-key';
    report.replaceChildren(h('p', { class: 'note' },
      `${waiting.settings.model} at ${hostOf(waiting.settings.baseURL)} was your teacher before this page was reloaded, but its API key was not ` +
        'remembered on this device: enter your API key and press Test connection (or tick "Remember" to keep it next time).'));
  }

  renderNotes();
  // A form, so that Enter in a field tests the connection (and the password field sits in a form, as browsers want).
  const el = h('form', { id: 'teacher-remote-panel', autocomplete: 'off', novalidate: true },
    h('div', { class: 'subcard' },
      h('h3', {}, 'Server'),
      h('div', { class: 'row' }, h('label', {}, 'Preset', preset), h('label', { class: 'grow' }, 'Base URL (ends in /v1)', baseURL)),
      notes,
      h('div', { class: 'row' }, h('label', { class: 'grow' }, 'API key', key)),
      h('div', { class: 'row' }, h('label', { class: 'inline' }, remember, 'Remember the key on this device')),
      rememberWarning,
      h('p', { class: 'muted small' }, 'The key is sent only to this base URL, in the Authorization header. Unless remembered it lives in this tab\'s memory and is gone after a reload; it is never stored with your data, jobs or exports.'),
      h('div', { class: 'row' }, h('label', { class: 'grow' }, 'Model', model, modelList), modelsButton),
      modelsStatus),
    h('div', { class: 'subcard' },
      h('h3', {}, 'Limits and prices'),
      h('div', { class: 'row' },
        h('label', {}, 'Max concurrent requests', concurrency), h('label', {}, 'Requests per minute (0 = no limit)', rpm)),
      h('div', { class: 'row' },
        h('label', {}, 'Price per 1M input tokens', priceIn), h('label', {}, 'Price per 1M output tokens', priceOut)),
      h('p', { class: 'muted small' }, 'Prices (in your currency, 0 = free or unknown) let the Data step show what a job costs.')),
    h('div', { class: 'buttons' }, testButton, useButton),
    report,
  );
  el.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!testButton.disabled) testButton.click();
  });
  return el;
}
