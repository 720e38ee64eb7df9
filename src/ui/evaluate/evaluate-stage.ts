// The Evaluate stage: a run's latest checkpoint on its held-out data — loss and perplexity, KL to the teacher and
// top-1 agreement (when they share a tokenizer), the teacher's own perplexity on the same tokens (a teacher mixture:
// the mixture's, and rows for each of its teachers), preference accuracy for DPO/IPO runs — optionally next to a
// second run; and teacher and student(s) side by side on the user's own prompt. Model output is untrusted: it only
// ever goes in as text.
// Stable hooks: #eval-run, #eval-compare, #eval-go, #eval-status[data-done=ok|empty|error] (empty: nothing held out), #eval-results
// tr[data-metric] td[data-run][data-value], #eval-prompt, #eval-max, #eval-temp, #eval-generate, #eval-gen-status,
// #eval-out-teacher, #eval-out-student, #eval-out-compare.
import { methodOf } from '../../engine/runs/methods.ts';
import type { EvalReport, RunInfo } from '../../protocol.ts';
import { activeTeacher, loadPref, on, savePref, setStageStatus } from '../app-state.ts';
import { errorText, h } from '../dom.ts';
import { engine, proxy } from '../engine-client.ts';
import { runsStore, trainedRuns } from '../runs-store.ts';

interface Metric {
  id: string;
  label: string;
  value: (r: EvalReport) => number | undefined;
  digits: number;
}

const METRICS: Metric[] = [
  { id: 'ppl', label: 'held-out perplexity (lower is better)', value: (r) => r.ppl, digits: 2 },
  { id: 'loss', label: 'held-out loss (nats per token)', value: (r) => r.loss, digits: 4 },
  { id: 'kl', label: 'KL(teacher ‖ student) per token', value: (r) => r.klToTeacher, digits: 4 },
  { id: 'top1', label: 'top-1 agreement with the teacher', value: (r) => r.top1Agreement, digits: 3 },
  { id: 'teacher-ppl', label: 'the teacher’s perplexity on the same tokens', value: (r) => r.teacher?.ppl, digits: 2 },
  { id: 'pairs', label: 'held-out preference accuracy', value: (r) => r.pairAccuracy, digits: 3 },
  { id: 'tokens', label: 'held-out target tokens', value: (r) => r.tokens, digits: 0 },
  { id: 'step', label: 'checkpoint step', value: (r) => r.step, digits: 0 },
];

/** Runs that learned from a teacher mixture: KL, agreement and perplexity against each of its teachers (the rows
 *  above are against the mixture), one set of rows per teacher label. */
function perTeacherMetrics(reports: readonly EvalReport[]): Metric[] {
  const labels = [...new Set(reports.flatMap((r) => r.perTeacher?.map((t) => t.label) ?? []))];
  return labels.flatMap((label, i): Metric[] => {
    const of = (r: EvalReport) => r.perTeacher?.find((t) => t.label === label);
    return [
      { id: `kl-teacher-${i + 1}`, label: `KL(${label} ‖ student) per token`, value: (r) => of(r)?.klToTeacher, digits: 4 },
      { id: `top1-teacher-${i + 1}`, label: `top-1 agreement with ${label}`, value: (r) => of(r)?.top1Agreement, digits: 3 },
      { id: `ppl-teacher-${i + 1}`, label: `${label}’s perplexity on the same tokens`, value: (r) => of(r)?.ppl, digits: 2 },
    ];
  });
}

