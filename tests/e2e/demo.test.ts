// "Distil the demo" in Chromium on SwiftShader (issue #11): one click runs the whole walk offline on what the app
// ships — the embedded teacher answers the bundled prompts with its top-20 distributions (a feature job in
// IndexedDB), a KD student and an SFT twin train on WebGPU, both are evaluated against the teacher, and the KD
// student is what the Export stage offers. A software adapter gets the demo's toy size (DEMO_SIZES.software).
// While the demo's job runs, the Data stage shows it like any job (progress, Stop) and the demo's button says the
// demo runs; stopped there, the demo offers "Continue the demo", which finishes it.
// Checked from raw IndexedDB and the page; nothing is fetched off 127.0.0.1; no page error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SIZES } from '../../src/ui/demo/sizes.ts';
import { gotoStage, openApp, type AppSession } from './harness.ts';

let s: AppSession;
const pageErrors: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  s = await openApp({ offsite, pageErrors });
  await s.page.setViewportSize({ width: 1280, height: 800 });
});

afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
});

describe('Distil the demo', () => {
  it('runs teacher → data → KD student and SFT twin → evaluation with one click, and offers the KD student for export', async () => {
    const { page } = s;
    expect(await page.textContent('#demo-start')).toBe('Distil the demo');
    await page.click('#demo-start');
    await page.waitForSelector('#demo-steps li[data-phase="data"][data-state="busy"]', { timeout: 120_000 });
    expect(await page.textContent('#demo-start')).toBe('Demo running…');
    expect(await page.isDisabled('#demo-start')).toBe(true);
    // The Data stage shows the demo's job as it runs: its progress and a Stop that works.
    await page.waitForSelector('#stage-data:not([hidden]) #data-status[data-by="demo"][data-state="running"]', { timeout: 120_000 });
    await page.screenshot({ path: 'test-results/demo-running.png', fullPage: true });
    expect(await page.textContent('#data-progress-text')).toMatch(new RegExp(`^\\d+/${DEMO_SIZES.software.prompts} prompts`));
    expect(await page.textContent('#data-teacher')).toMatch(/^Feature \(top-k distributions\) job · teacher brown-teacher/);
    expect(await page.isDisabled('#data-stop')).toBe(false);
    expect(await page.isDisabled('#data-start')).toBe(true);
    await page.click('#data-stop');
    await page.waitForSelector('#data-status[data-state="stopped"]', { timeout: 120_000 });
    await page.waitForSelector('#demo-start:not([disabled])', { timeout: 60_000 });
    expect(await page.textContent('#demo-start')).toBe('Continue the demo');
    expect(await page.textContent('#demo-status')).toMatch(/^Stopped\. Continue the demo picks up where it stopped\./);
    await page.click('#demo-start');
    expect(await page.textContent('#demo-start')).toBe('Demo running…');
    await page.waitForSelector('#demo-status[data-phase="done"]', { timeout: 900_000 });
    await page.screenshot({ path: 'test-results/demo-done.png', fullPage: true });
    const text = await page.textContent('#demo-status');
    expect(text).toMatch(/^Done: the KD student's held-out perplexity is \d+\.\d+ \(SFT twin \d+\.\d+, teacher \d+\.\d+\)\.$/);
    expect(await page.$$eval('#demo-steps li', (ls) => ls.map((l) => l.getAttribute('data-state')))).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);
    expect(await page.textContent('#demo-start')).toBe('Distil the demo');
    const cells = await page.$$eval('#demo-results tr[data-metric="ppl"] td.num', (tds) => tds.map((t) => Number(t.textContent)));
    expect(cells).toHaveLength(2);
    for (const c of cells) expect(c).toBeGreaterThan(1);

    // The data: one record per bundled prompt with its top-k rows, from a feature job that is done.
    const raw = await page.evaluate(() => new Promise<{ records: number; topk: number; jobs: string[] }>((resolve, reject) => {
      const req = indexedDB.open('webgpu-distill');
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const tx = req.result.transaction(['datasets', 'jobs'], 'readonly');
        const ds = tx.objectStore('datasets').getAll();
        const jobs = tx.objectStore('jobs').getAll();
        tx.oncomplete = () => {
          const d = (ds.result as { name: string; counts: { records: number; topk: number } }[]).find((x) => x.name.startsWith('demo:'))!;
          resolve({ records: d.counts.records, topk: d.counts.topk, jobs: (jobs.result as { kind: string; status: string }[]).map((j) => `${j.kind}:${j.status}`) });
        };
      };
    }));
    expect(raw.jobs).toEqual(['elicit:feature:done']);
    expect(raw.records).toBeGreaterThanOrEqual(DEMO_SIZES.software.prompts - 2); // an empty answer is skipped, not stored
    expect(raw.topk).toBe(raw.records);

    // Two runs, done, trained on WebGPU: the KD one from the stored top-k, the twin by SFT; the KD run is the export.
    await gotoStage(page, 'train');
    const runs = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => ({ name: t.children[0]!.textContent, status: t.getAttribute('data-status'), method: t.children[1]!.textContent })));
    expect(runs).toEqual([
      { name: 'demo: SFT twin', status: 'done', method: 'SFT' },
      { name: 'demo: KD student', status: 'done', method: 'token KD (top-k, fkl)' },
    ]);
    // A run's charts draw (uPlot loads with the first chart that has points).
    await page.click('#run-list tr:last-child button[data-open]');
    await page.waitForSelector('#chart-loss .uplot canvas', { timeout: 30_000 });
    await gotoStage(page, 'export');
    const chosen = await page.$eval('#export-source', (sel) => (sel as HTMLSelectElement).selectedOptions[0]!.textContent);
    expect(chosen).toMatch(/Trained run “demo: KD student”/);
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  }, 1_000_000);
});
