// "Your datasets": every dataset in the store with its counts (records, preference pairs, top-k entries and the
// tokens they cover); pick one to browse its records 20 at a time (getRecords offset/limit), search them (a
// substring over the messages: src/store/search.ts), see its preference pairs (getPairs), delete one record
// (deleteRecords) or the whole dataset (deleteDataset, after a confirm step), and export it (dataset-export.ts).
// Records, pairs and names are untrusted text (model output, imported files): text nodes only, wrapped (.text).
// Stable hooks: #data-datasets tr[data-id] (button .pick), #data-browse[data-id], #data-browse-title,
// #data-view-records, #data-view-pairs, #data-search, #data-search-go, #data-search-clear, #data-page-prev,
// #data-page-next (and #data-page-prev-bottom, #data-page-next-bottom), #data-page-info[data-offset][data-count], #data-browse-records li[data-id] (button .delete-record),
// #data-browse-pairs li[data-id], #data-delete-dataset, #data-delete-confirm, #data-delete-yes, #data-delete-no.
import type { ChatMessage, Dataset, StoredPair, StoredRecord } from '../../store/schema.ts';
import { searchRecords } from '../../store/search.ts';
import { emit, on } from '../app-state.ts';
import { errorText, h, showError } from '../dom.ts';
import { appStore } from '../services.ts';
import { datasetExport } from './dataset-export.ts';
import { countsLine, listDatasets, stamp } from './datasets.ts';

export const PAGE_SIZE = 20;

function messageNodes(messages: ChatMessage[]): HTMLElement[] {
  return messages.map((m) => h('div', { class: 'msg', 'data-role': m.role }, h('span', { class: 'role' }, m.role), h('div', { class: 'text' }, m.content)));
}

