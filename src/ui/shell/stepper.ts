// The workflow shell: five steps in order (Teacher → Data → Train → Evaluate → Export), each with its status line
// (src/ui/app-state.ts setStageStatus), one stage in focus at a time. The step in focus survives a reload
// (localStorage) and follows the URL hash (#teacher, #data, …) so a step can be linked. Stable hooks:
// #step-<id>[aria-current][data-state], #stage-<id> (hidden unless in focus).
import { gotoStage, loadPref, on, savePref, STAGE_IDS, stageStatus, type StageId, type StageStatus } from '../app-state.ts';
import { h } from '../dom.ts';

export interface StageDef {
  id: StageId;
  title: string;
  /** What the stage is for, one sentence a newcomer reads. */
  what: string;
  panel: () => Node;
}

const MARK: Record<StageStatus['state'], string> = { todo: '', ready: '●', busy: '⟳', done: '✓', error: '!' };

function isStage(s: unknown): s is StageId {
  return typeof s === 'string' && (STAGE_IDS as readonly string[]).includes(s);
}

export function stepper(stages: StageDef[]): { nav: HTMLElement; main: HTMLElement } {
  const buttons = new Map<StageId, HTMLButtonElement>();
  const lines = new Map<StageId, HTMLElement>();
  const sections = new Map<StageId, HTMLElement>();
  const list = h('ol', { class: 'steps' });
  stages.forEach((s, i) => {
    const line = h('span', { class: 'step-status' });
    const button = h('button', { id: `step-${s.id}`, class: 'step', type: 'button', 'data-state': 'todo' },
      h('span', { class: 'step-num' }, String(i + 1)), h('span', { class: 'step-title' }, s.title), line);
    button.addEventListener('click', () => gotoStage(s.id));
    buttons.set(s.id, button);
    lines.set(s.id, line);
    list.append(h('li', {}, button));
    sections.set(s.id, h('section', { id: `stage-${s.id}`, class: 'stage', hidden: true },
      h('h2', {}, `${i + 1}. ${s.title}`), h('p', { class: 'muted lead' }, s.what), s.panel()));
  });

  const render = (id: StageId) => {
    const st = stageStatus(id);
    const b = buttons.get(id)!;
    b.dataset.state = st.state;
    b.querySelector('.step-num')!.textContent = MARK[st.state] && st.state !== 'ready' ? MARK[st.state] : String(stages.findIndex((s) => s.id === id) + 1);
    lines.get(id)!.textContent = st.text;
    b.title = st.text;
  };
  for (const s of stages) render(s.id);
  on('stage', ({ id }) => render(id));

  let current: StageId | null = null;
  const focus = (id: StageId, fromHash = false) => {
    if (id === current) return;
    current = id;
    for (const [sid, sec] of sections) sec.hidden = sid !== id;
    for (const [sid, b] of buttons) {
      if (sid === id) b.setAttribute('aria-current', 'step');
      else b.removeAttribute('aria-current');
    }
    savePref('stage', id);
    if (!fromHash && location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
  };
  on('goto', (id) => focus(id));
  addEventListener('hashchange', () => {
    const id = location.hash.slice(1);
    if (isStage(id)) focus(id, true);
  });
  const fromHash = location.hash.slice(1);
  const saved = loadPref<unknown>('stage', 'teacher');
  focus(isStage(fromHash) ? fromHash : isStage(saved) ? saved : 'teacher', isStage(fromHash));

  return {
    nav: h('nav', { class: 'stepper', 'aria-label': 'Workflow' }, list),
    main: h('main', {}, ...sections.values()),
  };
}
