// The Teacher stage (step 1): which large model the student learns from. A toggle picks the kind — a local model
// running in this tab (transformers.js; the default teacher shipped with the app loads with one click) or a remote
// OpenAI-compatible API — and a line at the top says which teacher is active now (app-state.ts), with the way on
// to the Data step. The kind shown, the forms' settings and the active teacher survive a reload (session.ts).
// Stable hooks: #teacher-mode-local, #teacher-mode-remote (radios), #teacher-local-pane, #teacher-remote-pane,
// #teacher-active[data-state], #teacher-next.
import { activeTeacher, gotoStage, on, stageStatus, type ActiveTeacher } from '../app-state.ts';
import { h } from '../dom.ts';
import { teacherPanel } from './local-panel.ts';
import { remotePanel } from './remote-panel.ts';
import { loadKindPref, remoteWaitingForKey, restoreActiveTeacher, saveKindPref } from './session.ts';

const KINDS = [
  { id: 'local', title: 'Local model in this tab', what: 'Runs on this computer (WebGPU or WASM). Free, private, works offline; small models.' },
  { id: 'remote', title: 'Remote API (OpenAI-compatible)', what: 'OpenAI, vLLM, llama.cpp, Ollama, LM Studio, … Large models; your server or a paid API.' },
] as const;

export function teacherStage(): Node {
  // The local panel follows loads from the start, a reload's included; the remote one shows a key the reload needs.
  const localPane = h('div', { id: 'teacher-local-pane' }, teacherPanel());
  restoreActiveTeacher();
  const remotePane = h('div', { id: 'teacher-remote-pane' }, remotePanel());
  const radios = new Map<'local' | 'remote', HTMLInputElement>();
  const cards = KINDS.map((k) => {
    const radio = h('input', { id: `teacher-mode-${k.id}`, type: 'radio', name: 'teacher-mode', value: k.id });
    radios.set(k.id, radio);
    return h('label', { class: 'teacher-mode', for: `teacher-mode-${k.id}` },
      radio, h('span', { class: 'teacher-mode-text' }, h('strong', {}, k.title), h('span', { class: 'muted small' }, k.what)));
  });
  const show = (kind: 'local' | 'remote') => {
    radios.get(kind)!.checked = true;
    localPane.hidden = kind !== 'local';
    remotePane.hidden = kind !== 'remote';
  };
  for (const [kind, radio] of radios) {
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      show(kind);
      saveKindPref(kind);
    });
  }

  const activeText = h('span', { id: 'teacher-active-text' });
  const next = h('button', { id: 'teacher-next', type: 'button', hidden: true }, 'Next: make data →');
  next.addEventListener('click', () => gotoStage('data'));
  const active = h('div', { id: 'teacher-active', class: 'note teacher-active', 'data-state': 'none' }, activeText, next);
  const renderActive = (t: ActiveTeacher | null) => {
    next.hidden = !t;
    if (t) {
      active.dataset.state = 'active';
      const kd = t.logprobs === true ? 'token-level KD possible' : t.logprobs === false ? 'sequence-level KD only (no log-probabilities)' : 'log-probabilities not tested yet';
      activeText.textContent = `Active teacher: ${t.label} — ${kd}.`;
      return;
    }
    const st = stageStatus('teacher');
    active.dataset.state = st.state === 'busy' ? 'busy' : st.state === 'ready' ? 'waiting' : 'none';
    const waiting = st.state === 'ready' ? remoteWaitingForKey() : null;
    activeText.textContent = st.state === 'busy' ? `No active teacher yet: ${st.text}`
      : waiting ? `No active teacher yet: ${waiting.settings.model} needs its API key again (it was not remembered on this device). Enter your API key below and press Test connection.`
        : 'No active teacher yet. The quickest start: "Load the default teacher" below (one click, nothing to install).';
  };
  on('teacher', renderActive);
  on('stage', ({ id }) => { if (id === 'teacher') renderActive(activeTeacher()); });

  show(loadKindPref());
  renderActive(activeTeacher());
  return h('div', { id: 'teacher-stage' },
    active,
    h('fieldset', { class: 'teacher-modes' }, h('legend', {}, 'What kind of teacher?'), ...cards),
    localPane,
    remotePane,
  );
}
