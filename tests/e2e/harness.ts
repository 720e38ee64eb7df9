// E2E harness: the built app (dist/) served by `vite preview` on 127.0.0.1, and Debian's Chromium driven by
// playwright-core with WebGPU enabled. No browser is ever downloaded; a missing one is an error, not a skip. Also
// what several walks read back from the page: a run's log rows (IndexedDB) and a run exported as a zip.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer as createViteServer, preview, type PreviewServer, type ViteDevServer } from 'vite';
import { freePort } from '../support/net.ts';
import { importByPicker, importResult } from './data-support.ts';

/** Flags that give headless Chromium WebGPU (SwiftShader when there is no GPU) on a closed network. */
export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `No Chromium found (tried ${candidates.join(', ')}). Install Debian's: apt-get install -y chromium libvulkan1, ` +
        'or set CHROMIUM_PATH. Browser tests never download a browser.',
    );
  }
  return found;
}

/** `webgpu: false` drops --enable-unsafe-webgpu: on Linux, headless Chromium then offers no adapter. */
export async function launchChromium(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  const args = opts.webgpu === false ? CHROMIUM_FLAGS.filter((f) => f !== '--enable-unsafe-webgpu') : CHROMIUM_FLAGS;
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args });
}


export async function startPreview(): Promise<{ url: string; server: PreviewServer }> {
  if (!existsSync('dist/index.html')) throw new Error('dist/ is missing: run `vite build` first (npm run test:e2e does).');
  const port = await freePort();
  const server = await preview({ logLevel: 'warn', preview: { host: '127.0.0.1', port, strictPort: true, open: false } });
  return { url: `http://127.0.0.1:${port}/`, server };
}

/** The dev server that `npm start` runs (source served unbundled, worker as a module). */
export async function startDev(): Promise<{ url: string; server: ViteDevServer }> {
  const port = await freePort();
  const server = await createViteServer({ logLevel: 'warn', server: { host: '127.0.0.1', port, strictPort: true, open: false, hmr: false } });
  await server.listen();
  return { url: `http://127.0.0.1:${port}/`, server };
}

/**
 * Routes every request of a context (its pages and their dedicated workers) through a guard: anything not on
 * 127.0.0.1 (or blob:/data:) is recorded in `offsite` and refused; `seen`, when given, records every URL.
 */
export async function guardOffsite(context: BrowserContext, offsite: string[], seen?: string[]): Promise<void> {
  await context.route('**/*', (route) => {
    const u = route.request().url();
    seen?.push(u);
    if (u.startsWith('http://127.0.0.1') || u.startsWith('blob:') || u.startsWith('data:')) return route.continue();
    offsite.push(u);
    return route.abort();
  });
}

/** Records a page's uncaught errors (and console errors unless `console: false`) into `errors`. */
export function recordErrors(page: Page, errors: string[], opts: { label?: string; console?: boolean } = {}): void {
  const tag = opts.label ? ` (${opts.label})` : '';
  page.on('pageerror', (e) => errors.push(`pageerror${tag}: ${e.message}`));
  if (opts.console !== false) page.on('console', (m) => { if (m.type() === 'error') errors.push(`console${tag}: ${m.text()}`); });
}

/**
 * The walk's tests (labeling, KD with the teacher's dense logits, the demo) run the default teacher many times on
 * SwiftShader; the shipped one (2.9M parameters) makes them minutes slower. Unless a test asks for the shipped one,
 * requests for models/brown-teacher/ are answered with the previous default teacher (0.65M parameters, the same
 * name and folder layout), kept as a fixture. The Teacher and Export stages' tests load the shipped folder.
 */
export const SMALL_TEACHER_DIR = 'tests/fixtures/brown-teacher-small';
export async function serveSmallTeacher(context: BrowserContext): Promise<void> {
  await context.route('**/models/brown-teacher/**', async (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^.*\/models\/brown-teacher\//, '');
    const file = join(SMALL_TEACHER_DIR, path);
    if (!path || path.includes('..') || !existsSync(file)) return route.fulfill({ status: 404, body: 'not in the fixture' });
    return route.fulfill({ status: 200, body: readFileSync(file), contentType: path.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
  });
}

export interface AppSession {
  url: string;
  server: PreviewServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
}

/**
 * The built app served on 127.0.0.1 and opened in Chromium with WebGPU: every request guarded (`offsite`, and all
 * of them in `requests` when given), the page's errors recorded in `pageErrors`; the default teacher is the small
 * fixture unless `teacher: 'shipped'` (serveSmallTeacher).
 */
export async function openApp(o: { offsite: string[]; pageErrors: string[]; requests?: string[]; acceptDownloads?: boolean; teacher?: 'small' | 'shipped' }): Promise<AppSession> {
  const { url, server } = await startPreview();
  const browser = await launchChromium();
  const context = await browser.newContext(o.acceptDownloads ? { acceptDownloads: true } : {});
  await guardOffsite(context, o.offsite, o.requests);
  // Registered after the guard, so it answers first (its requests are on 127.0.0.1 anyway).
  if (o.teacher !== 'shipped') await serveSmallTeacher(context);
  const page = await context.newPage();
  recordErrors(page, o.pageErrors);
  await page.goto(url);
  return { url, server, browser, context, page };
}

/** Brings a workflow step into focus (the page shows one stage at a time): clicks its button in the stepper. */
export async function gotoStage(page: Page, id: 'teacher' | 'data' | 'train' | 'evaluate' | 'export'): Promise<void> {
  await page.click(`#step-${id}`);
  await page.waitForSelector(`#stage-${id}:not([hidden])`, { timeout: 30_000 });
}

/**
 * The walks' usual start: the default teacher loaded from the Teacher stage, then `jsonl` imported in the Data stage
 * by its file picker as a file named `file`; returns the import's result (importResult).
 */
export async function defaultTeacherAndImport(page: Page, file: string, jsonl: string): Promise<Awaited<ReturnType<typeof importResult>>> {
  await gotoStage(page, 'teacher');
  await page.click('#teacher-default');
  await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 120_000 });
  await gotoStage(page, 'data');
  await importByPicker(page, file, jsonl);
  return importResult(page);
}

