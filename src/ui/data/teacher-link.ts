// The Data stage's side of the teacher: which teacher a new job uses (the active one chosen in the Teacher stage,
// or — one click, or implicitly on Start when none is chosen — the default teacher shipped with the app, loaded
// into the page's teacher worker), and which teacher a resumed job uses (the active one when it is the job's,
// else resolveJobTeacher(ref) from the Teacher stage; for a local model from a served folder or the Hub the Data
// stage can load it again itself, as it always could). The bar at the top of the stage says which teacher is in
// use, or that none is and what to do. Stable hooks: #data-teacher-bar[data-kind=none|local|remote],
// #data-use-default, #data-goto-teacher, #data-device.
import { activeTeacher, gotoStage, on, type ActiveTeacher } from '../app-state.ts';
import { h, showError } from '../dom.ts';
import { DEFAULT_TEACHER_FOLDER, loadLocal, reloadableSource, resolveJobTeacher, type LocalDeviceChoice, type ReloadableSource, type TeacherRef } from '../services.ts';

/** Loads `source` into the teacher worker: active always, or ('if-local') unless a remote teacher is active. */
function loadWithStatus(source: ReloadableSource, device: LocalDeviceChoice, onStatus: (text: string) => void, activate: 'always' | 'if-local'): Promise<ActiveTeacher> {
  onStatus('Loading the teacher…');
  return loadLocal(source, device, (p) => onStatus(`Loading the teacher: ${p.message}`), activate);
}

function isLocalRef(ref: TeacherRef): boolean {
  return ref.kind === undefined || ref.kind === 'local';
}

/** Whether the active teacher is the one `ref` names. */
export function refMatches(t: ActiveTeacher, ref: TeacherRef): boolean {
  if (t.model !== ref.model) return false;
  if (isLocalRef(ref)) return t.kind === 'local';
  return t.kind === 'remote' && t.ref.baseURL === ref.baseURL && (t.ref.preset ?? null) === (ref.preset ?? null);
}

export interface TeacherLink {
  el: HTMLElement;
  /** The teacher for a new job: the active one, else the default teacher loaded now on the chosen device. */
  forNewJob(onStatus: (text: string) => void): Promise<ActiveTeacher>;
  /** The teacher of a stored job (see the file banner); throws an error that says what to do. */
  forJob(ref: TeacherRef, onStatus: (text: string) => void): Promise<ActiveTeacher>;
}

export function teacherLink(): TeacherLink {
  const device = h('select', { id: 'data-device', title: 'Where the default teacher runs when this stage loads it' },
    h('option', { value: 'auto' }, 'auto (WebGPU, else WASM)'), h('option', { value: 'webgpu' }, 'WebGPU'), h('option', { value: 'wasm' }, 'WASM (CPU)'));
  const useDefault = h('button', { id: 'data-use-default', type: 'button' }, 'Use the default teacher');
  const gotoTeacher = h('button', { id: 'data-goto-teacher', type: 'button', class: 'secondary' }, 'Choose a teacher (step 1)');
  const line = h('div', { class: 'text-line' });
  const status = h('div', { id: 'data-teacher-status', class: 'muted small' });
  const deviceLabel = h('label', { class: 'inline' }, 'default teacher on ', device);
  const bar = h('div', { id: 'data-teacher-bar', class: 'note', 'data-kind': 'none' },
    line, h('div', { class: 'buttons' }, useDefault, deviceLabel, gotoTeacher), status);
  let loading: Promise<ActiveTeacher> | null = null;

  const render = (): void => {
    const t = activeTeacher();
    bar.dataset.kind = t ? t.kind : 'none';
    if (t) {
      const lp = t.logprobs === false ? ' It returns no token log-probabilities: the feature strategy needs them.' : '';
      line.textContent = `Teacher: ${t.label}.${lp}`;
      gotoTeacher.textContent = 'Change the teacher (step 1)';
      useDefault.textContent = t.kind === 'local' && t.model === 'brown-teacher' ? 'Load the default teacher again' : 'Use the default teacher instead';
      useDefault.className = 'secondary';
    } else {
      line.textContent = 'No teacher chosen yet. Start uses the default teacher (brown-teacher: a small model shipped with this app, run in this tab), or choose another one first.';
      gotoTeacher.textContent = 'Choose a teacher (step 1)';
      useDefault.textContent = 'Use the default teacher';
      useDefault.className = '';
    }
  };
  on('teacher', render);
  render();

  const loadDefault = (onStatus: (text: string) => void): Promise<ActiveTeacher> => {
    loading ??= loadWithStatus({ kind: 'folder', location: DEFAULT_TEACHER_FOLDER }, device.value as LocalDeviceChoice, onStatus, 'always').finally(() => { loading = null; });
    return loading;
  };

  gotoTeacher.addEventListener('click', () => gotoStage('teacher'));
  useDefault.addEventListener('click', async () => {
    useDefault.disabled = true;
    status.className = 'muted small';
    try {
      await loadDefault((s) => { status.textContent = s; });
      status.textContent = '';
    } catch (e) {
      showError(status, e, { prefix: 'The default teacher did not load: ' });
    } finally {
      useDefault.disabled = false;
    }
  });

  return {
    el: bar,
    async forNewJob(onStatus) {
      return activeTeacher() ?? loadDefault(onStatus);
    },
    async forJob(ref, onStatus) {
      const cur = activeTeacher();
      if (cur && refMatches(cur, ref)) return cur;
      try {
        return await resolveJobTeacher(ref);
      } catch (e) {
        const source = isLocalRef(ref) ? reloadableSource(ref.source) : null;
        if (!source) throw e;
        // A model from a served folder or the Hub: load it again here (a resumed job runs on WASM if it ran there).
        try {
          return await loadWithStatus(source, ref.device === 'wasm' ? 'wasm' : 'auto', onStatus, 'if-local');
        } catch {
          throw e;
        }
      }
    },
  };
}
