// The Data stage's view of an ensemble dataset (src/elicit/ensemble.ts): how often each teacher's answer was kept,
// and "choose again": a new dataset with the answers another rule picks (consensus, the judge's grade, or one
// teacher's), made from the stored answers without asking any teacher again (ensemble-choice.ts).
import { ensembleSummary, rechooseEnsemble, type ChoiceRule } from '../../elicit/ensemble-choice.ts';
import { emit } from '../app-state.ts';
import { errorText, h } from '../dom.ts';
import { appStore } from '../services.ts';

export interface EnsemblePanel {
  el: HTMLElement;
  /** Shows the tally of `datasetId` (hidden when it holds no ensemble records). */
  show(datasetId: string): Promise<void>;
}

export function ensemblePanel(): EnsemblePanel {
  const tally = h('p', { id: 'ensemble-tally', class: 'small' });
  const rule = h('select', { id: 'ensemble-rule' });
  const make = h('button', { id: 'ensemble-rechoose', type: 'button', class: 'secondary' }, 'Make a dataset with these answers');
  const note = h('p', { id: 'ensemble-note', class: 'muted small', role: 'status' });
  const el = h('div', { id: 'ensemble-panel', class: 'note', hidden: true },
    tally, h('div', { class: 'row' }, h('label', {}, 'choose again by', rule), make), note);
  let current = '';

  make.addEventListener('click', async () => {
    if (!current) return;
    make.disabled = true;
    note.className = 'muted small';
    note.textContent = 'Making the dataset…';
    try {
      const v = rule.value;
      const r: ChoiceRule = v === 'consensus' || v === 'judge' ? v : { teacher: v.slice('teacher:'.length) };
      const out = await rechooseEnsemble(await appStore(), current, r);
      const left = out.skipped > 0 ? ` (${out.skipped} prompt${out.skipped === 1 ? '' : 's'} without such an answer left out)` : '';
      note.textContent = `A new dataset holds ${out.records} records${left}: pick it under “Your datasets” or in the Train stage.`;
      emit('datasets', undefined);
    } catch (e) {
      note.className = 'error small';
      note.textContent = errorText(e);
    } finally {
      make.disabled = false;
    }
  });

  return {
    el,
    async show(datasetId) {
      current = datasetId;
      let s;
      try {
        s = await ensembleSummary(await appStore(), datasetId);
      } catch (e) {
        el.hidden = false;
        tally.textContent = `The teachers' answers could not be read: ${errorText(e)}`;
        return;
      }
      if (current !== datasetId) return;
      el.hidden = s.records === 0;
      if (s.records === 0) return;
      tally.textContent = `Kept answers of ${s.records} prompts: ` + s.teachers.map((t) =>
        `${t.model} ${t.kept} (${Math.round((100 * t.kept) / s.records)}%, mean agreement ${t.meanConsensus.toFixed(3)}${t.meanGrade !== null ? `, mean grade ${t.meanGrade.toFixed(1)}` : ''})`).join(' · ');
      const graded = s.teachers.some((t) => t.meanGrade !== null);
      const keep = rule.value;
      rule.replaceChildren(
        h('option', { value: 'consensus' }, 'consensus (most agreed-on answer)'),
        ...(graded ? [h('option', { value: 'judge' }, 'the judge’s grade')] : []),
        ...s.teachers.map((t) => h('option', { value: `teacher:${t.model}` }, `always ${t.model}’s answer`)),
      );
      if ([...rule.options].some((o) => o.value === keep)) rule.value = keep;
    },
  };
}
