// Small shared pieces of the Data stage: the datasets in the store (newest first), a dataset <select> that keeps
// its selection across refreshes, a one-line summary of a dataset's counts, file-name slugs and downloads.
import type { Dataset } from '../../store/schema.ts';
import { h } from '../dom.ts';
import { appStore } from '../services.ts';

/** The store's datasets, newest first. */
export async function listDatasets(): Promise<Dataset[]> {
  const all = await (await appStore()).listDatasets();
  return all.sort((a, b) => b.createdAt - a.createdAt);
}

const n = (x: number): string => x.toLocaleString('en');

/** "240 records · 12 pairs · 40 top-k entries (1,234 tokens)"; parts that are zero are left out (records always shown). */
export function countsLine(d: Dataset): string {
  const c = d.counts;
  const parts = [`${n(c.records)} record${c.records === 1 ? '' : 's'}`];
  if (c.pairs > 0) parts.push(`${n(c.pairs)} pair${c.pairs === 1 ? '' : 's'}`);
  if (c.topk > 0) parts.push(`${n(c.topk)} top-k entr${c.topk === 1 ? 'y' : 'ies'} (${n(c.topkTokens)} tokens)`);
  return parts.join(' · ');
}

/**
 * Fills a dataset select: `first` options (e.g. "a new dataset"), then every dataset. The selection is kept when
 * its option still exists, else the first option is selected.
 */
export function fillDatasetSelect(select: HTMLSelectElement, datasets: Dataset[], first: { value: string; label: string }[]): void {
  const keep = select.value;
  select.replaceChildren(
    ...first.map((o) => h('option', { value: o.value }, o.label)),
    ...datasets.map((d) => h('option', { value: d.id }, `${d.name} (${countsLine(d)})`)),
  );
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

/** A file name from a dataset name: letters, digits, '-', '_' and '.', at most 60 characters. */
export function slug(name: string): string {
  const s = name.normalize('NFKD').replace(/[^\w.-]+/g, '-').replace(/-+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 60);
  return s === '' ? 'dataset' : s;
}

/** Saves `bytes` as a download named `name`. */
export function download(name: string, bytes: Uint8Array, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** "2026-11-23 14:05" in local time. */
export function stamp(t: number = Date.now()): string {
  const d = new Date(t);
  const p = (x: number): string => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
