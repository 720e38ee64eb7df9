// "Import a dataset": a JSONL file in one of the three chat schemas the store reads (OpenAI messages, Alpaca,
// ShareGPT; detected from the file or chosen) or a Parquet file (the same layouts), from a file picker or dropped
// on the drop zone, into a new dataset (named after the file) or a chosen one. All-or-nothing: the store's
// importers validate every line / row first and write nothing when one is bad (their error names the line or row
// and is shown as is); a new dataset made for a refused file is deleted again. The result says how many records
// were written and how many duplicates were skipped.
// Stable hooks: #data-import-file, #data-import-drop, #data-import-format, #data-import-target, #data-import-name,
// #data-import-status[data-state=idle|running|done|error][data-written][data-duplicates][data-dataset][data-kind=records|pairs].
// Preference pairs (TRL's preference JSONL: src/store/pairs-io.ts) are detected by their first line, or chosen.
import { importJsonl, JSONL_FORMATS, readLines, type JsonlFormat } from '../../store/io.ts';
import { importPairsJsonl, isPairLine } from '../../store/pairs-io.ts';
import type { DistillStore } from '../../store/store.ts';
import { emit, on } from '../app-state.ts';
import { h, showError } from '../dom.ts';
import { appStore } from '../services.ts';
import { fillDatasetSelect, listDatasets } from './datasets.ts';

const FORMAT_LABELS: Record<JsonlFormat | 'auto' | 'preference', string> = {
  auto: 'detect from the file',
  preference: 'preference pairs ({"prompt", "chosen", "rejected"}: TRL DPO / reward data)',
  openai: 'OpenAI messages ({"messages": [...]})',
  alpaca: 'Alpaca ({"instruction", "input", "output"})',
  sharegpt: 'ShareGPT ({"conversations": [{"from", "value"}]})',
};

/** Whether the file's first non-blank line is a preference pair (has "chosen" and "rejected"). */
async function firstLineIsPair(file: Blob): Promise<boolean> {
  for await (const line of readLines(file)) {
    if (line.trim() === '') continue;
    try { return isPairLine(JSON.parse(line)); } catch { return false; }
  }
  return false;
}

async function isParquet(file: Blob, name: string): Promise<boolean> {
  if (/\.parquet$/i.test(name)) return true;
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  return head.length === 4 && head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31; // "PAR1"
}

