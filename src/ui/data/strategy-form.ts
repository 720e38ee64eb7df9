// The strategy form of the Data stage: the strategy select with a one-line explanation of each, its main input
// (prompts one per line or from a dataset, seed instructions, or an editable topic tree), its meaningful options,
// the common sampling settings, and its templates as editable text (variables listed, "reset to default"). Every
// change is checked by the strategy's own validate() (the message is shown next to the form; nothing is stored)
// and the preview shows the first requests the job would send (strategy.preview: messages, options, note) as
// plain text. Model output and user text only ever go in through text nodes.
// Stable hooks: #data-strategy, #data-strategy-what, #data-inputs-from, #data-prompts, #data-seeds, #data-topics,
// #data-topics-status, #data-opt-<strategy>-<key>, #data-max, #data-temperature, #data-seed, #data-batch,
// #data-templates, #data-template-<name> (dots as dashes), #data-template-reset-<name>, #data-form-error,
// #data-blocker, #data-preview[data-state=ok|error|pending][data-requests].
import { strategyByName } from '../../elicit/run.ts';
import {
  configFromForm, otherTeachers, SELF_KNOWLEDGE_MODE_LABELS, STRATEGY_INFO, type FieldSpec, type FormContext, type FormValues, type OtherTeacher,
} from '../../elicit/strategy-info.ts';
import { TEMPLATES, type TemplateName } from '../../elicit/templates.ts';
import { parseTopicText } from '../../elicit/topic-text.ts';
import { topicLeaves } from '../../elicit/curation.ts';
import { STRATEGY_NAMES, type PreviewRequest, type StrategyName } from '../../elicit/types.ts';
import { activeTeacher, on } from '../app-state.ts';
import { errorText, h } from '../dom.ts';
import { appStore, type StudentChoice } from '../services.ts';
import { fillDatasetSelect, listDatasets } from './datasets.ts';
import { studentLink } from './student-link.ts';

/** Short prompts for the default teacher (a small model trained on the Brown corpus: news, fiction, essays). */
export const DEFAULT_PROMPTS = [
  'The history of the city', 'In the morning the farmers', 'The President said that', 'Music and art in the schools',
  'The church stood on the hill', 'A new law was passed', 'The team won the game', 'Science and the modern world',
  'She opened the letter and', 'The river ran through the valley', 'The doctor told him', 'After the war the people',
];

const DEFAULT_SEEDS = [
  'Write a short story about a river and a mill.',
  'Explain why the seasons change during the year.',
  'Describe a small town on market day.',
  'Give three reasons to plant trees in a city.',
];

const DEFAULT_TOPICS = 'The city\n  History of the city\n  Music and art\nThe country\n  Farming\n  The river valley\nScience\n  The modern world';

const tid = (name: TemplateName): string => name.replace(/\./g, '-');

/** What Start needs from the form. */
export interface FormReading {
  name: StrategyName;
  /** The validated config (defaults filled in). */
  config: unknown;
  student: StudentChoice | null;
  /** ensemble: the teachers asked beside the active one (its config's `teachers` after the active teacher's name). */
  members?: OtherTeacher[];
}

export interface StrategyForm {
  el: HTMLElement;
  previewEl: HTMLElement;
  name(): StrategyName;
  /** Reads and validates the form; throws the validator's error (nothing is stored). */
  read(): FormReading;
  /** Why Start cannot run this strategy now (no logprobs, no trained student), or null. */
  blocker(): string | null;
  onChange(fn: () => void): void;
}

function fieldControl(s: StrategyName, f: FieldSpec, dflt: unknown): { el: HTMLElement; read: () => string | boolean | string[] } {
  const id = `data-opt-${s}-${f.key}`;
  if (f.kind === 'bool') {
    const box = h('input', { id, type: 'checkbox', checked: dflt === true });
    return { el: h('label', { class: 'inline' }, box, f.label), read: () => box.checked };
  }
  if (f.kind === 'multi') {
    const boxes = (f.options ?? []).map((o) => h('input', { id: `${id}-${o}`, type: 'checkbox', value: o, checked: Array.isArray(dflt) && dflt.includes(o) }));
    return {
      el: h('div', { id, class: 'field' }, f.label, h('div', { class: 'row tight' }, ...boxes.map((b) => h('label', { class: 'inline' }, b, b.value)))),
      read: () => boxes.filter((b) => b.checked).map((b) => b.value),
    };
  }
  if (f.kind === 'select') {
    const sel = h('select', { id }, ...(f.options ?? []).map((o) => h('option', { value: o }, SELF_KNOWLEDGE_MODE_LABELS[o] ?? o)));
    sel.value = String(dflt);
    return { el: h('label', {}, f.label, sel), read: () => sel.value };
  }
  if (f.kind === 'text') {
    const ta = h('textarea', { id, rows: f.formOnly ? '3' : '2', spellcheck: 'false' });
    ta.value = typeof dflt === 'string' ? dflt : '';
    return { el: h('label', { class: 'grow' }, f.label, ta), read: () => ta.value };
  }
  const input = h('input', {
    id, type: 'number', ...(f.min !== undefined ? { min: String(f.min) } : {}), ...(f.max !== undefined ? { max: String(f.max) } : {}),
    step: f.step !== undefined ? String(f.step) : '1', ...(f.kind === 'auto-int' ? { placeholder: 'auto' } : {}),
  });
  input.value = dflt === null || dflt === undefined ? '' : String(dflt);
  return { el: h('label', {}, f.label, input), read: () => input.value };
}

