// The Data stage (step 2): the distillation data in this browser's IndexedDB, in the order a newcomer follows —
// "Make data with the teacher" (strategy, options, templates, preview; then the job: Start / Stop / Resume,
// progress, records), "Import a dataset" (JSONL or Parquet), then "Your datasets" (browse, search, delete, export).
// The stepper's line for this stage says what is there ("3 datasets · 240 records") or what runs now.
import { setStageStatus, on, type StageStatus } from '../app-state.ts';
import { h } from '../dom.ts';
import { dataPanel } from './data-panel.ts';
import { datasetBrowser } from './dataset-browser.ts';
import { listDatasets } from './datasets.ts';
import { importPanel } from './import-panel.ts';
import { strategyForm } from './strategy-form.ts';
import { teacherLink } from './teacher-link.ts';

export function dataStage(): Node {
  const teachers = teacherLink();
  const form = strategyForm();
  let activity: StageStatus | null = null;

  const refreshStatus = async (): Promise<void> => {
    if (activity) return setStageStatus('data', activity);
    try {
      const all = await listDatasets();
      const records = all.reduce((a, d) => a + d.counts.records, 0);
      const pairs = all.reduce((a, d) => a + d.counts.pairs, 0);
      if (activity) return;
      if (all.length === 0) return setStageStatus('data', { state: 'todo', text: '' });
      const text = `${all.length} dataset${all.length === 1 ? '' : 's'} · ${records.toLocaleString('en')} records${pairs > 0 ? ` · ${pairs.toLocaleString('en')} pairs` : ''}`;
      setStageStatus('data', { state: records + pairs > 0 ? 'done' : 'ready', text });
    } catch {
      /* the job panel shows why the store could not be opened */
    }
  };
  const panel = dataPanel(form, teachers, (s) => {
    activity = s;
    void refreshStatus();
  });
  on('datasets', () => void refreshStatus());
  void refreshStatus();

  return h('div', { id: 'data-stage', class: 'data-stage' },
    teachers.el,
    h('div', { class: 'subcard', id: 'data-make' },
      h('h3', {}, 'Make data with the teacher'),
      h('div', { class: 'panel-grid' },
        h('div', { class: 'pane' }, h('h4', {}, 'Strategy and options'), form.el),
        h('div', { class: 'pane' },
          h('h4', {}, 'Preview: the first requests the job will send'), form.previewEl,
          h('h4', {}, 'Run'), panel))),
    h('div', { class: 'subcard', id: 'data-import-card' }, h('h3', {}, 'Import a dataset'), importPanel()),
    h('div', { class: 'subcard', id: 'data-datasets-card' }, h('h3', {}, 'Your datasets'), datasetBrowser()),
  );
}