export function datasetBrowser(): HTMLElement {
  const table = h('table', { id: 'data-datasets' });
  const empty = h('p', { class: 'muted', hidden: true }, 'No datasets yet: make one with the teacher or import one (above).');
  const title = h('h3', { id: 'data-browse-title', class: 'text-line' });
  const counts = h('div', { class: 'muted small' });
  const viewRecords = h('button', { id: 'data-view-records', type: 'button' }, 'Records');
  const viewPairs = h('button', { id: 'data-view-pairs', type: 'button', class: 'secondary' }, 'Preference pairs');
  const search = h('input', { id: 'data-search', type: 'search', placeholder: 'text in any message', class: 'wide' });
  const searchGo = h('button', { id: 'data-search-go', type: 'button', class: 'secondary' }, 'Search');
  const searchClear = h('button', { id: 'data-search-clear', type: 'button', class: 'secondary', hidden: true }, 'Clear');
  const searchRow = h('div', { class: 'row' }, h('label', {}, 'search', search), searchGo, searchClear);
  const prev = h('button', { id: 'data-page-prev', type: 'button', class: 'secondary' }, '← Previous');
  const next = h('button', { id: 'data-page-next', type: 'button', class: 'secondary' }, 'Next →');
  const info = h('span', { id: 'data-page-info', class: 'muted small' });
  const prev2 = h('button', { id: 'data-page-prev-bottom', type: 'button', class: 'secondary' }, '← Previous');
  const next2 = h('button', { id: 'data-page-next-bottom', type: 'button', class: 'secondary' }, 'Next →');
  const bottomPager = h('div', { class: 'buttons pager' }, prev2, next2);
  const list = h('ul', { id: 'data-browse-records', class: 'records' });
  const pairs = h('ul', { id: 'data-browse-pairs', class: 'records', hidden: true });
  const listNote = h('div', { class: 'muted small' });
  const delButton = h('button', { id: 'data-delete-dataset', type: 'button', class: 'danger' }, 'Delete dataset…');
  const confirmText = h('span', { class: 'text-line' });
  const yes = h('button', { id: 'data-delete-yes', type: 'button', class: 'danger' }, 'Yes, delete it');
  const no = h('button', { id: 'data-delete-no', type: 'button', class: 'secondary' }, 'Cancel');
  const confirm = h('div', { id: 'data-delete-confirm', class: 'note bad', hidden: true }, confirmText, h('div', { class: 'buttons' }, yes, no));
  const actionStatus = h('div', { id: 'data-browse-status', class: 'muted small', role: 'status' });
  const exporter = datasetExport();
  const detail = h('div', { id: 'data-browse', hidden: true },
    title, counts, exporter.el,
    h('div', { class: 'buttons' }, viewRecords, viewPairs, h('span', { class: 'spacer' }), delButton),
    confirm, actionStatus, searchRow,
    h('div', { class: 'buttons pager' }, prev, info, next),
    listNote, list, pairs, bottomPager);

  let datasets: Dataset[] = [];
  let current: Dataset | null = null;
  let view: 'records' | 'pairs' = 'records';
  let offset = 0;
  let query = '';
  let seq = 0;

  const renderTable = (): void => {
    empty.hidden = datasets.length > 0;
    table.hidden = datasets.length === 0;
    table.replaceChildren(
      h('thead', {}, h('tr', {}, ...['Dataset', 'Records', 'Pairs', 'Top-k', 'Top-k tokens', 'Created'].map((t, i) =>
        h('th', { class: i > 0 && i < 5 ? 'num' : undefined, title: i === 3 ? 'top-k entries (record × assistant turn)' : undefined }, t)))),
      h('tbody', {}, ...datasets.map((d) => {
        const pick = h('button', { type: 'button', class: 'link pick' }, d.name);
        pick.addEventListener('click', () => select(d.id));
        return h('tr', { 'data-id': d.id, 'aria-selected': d.id === current?.id ? 'true' : 'false' },
          h('td', { class: 'name' }, pick), h('td', { class: 'num' }, d.counts.records.toLocaleString('en')), h('td', { class: 'num' }, d.counts.pairs.toLocaleString('en')),
          h('td', { class: 'num' }, d.counts.topk.toLocaleString('en')), h('td', { class: 'num' }, d.counts.topkTokens.toLocaleString('en')),
          h('td', { class: 'small' }, stamp(d.createdAt)));
      })));
  };

  const recordItem = (r: StoredRecord, ds: Dataset): HTMLElement => {
    const del = h('button', { type: 'button', class: 'danger small delete-record' }, 'Delete');
    del.addEventListener('click', async () => {
      del.disabled = true;
      try {
        await (await appStore()).deleteRecords(ds.id, [r.id]);
        actionStatus.textContent = `Deleted record #${r.id}.`;
        emit('datasets', undefined);
        await refresh();
      } catch (e) {
        showError(actionStatus, e);
        del.disabled = false;
      }
    });
    const p = r.provenance;
    return h('li', { 'data-id': String(r.id), 'data-key': undefined },
      h('div', { class: 'row tight meta' },
        h('span', { class: 'muted small text-line' }, `#${r.id} · ${p.strategy} · ${p.teacher.model || p.teacher.kind}`), h('span', { class: 'spacer' }), del),
      ...messageNodes(r.messages));
  };

  const pairItem = (p: StoredPair): HTMLElement =>
    h('li', { 'data-id': String(p.id) },
      h('div', { class: 'muted small text-line' }, `#${p.id} · ${p.provenance.strategy} · ${p.provenance.teacher.model}`),
      ...messageNodes(p.prompt),
      h('div', { class: 'msg chosen' }, h('span', { class: 'role' }, 'chosen'), h('div', { class: 'text' }, p.chosen)),
      h('div', { class: 'msg rejected' }, h('span', { class: 'role' }, 'rejected'), h('div', { class: 'text' }, p.rejected)));

  /** Shows the current page of the current view. */
  const refresh = async (): Promise<void> => {
    const my = ++seq;
    const ds = current;
    if (!ds) return;
    const store = await appStore();
    try {
      const fresh = await store.getDataset(ds.id);
      if (!fresh) { current = null; detail.hidden = true; exporter.show(null); return; }
      current = fresh;
      title.textContent = fresh.name;
      counts.textContent = `${countsLine(fresh)} · created ${stamp(fresh.createdAt)}${fresh.description ? ` · ${fresh.description}` : ''}`;
      exporter.show(fresh);
      viewRecords.className = view === 'records' ? '' : 'secondary';
      viewPairs.className = view === 'pairs' ? '' : 'secondary';
      viewPairs.disabled = fresh.counts.pairs === 0 && view !== 'pairs';
      searchRow.hidden = view !== 'records';
      list.hidden = view !== 'records';
      pairs.hidden = view !== 'pairs';
      let shown: number;
      let more: boolean;
      let total: number | null;
      if (view === 'pairs') {
        const page = await store.getPairs(fresh.id, { offset, limit: PAGE_SIZE });
        if (my !== seq) return;
        pairs.replaceChildren(...page.map(pairItem));
        shown = page.length;
        total = fresh.counts.pairs;
        more = offset + shown < total;
      } else if (query === '') {
        const page = await store.getRecords(fresh.id, { offset, limit: PAGE_SIZE });
        if (my !== seq) return;
        list.replaceChildren(...page.map((r) => recordItem(r, fresh)));
        shown = page.length;
        total = fresh.counts.records;
        more = offset + shown < total;
      } else {
        const r = await searchRecords(store, fresh.id, query, { offset, limit: PAGE_SIZE });
        if (my !== seq) return;
        list.replaceChildren(...r.records.map((x) => recordItem(x, fresh)));
        shown = r.records.length;
        total = null;
        more = r.more;
      }
      if (shown === 0 && offset > 0) { offset = Math.max(0, offset - PAGE_SIZE); return refresh(); } // the last page emptied
      const what = view === 'pairs' ? 'pairs' : query === '' ? 'records' : `records matching “${query}”`;
      info.dataset.offset = String(offset);
      info.dataset.count = String(shown);
      info.textContent = shown === 0 ? `no ${what}` : `${what} ${offset + 1}–${offset + shown}${total !== null ? ` of ${total.toLocaleString('en')}` : more ? ' (more after these)' : ''}`;
      listNote.textContent = shown === 0 && query === '' && view === 'records' ? 'This dataset has no records yet.' : '';
      prev.disabled = prev2.disabled = offset === 0;
      next.disabled = next2.disabled = !more;
      bottomPager.hidden = shown < 8;
    } catch (e) {
      if (my === seq) listNote.textContent = `The dataset could not be read: ${errorText(e)}`;
    }
  };

  const select = (id: string): void => {
    const ds = datasets.find((d) => d.id === id) ?? null;
    if (ds?.id !== current?.id) { offset = 0; query = ''; search.value = ''; searchClear.hidden = true; view = 'records'; }
    current = ds;
    confirm.hidden = true;
    actionStatus.textContent = '';
    detail.hidden = ds === null;
    detail.dataset.id = ds?.id ?? '';
    renderTable();
    void refresh();
  };

  const reload = async (): Promise<void> => {
    try {
      datasets = await listDatasets();
    } catch (e) {
      empty.hidden = false;
      empty.textContent = `The datasets could not be listed: ${errorText(e)}`;
      return;
    }
    if (current && !datasets.some((d) => d.id === current!.id)) { current = null; detail.hidden = true; exporter.show(null); }
    renderTable();
    if (current) void refresh();
  };
  // Job steps emit 'datasets' often: refresh at most twice a second.
  let pending: ReturnType<typeof setTimeout> | null = null;
  on('datasets', () => {
    pending ??= setTimeout(() => { pending = null; void reload(); }, 500);
  });

  const runSearch = (): void => {
    query = search.value.trim();
    offset = 0;
    searchClear.hidden = query === '';
    void refresh();
  };
  searchGo.addEventListener('click', runSearch);
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') runSearch(); });
  searchClear.addEventListener('click', () => { search.value = ''; runSearch(); });
  const turn = (by: number, fromBottom: boolean): void => {
    offset = Math.max(0, offset + by);
    void refresh().then(() => { if (fromBottom) prev.scrollIntoView({ block: 'nearest' }); });
  };
  prev.addEventListener('click', () => turn(-PAGE_SIZE, false));
  next.addEventListener('click', () => turn(PAGE_SIZE, false));
  prev2.addEventListener('click', () => turn(-PAGE_SIZE, true));
  next2.addEventListener('click', () => turn(PAGE_SIZE, true));
  viewRecords.addEventListener('click', () => { view = 'records'; offset = 0; void refresh(); });
  viewPairs.addEventListener('click', () => { view = 'pairs'; offset = 0; void refresh(); });
  delButton.addEventListener('click', () => {
    if (!current) return;
    const c = current.counts;
    confirmText.textContent = `Delete “${current.name}” with its ${c.records} records, ${c.pairs} pairs, ${c.topk} top-k entries and its jobs? This cannot be undone (export it first to keep a copy).`;
    confirm.hidden = false;
  });
  no.addEventListener('click', () => { confirm.hidden = true; });
  yes.addEventListener('click', async () => {
    const ds = current;
    if (!ds) return;
    yes.disabled = true;
    try {
      await (await appStore()).deleteDataset(ds.id);
      confirm.hidden = true;
      current = null;
      detail.hidden = true;
      exporter.show(null);
      emit('datasets', undefined);
      await reload();
    } catch (e) {
      showError(actionStatus, e);
    } finally {
      yes.disabled = false;
    }
  });

  void reload();
  return h('div', { id: 'data-browser' }, empty, h('div', { class: 'scroll' }, table), detail);
}
