// The Export stage's "what each format costs" for a trained run: each GGUF storage's file size and the held-out
// perplexity of the weights as that file stores them, against F32 (src/engine/runs/compare-formats.ts). The format
// list shows the figures once measured. Stable hooks: #export-compare, #export-compare-status[data-done],
// #export-compare-table (rows tr[data-format]).
import type { FormatComparison } from '../../protocol.ts';
import { FORMAT_LABELS, isExportFormat } from '../../export/formats.ts';
import { formatBytes, h, showError } from '../dom.ts';

export interface CompareBackend {
  compareFormats(runId: string, onProgress?: (message: string) => void): Promise<FormatComparison>;
}

/** A signed percentage; a change that rounds to zero is shown as 0.00% (no "−0.00%"). */
const pct = (x: number) => {
  const digits = Math.abs(x) < 10 ? 2 : 1;
  const shown = Math.abs(x).toFixed(digits);
  return Number(shown) === 0 ? `${shown}%` : `${x > 0 ? '+' : '−'}${shown}%`;
};

/** `runId()`: the run the Export stage has selected (undefined for a folder or the default teacher). */
export function comparePanel(backend: CompareBackend, runId: () => string | undefined, formatSelect: HTMLSelectElement): { node: Node; sourceChanged(): void } {
  const button = h('button', { id: 'export-compare', class: 'secondary' }, 'Compare sizes and quality');
  const status = h('div', { id: 'export-compare-status', class: 'muted' });
  const table = h('table', { id: 'export-compare-table', hidden: true });
  const hint = h('p', { class: 'muted' }, 'For a trained run: each GGUF format’s file size, and the held-out perplexity of the weights as that file stores them.');

  const sourceChanged = () => {
    const isRun = runId() !== undefined;
    button.hidden = !isRun;
    hint.textContent = isRun
      ? 'Each GGUF format’s file size, and the held-out perplexity of the weights as that file stores them (a quantized file loses a little).'
      : 'Sizes and quality are measured for trained runs, on their held-out data.';
    table.hidden = true;
    status.textContent = '';
    delete status.dataset.done;
    for (const o of formatSelect.options) if (isExportFormat(o.value)) o.textContent = FORMAT_LABELS[o.value];
  };

  button.addEventListener('click', async () => {
    const id = runId();
    if (!id) return;
    button.disabled = true;
    status.className = 'muted';
    status.textContent = 'Measuring…';
    delete status.dataset.done;
    try {
      const r = await backend.compareFormats(id, (m) => { status.textContent = `${m}…`; });
      const head = h('tr', {}, h('th', {}, 'Format'), h('th', {}, 'Size'), h('th', {}, 'Perplexity'), h('th', {}, 'vs F32'));
      table.replaceChildren(head, ...r.rows.map((row) => h('tr', { 'data-format': row.format },
        h('td', {}, row.dtype), h('td', {}, formatBytes(row.bytes)),
        h('td', {}, row.ppl !== undefined ? row.ppl.toFixed(2) : '—'),
        h('td', {}, row.pplChangePct !== undefined ? (row.dtype === 'F32' ? 'reference' : pct(row.pplChangePct)) : '—'))));
      table.hidden = false;
      for (const row of r.rows) {
        const o = [...formatSelect.options].find((x) => x.value === row.format);
        if (o) {
          o.textContent = `${FORMAT_LABELS[row.format]} — ${formatBytes(row.bytes)}${row.pplChangePct !== undefined && row.dtype !== 'F32' ? `, perplexity ${pct(row.pplChangePct)}` : ''}`;
        }
      }
      status.className = r.notes.length ? 'muted' : 'ok';
      status.textContent = r.notes.length ? r.notes.join(' ') : `Measured on ${r.tokens.toLocaleString('en')} held-out tokens of the checkpoint of step ${r.step} (${(r.ms / 1000).toFixed(1)} s).`;
      status.dataset.done = 'ok';
    } catch (e) {
      showError(status, e, { onDismiss: () => { status.className = 'muted'; } });
      status.dataset.done = 'error';
    } finally {
      button.disabled = false;
    }
  });
  sourceChanged();
  return { node: h('div', {}, hint, h('p', {}, button), status, h('div', { class: 'table-scroll' }, table)), sourceChanged };
}
