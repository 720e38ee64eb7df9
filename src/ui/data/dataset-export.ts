// Dataset export as downloads: JSONL in the three chat formats (src/store/io.ts), Parquet (src/store/parquet.ts), or
// the scale-out folder for TRL and DistillKit (src/export/dataset.ts scaleoutExport: SFT/DPO JSONL, the teacher's
// top-k as Parquet, the trainers' configs and a README) zipped by src/export/zip.ts. Provenance goes out only when
// asked, and never holds a credential (the store refuses them on write; the exporters check again).
// Stable hooks: #data-export-format, #data-export-provenance, #data-export, #data-export-status[data-state][data-file].
import { zipFiles } from '../../export/zip.ts';
import { exportJsonlText, type JsonlFormat } from '../../store/io.ts';
import type { Dataset } from '../../store/schema.ts';
import { formatBytes, h, showError } from '../dom.ts';
import { appStore } from '../services.ts';
import { download, slug } from './datasets.ts';

type ExportKind = `jsonl-${JsonlFormat}` | `parquet-${JsonlFormat}` | 'scaleout';

const KINDS: [ExportKind, string][] = [
  ['jsonl-openai', 'JSONL, OpenAI messages'],
  ['jsonl-sharegpt', 'JSONL, ShareGPT'],
  ['jsonl-alpaca', 'JSONL, Alpaca (single exchanges only)'],
  ['parquet-openai', 'Parquet, OpenAI messages (HF datasets, TRL)'],
  ['parquet-sharegpt', 'Parquet, ShareGPT'],
  ['parquet-alpaca', 'Parquet, Alpaca'],
  ['scaleout', 'Scale-out .zip for TRL / DistillKit (SFT, DPO, top-k, configs)'],
];

export interface DatasetExport {
  el: HTMLElement;
  /** The dataset the export applies to (null: none chosen). */
  show(ds: Dataset | null): void;
}

export function datasetExport(): DatasetExport {
  const kind = h('select', { id: 'data-export-format' }, ...KINDS.map(([v, l]) => h('option', { value: v }, l)));
  const withProv = h('input', { id: 'data-export-provenance', type: 'checkbox' });
  const provLabel = h('label', { class: 'inline' }, withProv, 'with provenance');
  const button = h('button', { id: 'data-export', type: 'button' }, 'Download');
  const status = h('div', { id: 'data-export-status', class: 'muted small', 'data-state': 'idle' });
  let current: Dataset | null = null;

  const sync = (): void => {
    provLabel.hidden = kind.value === 'scaleout';
    button.disabled = current === null;
  };
  kind.addEventListener('change', sync);

  button.addEventListener('click', async () => {
    const ds = current;
    if (!ds) return;
    button.disabled = true;
    status.dataset.state = 'running';
    status.className = 'muted small';
    status.textContent = 'Exporting…';
    try {
      const store = await appStore();
      const k = kind.value as ExportKind;
      const base = slug(ds.name);
      let skipped = 0;
      const onSkip = (): void => { skipped++; };
      let file: string;
      let bytes: Uint8Array;
      let what: string;
      if (k === 'scaleout') {
        // Parquet's writer (hyparquet-writer) loads with the first export that needs it, not with the page.
        const { files, report } = await (await import('../../export/dataset.ts')).scaleoutExport(store, ds.id);
        bytes = zipFiles(files, { folder: base });
        file = `${base}-scaleout.zip`;
        skipped = report.skippedCount;
        what = `${files.length} files: ${report.sft} SFT conversations, ${report.dpo} DPO pairs, ${report.topkRows} top-k rows (${report.topkTokens} tokens)`;
      } else {
        const [type, format] = k.split('-') as ['jsonl' | 'parquet', JsonlFormat];
        const prov = withProv.checked;
        if (type === 'jsonl') {
          const text = await exportJsonlText(store, ds.id, format, { includeProvenance: prov, onSkip });
          bytes = new TextEncoder().encode(text);
          file = `${base}-${format}.jsonl`;
          what = `${text === '' ? 0 : text.split('\n').length - 1} records`;
        } else {
          bytes = await (await import('../../store/parquet.ts')).exportParquet(store, ds.id, { format, includeProvenance: prov, onSkip });
          file = `${base}-${format}.parquet`;
          what = `${ds.counts.records - skipped} records`;
        }
      }
      download(file, bytes, k === 'scaleout' ? 'application/zip' : k.startsWith('jsonl') ? 'application/x-ndjson' : 'application/vnd.apache.parquet');
      status.dataset.state = 'done';
      status.dataset.file = file;
      status.className = 'ok small';
      status.textContent = `Downloaded ${file} (${formatBytes(bytes.length)}; ${what})${skipped > 0 ? `; ${skipped} left out that this format cannot hold` : ''}.`;
    } catch (e) {
      status.dataset.state = 'error';
      showError(status, e, { onDismiss: () => { status.dataset.state = 'idle'; } });
    } finally {
      button.disabled = current === null;
    }
  });

  sync();
  return {
    el: h('div', { id: 'data-export-box' }, h('div', { class: 'row' }, h('label', {}, 'export this dataset as', kind), provLabel, button), status),
    show(ds) {
      if (ds?.id !== current?.id) {
        status.textContent = '';
        status.dataset.state = 'idle';
      }
      current = ds;
      sync();
    },
  };
}