export function importPanel(): HTMLElement {
  const file = h('input', { id: 'data-import-file', type: 'file', accept: '.jsonl,.json,.ndjson,.parquet,application/json' });
  const format = h('select', { id: 'data-import-format' }, ...(['auto', ...JSONL_FORMATS, 'preference'] as const).map((f) => h('option', { value: f }, FORMAT_LABELS[f])));
  const target = h('select', { id: 'data-import-target', class: 'wide' });
  const name = h('input', { id: 'data-import-name', type: 'text', class: 'wide', placeholder: 'the file’s name', maxlength: '200' });
  const nameLabel = h('label', {}, 'new dataset’s name', name);
  const status = h('div', { id: 'data-import-status', class: 'muted', 'data-state': 'idle', role: 'status' });
  const drop = h('div', { id: 'data-import-drop', class: 'dropzone', tabindex: '0' },
    'Drop a .jsonl or .parquet file here, or ', h('label', { class: 'link' }, 'pick one', file));
  let busy = false;

  const setStatus = (state: 'idle' | 'running' | 'done', text: string, cls = 'muted'): void => {
    status.dataset.state = state;
    status.className = cls;
    status.textContent = text;
  };
  /** An error until the user dismisses it or imports again. */
  const setError = (e: unknown): void => {
    status.dataset.state = 'error';
    showError(status, e, { onDismiss: () => { status.dataset.state = 'idle'; } });
  };

  const refreshTargets = async (): Promise<void> => {
    try {
      fillDatasetSelect(target, await listDatasets(), [{ value: '', label: 'a new dataset' }]);
    } catch { /* the job panel shows the store's error */ }
    nameLabel.hidden = target.value !== '';
  };
  target.addEventListener('change', () => { nameLabel.hidden = target.value !== ''; });
  on('datasets', () => void refreshTargets());
  void refreshTargets();

  const run = async (f: File): Promise<void> => {
    if (busy) return;
    busy = true;
    file.disabled = true;
    delete status.dataset.written;
    delete status.dataset.duplicates;
    delete status.dataset.dataset;
    delete status.dataset.kind;
    setStatus('running', `Reading ${f.name}…`);
    let store: DistillStore | null = null;
    let created: string | null = null;
    try {
      store = await appStore();
      const parquet = await isParquet(f, f.name);
      let datasetId = target.value;
      if (datasetId === '' || !(await store.getDataset(datasetId))) {
        const dsName = (name.value.trim() || f.name || 'imported').slice(0, 200);
        datasetId = created = (await store.createDataset({ name: dsName, description: `imported from ${f.name}` })).id;
      }
      if (parquet && format.value === 'preference') throw new Error(`${f.name} is Parquet: preference pairs are imported from JSONL ({"prompt", "chosen", "rejected"} per line); export them as JSONL, or pick another format for chat records`);
      if (!parquet && (format.value === 'preference' || (format.value === 'auto' && await firstLineIsPair(f)))) {
        const r = await importPairsJsonl(store, datasetId, f, { sourceName: f.name.slice(0, 200) });
        const dups = r.duplicatesInFile + r.duplicatesInDataset;
        Object.assign(status.dataset, { written: String(r.written), duplicates: String(dups), dataset: datasetId, kind: 'pairs' });
        setStatus('done', `Imported ${f.name} (JSONL, preference pairs, ${r.format}, ${r.lines} lines) into “${(await store.getDataset(datasetId))?.name ?? datasetId}”: ` +
          `${r.written} pair${r.written === 1 ? '' : 's'} written, ${dups} duplicate${dups === 1 ? '' : 's'} skipped. Train a reward model or DPO on them in step 3.`, 'ok');
        created = null;
        emit('datasets', undefined);
        return;
      }
      status.dataset.kind = 'records';
      const opts = { format: format.value as JsonlFormat | 'auto', sourceName: f.name.slice(0, 200) };
      // Parquet's reader (hyparquet) loads with the first Parquet file, not with the page.
      const r = parquet ? await (await import('../../store/parquet.ts')).importParquet(store, datasetId, f, opts) : await importJsonl(store, datasetId, f, opts);
      const dups = r.duplicatesInFile + r.duplicatesInDataset;
      const read = 'rows' in r ? `${r.rows} rows` : `${r.lines} lines`;
      const ignored = 'ignoredColumns' in r && r.ignoredColumns.length > 0 ? ` Ignored columns: ${r.ignoredColumns.join(', ')}.` : '';
      const ds = await store.getDataset(datasetId);
      status.dataset.written = String(r.written);
      status.dataset.duplicates = String(dups);
      status.dataset.dataset = datasetId;
      setStatus('done',
        `Imported ${f.name} (${parquet ? 'Parquet' : 'JSONL'}, ${FORMAT_LABELS[r.format].split(' (')[0]}, ${read}) into “${ds?.name ?? datasetId}”: ` +
          `${r.written} record${r.written === 1 ? '' : 's'} written, ${dups} duplicate${dups === 1 ? '' : 's'} skipped ` +
          `(${r.duplicatesInFile} repeated in the file, ${r.duplicatesInDataset} already in the dataset).${ignored}`, 'ok');
      created = null;
      emit('datasets', undefined);
    } catch (e) {
      if (created && store) await store.deleteDataset(created).catch(() => undefined);
      setError(e);
    } finally {
      busy = false;
      file.disabled = false;
      file.value = '';
    }
  };

  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f) void run(f);
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) void run(f);
    else setError('Nothing to import: drop a file (.jsonl or .parquet).');
  });

  return h('div', { id: 'data-import' },
    h('p', { class: 'muted small' }, 'Chat records as JSONL (OpenAI messages, Alpaca or ShareGPT) or Parquet (the same layouts, as HF datasets write them); preference pairs as JSONL ({"prompt", "chosen", "rejected"}, TRL’s string or conversational form). A file with one bad line is refused whole: nothing is written.'),
    h('div', { class: 'row' }, h('label', {}, 'into', target), nameLabel, h('label', {}, 'JSONL format', format)),
    drop, status);
}