function templateEditor(name: TemplateName, hint: string): { el: HTMLElement; read: () => string } {
  const spec = TEMPLATES[name];
  const lines = spec.text.split('\n').reduce((a, l) => a + Math.max(1, Math.ceil(l.length / 56)), 0);
  const ta = h('textarea', { id: `data-template-${tid(name)}`, rows: String(Math.min(10, Math.max(2, lines + 1))), spellcheck: 'false' });
  ta.value = spec.text;
  const reset = h('button', { id: `data-template-reset-${tid(name)}`, type: 'button', class: 'secondary small' }, 'Reset to default');
  const vars = spec.vars.length === 0 ? 'no variables'
    : `variables: ${spec.vars.map((v) => `{{${v}}}${(spec.required as readonly string[]).includes(v) ? ' (required)' : ''}`).join(', ')}`;
  const edited = h('span', { class: 'warn small' });
  const sync = (): void => { edited.textContent = ta.value === spec.text ? '' : 'edited'; reset.disabled = ta.value === spec.text; };
  ta.addEventListener('input', sync);
  reset.addEventListener('click', () => {
    ta.value = spec.text;
    sync();
    ta.dispatchEvent(new Event('input', { bubbles: true }));
  });
  sync();
  return {
    el: h('div', { class: 'template' },
      h('div', { class: 'row tight' }, h('strong', {}, name), edited, reset),
      h('div', { class: 'muted small' }, `${hint}; ${vars}.`), ta),
    read: () => ta.value,
  };
}

function previewNodes(reqs: PreviewRequest[]): Node[] {
  if (reqs.length === 0) return [h('p', { class: 'muted' }, 'This configuration sends no teacher requests (the student’s samples are kept by self-consistency alone).')];
  return reqs.map((r, i) => {
    const o = r.options;
    const opts = [`temperature ${o.temperature}`, `max tokens ${o.maxTokens}`, o.seed !== undefined ? `seed ${o.seed}` : 'no seed', o.topLogprobs !== undefined ? `top-k ${o.topLogprobs}` : null]
      .filter(Boolean).join(' · ');
    return h('div', { class: 'preview-req', 'data-template': r.template },
      h('div', { class: 'row tight' }, h('strong', {}, `Request ${i + 1}`), h('span', { class: 'muted small' }, `template ${r.template} · ${opts}`)),
      ...r.messages.map((m) => h('div', { class: 'msg', 'data-role': m.role }, h('span', { class: 'role' }, m.role), h('div', { class: 'text' }, m.content))),
      r.note ? h('div', { class: 'muted small' }, `Note: ${r.note}.`) : null);
  });
}

