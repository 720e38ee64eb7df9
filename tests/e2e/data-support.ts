// Shared helpers of the Data stage's e2e tests (tests/e2e/data-*.test.ts): the app's IndexedDB read by a raw
// indexedDB.open in the page (not through the app's code), a raw pair insert (the pairs view without a trained
// student), file import through the picker or a drop, waiting for states, and screenshots at the two sizes the
// stage must fit (1280×800, 390×800) with a check that nothing in the stage overflows its box.
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';

export interface Msg { role: string; content: string }
export interface RawRecord { id: number; datasetId: string; key: string; messages: Msg[]; provenance: { strategy: string; teacher: { model: string; kind: string }; usage: { input: number; output: number } } }
export interface RawDataset { id: string; name: string; counts: { records: number; pairs: number; topk: number; topkTokens: number } }
export interface RawJob { id: string; kind: string; datasetId: string; status: string; error?: string; progress: { done: number; total: number; tokens: number }; config: { strategy: string; config: Record<string, unknown>; teacher?: Record<string, unknown> } }
export interface RawPair { id: number; datasetId: string; key: string; prompt: Msg[]; chosen: string; rejected: string }
export interface RawTopK { recordId: number; turn: number; datasetId: string; tokens: number }
export interface Snapshot { datasets: RawDataset[]; records: RawRecord[]; jobs: RawJob[]; pairs: RawPair[]; topk: RawTopK[] }

/** Every object store of the app's database, read by one raw readonly transaction in the page. */
export async function snapshot(page: Page): Promise<Snapshot> {
  return page.evaluate(() => new Promise<Snapshot>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const names = ['datasets', 'records', 'jobs', 'pairs', 'topk'];
      const tx = db.transaction(names, 'readonly');
      const out: Record<string, unknown[]> = {};
      for (const name of names) {
        const r = tx.objectStore(name).getAll();
        r.onsuccess = () => {
          // top-k rows are bytes: keep the metadata only.
          out[name] = name === 'topk' ? (r.result as Record<string, unknown>[]).map(({ rows: _rows, ...rest }) => rest) : r.result;
        };
      }
      tx.oncomplete = () => { db.close(); resolve(out as unknown as Snapshot); };
      tx.onerror = () => reject(tx.error);
    };
  }));
}

/** Adds a preference pair to a dataset by raw IndexedDB writes (and its count), as a feedback job would. */
export async function insertPair(page: Page, datasetId: string, pair: { key: string; prompt: Msg[]; chosen: string; rejected: string }): Promise<void> {
  await page.evaluate(({ datasetId, pair }) => new Promise<void>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const tx = db.transaction(['datasets', 'pairs'], 'readwrite');
      tx.objectStore('pairs').add({
        ...pair, datasetId,
        provenance: { teacher: { kind: 'import', model: 'test', baseURLHost: '' }, strategy: 'feedback', params: {}, usage: { input: 0, output: 0 }, time: Date.now() },
      });
      const ds = tx.objectStore('datasets').get(datasetId);
      ds.onsuccess = () => {
        const d = ds.result as { counts: { pairs: number } };
        d.counts.pairs++;
        tx.objectStore('datasets').put(d);
      };
      tx.oncomplete = () => { db.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  }), { datasetId, pair });
}

/** Picks `content` as a file in the import panel's file input. */
export async function importByPicker(page: Page, name: string, content: string | Uint8Array): Promise<void> {
  const buffer = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  await page.setInputFiles('#data-import-file', { name, mimeType: name.endsWith('.parquet') ? 'application/octet-stream' : 'application/json', buffer });
}

/** Drops a text file onto the import panel's drop zone (a DataTransfer made in the page, as a real drop has). */
export async function importByDrop(page: Page, name: string, text: string): Promise<void> {
  const dt = await page.evaluateHandle(({ name, text }) => {
    const d = new DataTransfer();
    d.items.add(new File([text], name, { type: 'application/json' }));
    return d;
  }, { name, text });
  await page.dispatchEvent('#data-import-drop', 'dragover', { dataTransfer: dt });
  await page.dispatchEvent('#data-import-drop', 'drop', { dataTransfer: dt });
}