/** The Train form's run settings a walk sets: those always shown, those in its details disclosure, the run's name. */
export interface RunFormSettings {
  steps: number; batch: number; seqlen: number; lr: number; warmup: number;
  evalEvery: number; ckptEvery: number; sampleEvery: number; heldout: number;
  name: string;
}

/**
 * Starts a run from the Train stage's form, whose method, student and teacher the caller has already chosen: fills
 * `settings` (opening the form's details for the eval/checkpoint/sample/held-out ones), names the run, waits until
 * the plan says it can start, calls `beforeStart` with the plan's text (checks, screenshots), clicks Start and waits
 * for the new run's row in the run list; returns its id.
 */
export async function startRunFromForm(page: Page, settings: RunFormSettings, beforeStart?: (plan: string) => void | Promise<void>, planMatch?: RegExp): Promise<string> {
  const { steps, batch, seqlen, lr, warmup, evalEvery, ckptEvery, sampleEvery, heldout, name } = settings;
  for (const [id, v] of [['steps', steps], ['batch', batch], ['seqlen', seqlen], ['lr', lr], ['warmup', warmup]] as const) await page.fill(`#train-${id}`, String(v));
  await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
  for (const [id, v] of [['eval-every', evalEvery], ['ckpt-every', ckptEvery], ['sample-every', sampleEvery], ['heldout', heldout]] as const) await page.fill(`#train-${id}`, String(v));
  await page.fill('#train-name', name);
  await page.dispatchEvent('#train-name', 'change');
  await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 120_000 });
  // The plan keeps the previous settings' verdict while it replans: with `planMatch`, wait for the plan of these.
  if (planMatch) {
    await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('#train-plan')?.textContent ?? '') && document.querySelector('#train-plan')?.getAttribute('data-ok') === 'true', planMatch.source, { timeout: 120_000 });
  }
  await beforeStart?.((await page.textContent('#train-plan')) ?? '');
  const before = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
  await page.click('#train-start');
  const id = await page.waitForFunction((b) => [...document.querySelectorAll('#run-list tr[data-run]')].map((t) => t.getAttribute('data-run')).find((r) => r && !b.includes(r)), before, { timeout: 120_000 });
  return (await id.jsonValue()) as string;
}

/** Opens the "GPU" disclosure (adapter details and the kernel self-test). */
export async function openGpuDetails(page: Page): Promise<void> {
  await page.waitForSelector('#gpu');
  await page.$eval('#gpu', (d) => { (d as HTMLDetailsElement).open = true; });
}

/** The fields of a run's logs (src/engine/runs/types.ts RunLog, all kinds in one loose shape) the walks read. */
export interface RunLogFields { kind: string; step: number; loss?: number; kd?: number; message?: string; code?: string; checkpointStep?: number }

/** A row of the runs database's 'logs' store (src/engine/runs/run-store.ts): the run's sequence number and its log. */
export interface RunLogRow<L = RunLogFields> { seq: number; log: L }

/** Every row a run logged (steps, evals, events, samples) in order, read by a raw IndexedDB transaction in the page. */
export async function runLogRows<L = RunLogFields>(page: Page, runId: string): Promise<RunLogRow<L>[]> {
  return page.evaluate((id) => new Promise<RunLogRow<L>[]>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill-runs');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const r = req.result.transaction('logs', 'readonly').objectStore('logs').getAll(IDBKeyRange.bound([id, 0], [id, Infinity]));
      r.onsuccess = () => { req.result.close(); resolve(r.result as RunLogRow<L>[]); };
      r.onerror = () => reject(r.error);
    };
  }), runId);
}

/** Every log of a run, in order (runLogRows without the sequence numbers). */
export async function runLogs<L = RunLogFields>(page: Page, runId: string): Promise<L[]> {
  return (await runLogRows<L>(page, runId)).map((x) => x.log);
}

/** Exports a run from the Export stage as `format` into `dir`: the zip saved as <format>.zip, unzipped into
 *  <dir>/<format>; returns the folder the zip holds. */
export async function exportRunZip(page: Page, runId: string, format: string, dir: string): Promise<string> {
  await gotoStage(page, 'export');
  await page.selectOption('#export-source', `run:${runId}`);
  await page.selectOption('#export-format', format);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-zip')]);
  const zip = join(dir, `${format}.zip`);
  await download.saveAs(zip);
  const out = join(dir, format);
  mkdirSync(out);
  execFileSync('unzip', ['-q', zip, '-d', out]);
  return join(out, execFileSync('ls', [out], { encoding: 'utf8' }).trim().split('\n')[0]!);
}