export function evaluateStage(): Node {
  const runSel = h('select', { id: 'eval-run', class: 'wide' });
  const compareSel = h('select', { id: 'eval-compare', class: 'wide' });
  const go = h('button', { id: 'eval-go', disabled: true }, 'Evaluate');
  const status = h('div', { id: 'eval-status', class: 'muted' }, 'Pick a trained run.');
  const results = h('table', { id: 'eval-results' });
  const notes = h('ul', { id: 'eval-notes', class: 'muted small' });
  const prompt = h('textarea', { id: 'eval-prompt', rows: '3', spellcheck: 'false', 'aria-label': 'Your prompt for the teacher and the students' });
  prompt.value = loadPref('eval-prompt', 'The history of the city');
  const maxTokens = h('input', { id: 'eval-max', type: 'number', min: '1', max: '256', value: '40' });
  const temp = h('input', { id: 'eval-temp', type: 'number', min: '0', max: '2', step: '0.1', value: '0' });
  const genBtn = h('button', { id: 'eval-generate', disabled: true }, 'Generate side by side');
  const genStatus = h('div', { id: 'eval-gen-status', class: 'muted' });
  const outBox = (id: string, title: string) => {
    const text = h('div', { id, class: 'text' });
    const head = h('h4', {}, title);
    return { box: h('div', { class: 'subcard' }, head, text), text, head };
  };
  const outTeacher = outBox('eval-out-teacher', 'Teacher');
  const outStudent = outBox('eval-out-student', 'Student');
  const outCompare = outBox('eval-out-compare', 'Compared run');
  let runs: RunInfo[] = [];

  const runLabel = (r: RunInfo) => `${r.name} — ${methodOf(r.spec).describe(r.spec, r.train)}, step ${r.checkpointStep}/${r.train.steps}`;
  const refresh = () => {
    runs = trainedRuns(runsStore.list());
    const want = runSel.value || loadPref<string>('eval-run', ''), wantCmp = compareSel.value || loadPref<string>('eval-compare', '');
    runSel.replaceChildren(...runs.slice().reverse().map((r) => h('option', { value: r.id }, runLabel(r))));
    compareSel.replaceChildren(h('option', { value: '' }, 'none'), ...runs.slice().reverse().map((r) => h('option', { value: r.id }, runLabel(r))));
    if (runs.some((r) => r.id === want)) runSel.value = want;
    compareSel.value = runs.some((r) => r.id === wantCmp) && wantCmp !== runSel.value ? wantCmp : '';
    go.disabled = runs.length === 0;
    genBtn.disabled = runs.length === 0 && !activeTeacher();
    if (runs.length === 0) { status.className = 'muted'; status.textContent = 'No trained run yet: train one in step 3 (a few steps are enough to see it work).'; }
  };
  runsStore.subscribe((_, change) => { if (change !== 'step') refresh(); });
  on('teacher', () => refresh());
  runSel.addEventListener('change', () => savePref('eval-run', runSel.value));
  compareSel.addEventListener('change', () => savePref('eval-compare', compareSel.value));

  const render = (reports: { run: RunInfo; report: EvalReport }[]) => {
    const cols = reports.map((x) => x.run);
    results.replaceChildren(
      h('tr', {}, h('th', {}, ''), ...cols.map((r) => h('th', { class: 'num' }, r.name))),
      ...[...METRICS, ...perTeacherMetrics(reports.map((x) => x.report))].filter((m) => reports.some((x) => m.value(x.report) !== undefined && Number.isFinite(m.value(x.report)!))).map((m) =>
        h('tr', { 'data-metric': m.id }, h('td', {}, m.label), ...reports.map((x) => {
          const v = m.value(x.report);
          return h('td', { class: 'num', 'data-run': x.run.id, 'data-value': v === undefined ? '' : String(v) }, v === undefined || !Number.isFinite(v) ? '—' : m.digits === 0 ? v.toLocaleString('en') : v.toFixed(m.digits));
        }))),
    );
    notes.replaceChildren(...reports.flatMap((x) => x.report.notes.map((n) => h('li', {}, `${x.run.name}: ${n}`))));
  };

  go.addEventListener('click', async () => {
    go.disabled = true;
    delete status.dataset.done;
    status.className = 'muted';
    const chosen = [runSel.value, compareSel.value].filter((id, i, a) => id && a.indexOf(id) === i).map((id) => runs.find((r) => r.id === id)!);
    try {
      const out: { run: RunInfo; report: EvalReport }[] = [];
      for (const run of chosen) {
        status.textContent = `Evaluating ${run.name}…`;
        out.push({ run, report: await engine().evaluate({ runId: run.id }, proxy((m: string) => { status.textContent = `Evaluating ${run.name}: ${m}`; })) });
        render(out);
      }
      const main = out[0]!.report;
      status.dataset.done = 'ok';
      if (main.ppl === undefined && main.pairAccuracy !== undefined) {
        // A reward model: its measure is held-out pair accuracy (it has no perplexity).
        status.className = 'ok';
        status.textContent = `Held-out preference accuracy ${(main.pairAccuracy * 100).toFixed(1)}% (a reward model: it ranks answers, so it has no perplexity).`;
        setStageStatus('evaluate', { state: 'done', text: `pairs ${(main.pairAccuracy * 100).toFixed(0)}%` });
      } else if (main.ppl === undefined) {
        // Nothing held out was measured: a warning that says why, never a number.
        status.className = 'warn';
        status.textContent = `No held-out evaluation for ${out[0]!.run.name}: ${main.notes.join('; ') || 'no held-out tokens'}.`;
        status.dataset.done = 'empty';
        setStageStatus('evaluate', { state: 'ready', text: 'no held-out data' });
      } else {
        status.className = 'ok';
        status.textContent = `Held-out perplexity ${main.ppl.toFixed(2)}${main.teacher ? ` (the teacher: ${main.teacher.ppl.toFixed(2)})` : ''} on ${main.tokens.toLocaleString('en')} tokens.`;
        setStageStatus('evaluate', { state: 'done', text: `ppl ${main.ppl.toFixed(1)}${main.teacher ? ` · teacher ${main.teacher.ppl.toFixed(1)}` : ''}` });
      }
    } catch (e) {
      status.className = 'error';
      status.textContent = errorText(e);
      status.dataset.done = 'error';
    } finally {
      go.disabled = false;
    }
  });

  genBtn.addEventListener('click', async () => {
    genBtn.disabled = true;
    delete genStatus.dataset.done;
    genStatus.className = 'muted';
    genStatus.textContent = 'Generating…';
    savePref('eval-prompt', prompt.value);
    for (const o of [outTeacher, outStudent, outCompare]) o.text.textContent = '';
    const p = prompt.value;
    const opts = { maxNewTokens: Number(maxTokens.value), temperature: Number(temp.value), seed: 1 };
    const errors: string[] = [];
    const t = activeTeacher();
    outTeacher.head.textContent = t ? `Teacher: ${t.label}` : 'Teacher: none chosen (step 1)';
    const jobs: Promise<void>[] = [];
    if (t) {
      jobs.push(t.teacher.chat([{ role: 'user', content: p }], { maxTokens: opts.maxNewTokens, temperature: opts.temperature, seed: 1 })
        .then((r) => { outTeacher.text.textContent = r.choices[0]?.text ?? ''; }, (e) => { errors.push(`teacher: ${errorText(e)}`); }));
    }
    const student = async (id: string, o: typeof outStudent) => {
      const run = runs.find((r) => r.id === id);
      if (!run) { o.box.hidden = true; return; }
      o.box.hidden = false;
      o.head.textContent = `Student: ${run.name}`;
      try {
        o.text.textContent = (await engine().generate({ model: { runId: id }, prompt: p, ...opts })).text;
      } catch (e) { errors.push(`${run.name}: ${errorText(e)}`); }
    };
    // The student runs on the GPU after the teacher's call is sent (a local teacher has its own worker).
    await student(runSel.value, outStudent);
    await student(compareSel.value, outCompare);
    await Promise.all(jobs);
    genStatus.className = errors.length ? 'error' : 'ok';
    genStatus.textContent = errors.length ? errors.join('\n') : 'Done (greedy when the temperature is 0).';
    genStatus.dataset.done = errors.length ? 'error' : 'ok';
    genBtn.disabled = false;
  });

  refresh();
  void runsStore.load().catch((e) => { status.className = 'error'; status.textContent = errorText(e); });
  outCompare.box.hidden = true;
  return h('div', { id: 'evaluate-panel' },
    h('div', { class: 'subcard' },
      h('h3', {}, 'Held-out metrics'),
      h('div', { class: 'row' }, h('label', { class: 'field' }, 'run', runSel), h('label', { class: 'field' }, 'compare with', compareSel)),
      h('div', { class: 'buttons' }, go), status, h('div', { class: 'scroll' }, results), notes),
    h('div', { class: 'subcard' },
      h('h3', {}, 'Side by side on your prompt'),
      h('label', { class: 'block' }, 'Prompt (the teacher and the students answer it)', prompt),
      h('div', { class: 'row' }, h('label', { class: 'field' }, 'max new tokens', maxTokens), h('label', { class: 'field' }, 'temperature (0 = greedy)', temp), genBtn),
      genStatus,
      h('div', { class: 'side-by-side' }, outTeacher.box, outStudent.box, outCompare.box)),
  );
}