/** Waits for the import to end; returns its state and text. */
export async function importResult(page: Page, timeout = 60_000): Promise<{ state: string; text: string; written: number; duplicates: number; dataset: string }> {
  await page.waitForSelector('#data-import-status[data-state="done"], #data-import-status[data-state="error"]', { timeout });
  return page.$eval('#data-import-status', (el) => ({
    state: el.getAttribute('data-state') ?? '', text: el.textContent ?? '', written: Number(el.getAttribute('data-written') ?? -1),
    duplicates: Number(el.getAttribute('data-duplicates') ?? -1), dataset: el.getAttribute('data-dataset') ?? '',
  }));
}

/** Opens dataset `id` in the browser (its row's name button). */
export async function browseDataset(page: Page, id: string): Promise<void> {
  await page.click(`#data-datasets tr[data-id="${id}"] button.pick`);
  await page.waitForSelector(`#data-browse[data-id="${id}"]:not([hidden])`);
}

/** The browser's page line: offset and count shown, and its text. */
export async function pageInfo(page: Page): Promise<{ offset: number; count: number; text: string }> {
  return page.$eval('#data-page-info', (el) => ({ offset: Number(el.getAttribute('data-offset')), count: Number(el.getAttribute('data-count')), text: el.textContent ?? '' }));
}

/** Waits until the browser's page line says `text` (a regexp source). */
export async function waitPageInfo(page: Page, re: RegExp, timeout = 20_000): Promise<void> {
  await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('#data-page-info')?.textContent ?? ''), re.source, { timeout, polling: 50 });
}

/**
 * Elements of the Data stage that stick out of the stage's box to the right (or are wider than the viewport),
 * outside any horizontally scrolling container: what a user sees as overflow.
 */
export async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const stage = document.querySelector('#stage-data')!;
    const right = Math.min(stage.getBoundingClientRect().right, document.documentElement.clientWidth) + 1;
    const out: string[] = [];
    const scrolls = (el: Element | null): boolean => {
      for (let e = el; e && e !== stage; e = e.parentElement) {
        const s = getComputedStyle(e);
        if (s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden') return true;
      }
      return false;
    };
    for (const el of stage.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if (r.right > right && !scrolls(el.parentElement)) {
        out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).replace(/\s+/g, '.')}` : ''} right=${Math.round(r.right)} > ${Math.round(right)}`);
      }
    }
    if (document.documentElement.scrollWidth > document.documentElement.clientWidth) out.push(`page scrollWidth ${document.documentElement.scrollWidth} > ${document.documentElement.clientWidth}`);
    return out.slice(0, 20);
  });
}

/** Full-page screenshots of the stage at 1280×800 and 390×800 (test-results/data-<name>-<w>.png); returns overflow per size. */
export async function screenshots(page: Page, name: string): Promise<Record<number, string[]>> {
  mkdirSync('test-results', { recursive: true });
  const out: Record<number, string[]> = {};
  for (const [w, h] of [[1280, 800], [390, 800]] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(150);
    out[w] = await overflowing(page);
    await page.screenshot({ path: `test-results/data-${name}-${w}.png`, fullPage: true });
    // Each part of the stage on its own too (a narrow full page is too tall to read at once).
    mkdirSync('test-results/data-parts', { recursive: true });
    for (const part of ['data-teacher-bar', 'data-make', 'data-import-card', 'data-datasets-card']) {
      const el = await page.$(`#${part}`);
      if (el && await el.isVisible()) await el.screenshot({ path: `test-results/data-parts/${name}-${w}-${part.replace(/^data-/, '')}.png` });
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return out;
}