export function strategyForm(): StrategyForm {
  const strategy = h('select', { id: 'data-strategy' }, ...STRATEGY_NAMES.map((n) => h('option', { value: n }, STRATEGY_INFO[n].title)));
  const what = h('p', { id: 'data-strategy-what', class: 'muted' });

  // Main inputs.
  const inputsFrom = h('select', { id: 'data-inputs-from' });
  const prompts = h('textarea', { id: 'data-prompts', rows: '7', spellcheck: 'false' });
  prompts.value = DEFAULT_PROMPTS.join('\n');
  const promptsLabel = h('label', { class: 'block-label' }, 'Prompts, one per line', prompts);
  const listBlock = h('div', {}, h('div', { class: 'row' }, h('label', {}, 'prompts from', inputsFrom)), promptsLabel);
  const seeds = h('textarea', { id: 'data-seeds', rows: '5', spellcheck: 'false' });
  seeds.value = DEFAULT_SEEDS.join('\n');
  const seedsBlock = h('label', { class: 'block-label' }, 'Seed instructions (the demonstrations), one per line', seeds);
  const topics = h('textarea', { id: 'data-topics', rows: '8', spellcheck: 'false' });
  topics.value = DEFAULT_TOPICS;
  const topicsStatus = h('div', { id: 'data-topics-status', class: 'muted small' });
  const topicsBlock = h('div', {},
    h('label', { class: 'block-label' }, 'Topic tree: one topic per line, subtopics indented under their topic (or JSON)', topics), topicsStatus);

  // Strategy options, one block per strategy (values survive switching back and forth).
  const fieldReaders = new Map<StrategyName, Map<string, () => string | boolean | string[]>>();
  const optionBlocks = new Map<StrategyName, HTMLElement>();
  const templateReaders = new Map<StrategyName, Map<TemplateName, () => string>>();
  const templateBlocks = new Map<StrategyName, HTMLElement>();
  for (const n of STRATEGY_NAMES) {
    const info = STRATEGY_INFO[n];
    const readers = new Map<string, () => string | boolean | string[]>();
    const controls = info.fields.map((f) => {
      const c = fieldControl(n, f, info.defaults[f.key]);
      readers.set(f.key, c.read);
      return c.el;
    });
    fieldReaders.set(n, readers);
    optionBlocks.set(n, h('div', { id: `data-options-${n}`, class: 'row', hidden: true }, ...controls));
    const treaders = new Map<TemplateName, () => string>();
    const editors = info.templates.map((t) => {
      const e = templateEditor(t.name, t.hint);
      treaders.set(t.name, e.read);
      return e.el;
    });
    templateReaders.set(n, treaders);
    templateBlocks.set(n, h('div', { id: `data-templates-${n}`, hidden: true }, ...editors));
  }
  const student = studentLink();

  // Common sampling settings.
  const maxTokens = h('input', { id: 'data-max', type: 'number', min: '1', max: '100000', value: '32' });
  const temperature = h('input', { id: 'data-temperature', type: 'number', min: '0', max: '2', step: '0.05', value: '0.7' });
  const seed = h('input', { id: 'data-seed', type: 'number', class: 'seed', min: '0', max: String(2 ** 31 - 1), placeholder: 'none' });
  seed.value = String(Math.floor(Math.random() * 2 ** 31));
  const batch = h('input', { id: 'data-batch', type: 'number', min: '1', max: '256', value: '2' });
  const batchLabel = h('label', {}, h('span', {}, 'prompts per commit'), batch);
  const templatesCount = h('span', {});
  const templates = h('details', { id: 'data-templates' },
    h('summary', {}, 'Templates: the prompts sent to the teacher ', templatesCount), ...templateBlocks.values());
  const formError = h('div', { id: 'data-form-error', class: 'error', role: 'alert' });
  const blockerEl = h('div', { id: 'data-blocker', class: 'note bad', hidden: true });
  const preview = h('div', { id: 'data-preview', 'data-state': 'pending', 'data-requests': '0', 'aria-live': 'polite' });

  const listeners: (() => void)[] = [];
  const name = (): StrategyName => strategy.value as StrategyName;

  const values = (): FormValues => {
    const n = name();
    const fields: FormValues['fields'] = {};
    for (const [k, read] of fieldReaders.get(n)!) fields[k] = read();
    const tpl: FormValues['templates'] = {};
    for (const [t, read] of templateReaders.get(n)!) tpl[t] = read();
    const info = STRATEGY_INFO[n];
    return {
      lines: info.input === 'seeds' ? seeds.value : prompts.value,
      inputsFrom: inputsFrom.value === '' ? null : inputsFrom.value,
      topics: topics.value,
      fields,
      common: { temperature: temperature.value, maxTokens: maxTokens.value, seed: seed.value, batchSize: batch.value },
      templates: tpl,
    };
  };

  /** The active teacher as the ensemble names it (a remote one's server is where other models are looked for). */
  const context = (): FormContext => {
    const t = activeTeacher();
    return { active: t ? { model: t.model, baseURL: t.kind === 'remote' && typeof t.ref.baseURL === 'string' ? t.ref.baseURL : null } : null };
  };

  const read = (): FormReading => {
    const n = name();
    const v = values();
    const config = strategyByName(n).validate(configFromForm(n, v, context()));
    return {
      name: n, config, student: STRATEGY_INFO[n].needsStudent ? student.choice() : null,
      ...(n === 'ensemble' ? { members: otherTeachers(String(v.fields.others ?? ''), context().active) } : {}),
    };
  };

  const blocker = (): string | null => {
    const info = STRATEGY_INFO[name()];
    const t = activeTeacher();
    if (info.needsLogprobs && t && t.logprobs === false) {
      return `The active teacher (${t.label}) returns no token log-probabilities, and the feature strategy stores them. Choose a teacher that returns logprobs in step 1 (a local model always does), or use labeling for sequence-level data.`;
    }
    if (name() === 'ensemble' && !t) return 'Choose the first teacher of the ensemble in step 1 (it also judges): the others are named below, one per line.';
    if (info.needsStudent && !student.available()) return 'Train a student first (step 3), then come back: this strategy needs the student’s own samples.';
    return null;
  };

  let seq = 0;
  const check = async (): Promise<void> => {
    const my = ++seq;
    const n = name();
    const info = STRATEGY_INFO[n];
    if (info.input === 'topics') {
      try {
        const leaves = topicLeaves(parseTopicText(topics.value)).length;
        topicsStatus.className = 'muted small';
        topicsStatus.textContent = `${leaves} leaf topic${leaves === 1 ? '' : 's'}.`;
      } catch (e) {
        topicsStatus.className = 'error small';
        topicsStatus.textContent = errorText(e);
      }
    }
    const b = blocker();
    blockerEl.hidden = b === null;
    blockerEl.textContent = b ?? '';
    let reqs: PreviewRequest[];
    try {
      const config = strategyByName(n).validate(configFromForm(n, values(), context()));
      reqs = await strategyByName(n).preview(config, await appStore(), 3);
    } catch (e) {
      if (my !== seq) return;
      formError.textContent = errorText(e);
      preview.dataset.state = 'error';
      preview.dataset.requests = '0';
      preview.replaceChildren(h('p', { class: 'muted' }, 'Fix the form (see the message above) to see the requests this job would send.'));
      for (const fn of listeners) fn();
      return;
    }
    if (my !== seq) return;
    formError.textContent = '';
    preview.dataset.state = 'ok';
    preview.dataset.requests = String(reqs.length);
    preview.replaceChildren(...previewNodes(reqs));
    for (const fn of listeners) fn();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = (): void => {
    preview.dataset.state = 'pending';
    clearTimeout(timer);
    timer = setTimeout(() => void check(), 200);
  };

  const show = (): void => {
    const n = name();
    const info = STRATEGY_INFO[n];
    what.textContent = info.what;
    listBlock.hidden = info.input !== 'list';
    promptsLabel.hidden = inputsFrom.value !== '';
    seedsBlock.hidden = info.input !== 'seeds';
    topicsBlock.hidden = info.input !== 'topics';
    for (const [k, el] of optionBlocks) el.hidden = k !== n;
    for (const [k, el] of templateBlocks) el.hidden = k !== n;
    templatesCount.textContent = `(${info.templates.length}, editable)`;
    student.el.hidden = !info.needsStudent;
    batchLabel.hidden = !info.hasBatch;
    (batchLabel.firstChild as HTMLElement).textContent = n === 'evol' ? 'instructions per commit' : 'prompts per commit';
    batch.placeholder = info.batchAuto ? 'auto' : '';
    schedule();
  };

  // Job steps emit 'datasets' often: the preview is made again only when the chosen dataset went away.
  const refreshDatasets = async (first = false): Promise<void> => {
    const before = inputsFrom.value;
    try {
      fillDatasetSelect(inputsFrom, await listDatasets(), [{ value: '', label: 'the list below' }]);
    } catch { /* the store's error is shown by the job panel */ }
    if (first || inputsFrom.value !== before) show();
  };

  strategy.addEventListener('change', show);
  inputsFrom.addEventListener('change', show);
  const el = h('div', { id: 'data-form' },
    h('div', { class: 'row' }, h('label', {}, 'strategy', strategy)), what,
    listBlock, seedsBlock, topicsBlock,
    ...optionBlocks.values(), student.el,
    h('div', { class: 'row' },
      h('label', {}, 'max tokens', maxTokens), h('label', {}, 'temperature', temperature),
      h('label', {}, 'seed (empty: none)', seed), batchLabel),
    templates, formError, blockerEl);
  el.addEventListener('input', schedule);
  el.addEventListener('change', schedule);
  student.onChange(schedule);
  on('teacher', schedule);
  on('datasets', () => void refreshDatasets());
  void refreshDatasets(true);

  return {
    el,
    previewEl: preview,
    name,
    read,
    blocker,
    onChange(fn) {
      listeners.push(fn);
    },
  };
}
