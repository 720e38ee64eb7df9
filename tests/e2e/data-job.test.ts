// The Data stage in Chromium (issue #5): a labeling job of 12 prompts answered by the embedded default teacher
// (public/models/brown-teacher, transformers.js in the teacher worker) into the app's IndexedDB store. The page is
// reloaded once some but not all records are written; the reloaded page must resume the job by itself and finish
// it. Checked from IndexedDB itself (a raw indexedDB.open in the page, not the app's code): one record per prompt,
// keys unique and equal to the job's idempotency keys, counts and progress not doubled, tokens equal to the
// records' usage, and every record written before the reload unchanged after it. Also: Stop pauses a job and
// Resume finishes it exactly once; a full storage quota (Chromium's DevTools quota override) gives a clear
// "Storage is full" error with nothing written; no request leaves 127.0.0.1 and the page raises no errors.
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gotoStage, guardOffsite, openApp, recordErrors, serveSmallTeacher } from './harness.ts';

const PROMPTS = [
  'The history of the city', 'In the morning the farmers', 'The President said that', 'Music and art in the schools',
  'The church stood on the hill', 'A new law was passed', 'The team won the game', 'Science and the modern world',
  'She opened the letter and', 'The river ran through the valley', 'The doctor told him', 'After the war the people',
];
// WebGPU under SwiftShader takes a few hundred ms per answer here, which leaves a wide window to reload mid-job;
// WASM answers a prompt in a few tens of ms and would often finish before the reload.
const DEVICE = process.env.DATA_JOB_DEVICE ?? 'webgpu';
const MAX_TOKENS = 8;

let browser: Browser;
let server: PreviewServer;
let page: Page;
let url: string;
const pageErrors: string[] = [];
const offsite: string[] = [];

interface Msg { role: string; content: string }
interface Rec { id: number; datasetId: string; key: string; messages: Msg[]; provenance: { time: number; usage: { input: number; output: number }; teacher: { model: string } }; contentHash: string }
interface JobRow { id: string; datasetId: string; status: string; createdAt: number; progress: { done: number; total: number; tokens: number; cost: number }; config: { teacher?: { model: string; device: string } } }
interface DsRow { id: string; counts: { records: number } }
interface Snapshot { datasets: DsRow[]; records: Rec[]; jobs: JobRow[] }

/** Every dataset, record and job, read by a raw IndexedDB transaction in the page (not through the app's code). */
async function snapshot(p: Page = page): Promise<Snapshot> {
  return p.evaluate(() => new Promise<Snapshot>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const tx = db.transaction(['datasets', 'records', 'jobs'], 'readonly');
      const out: Record<string, unknown[]> = {};
      for (const name of ['datasets', 'records', 'jobs']) {
        const r = tx.objectStore(name).getAll();
        r.onsuccess = () => { out[name] = r.result; };
      }
      tx.oncomplete = () => { db.close(); resolve(out as unknown as Snapshot); };
      tx.onerror = () => reject(tx.error);
    };
  }));
}

async function state(p: Page = page): Promise<string> {
  return (await p.getAttribute('#data-status', 'data-state')) ?? '';
}

async function waitState(want: string[], timeout = 180_000, p: Page = page): Promise<string> {
  await p.waitForFunction((w) => w.includes(document.querySelector('#data-status')?.getAttribute('data-state') ?? ''), want, { timeout, polling: 50 });
  return state(p);
}

async function waitDone(atLeast: number): Promise<number> {
  await page.waitForFunction((n) => Number(document.querySelector('#data-progress')?.getAttribute('data-done')) >= n, atLeast, { timeout: 180_000, polling: 20 });
  return Number(await page.getAttribute('#data-progress', 'data-done'));
}

async function startJob(opts: { batch: number }, p: Page = page): Promise<void> {
  await p.fill('#data-prompts', PROMPTS.join('\n'));
  await p.fill('#data-max', String(MAX_TOKENS));
  await p.fill('#data-temperature', '0');
  await p.fill('#data-batch', String(opts.batch));
  await p.selectOption('#data-device', DEVICE);
  await p.click('#data-start');
}

/** Exactly one record per prompt with the job's keys, nothing doubled, progress and counts consistent. */
function expectExactlyOnce(s: Snapshot, jobId: string): Rec[] {
  const job = s.jobs.find((j) => j.id === jobId)!;
  const recs = s.records.filter((r) => r.datasetId === job.datasetId);
  expect(job.status).toBe('done');
  expect(recs).toHaveLength(PROMPTS.length);
  expect(new Set(recs.map((r) => r.key)).size).toBe(recs.length);
  expect(new Set(recs.map((r) => r.id)).size).toBe(recs.length);
  expect(recs.map((r) => r.key).sort()).toEqual(PROMPTS.map((_, i) => `${jobId}:labeling:${i}:0`).sort());
  for (const r of recs) {
    const i = Number(r.key.split(':')[2]);
    expect(r.messages.find((m) => m.role === 'user')?.content, r.key).toContain(PROMPTS[i]);
    expect(r.messages.at(-1)?.role).toBe('assistant');
    expect(r.messages.at(-1)!.content.trim()).not.toBe('');
    expect(r.provenance.teacher.model).toBe('brown-teacher');
    expect(r.provenance.usage.output).toBeGreaterThan(0);
    expect(r.provenance.usage.output).toBeLessThanOrEqual(MAX_TOKENS);
  }
  expect(s.datasets.find((d) => d.id === job.datasetId)!.counts.records).toBe(PROMPTS.length);
  expect(job.progress.done).toBe(PROMPTS.length);
  expect(job.progress.total).toBe(PROMPTS.length);
  expect(job.progress.cost).toBe(0);
  expect(job.progress.tokens).toBe(recs.reduce((a, r) => a + r.provenance.usage.input + r.provenance.usage.output, 0));
  return recs;
}

async function listedKeys(): Promise<string[]> {
  return page.$$eval('#data-records li[data-key]', (lis) => lis.map((li) => li.getAttribute('data-key') ?? ''));
}

beforeAll(async () => {
  ({ url, server, browser, page } = await openApp({ offsite, pageErrors }));
  await gotoStage(page, 'data');
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('Data stage: an elicitation job in the browser', () => {
  it('shows storage persistence and quota, and starts idle with an empty store', async () => {
    expect(await waitState(['idle'], 30_000)).toBe('idle');
    await page.waitForSelector('#data-storage[data-quota]');
    expect(Number(await page.getAttribute('#data-storage', 'data-quota'))).toBeGreaterThan(0);
    expect(['true', 'false']).toContain(await page.getAttribute('#data-storage', 'data-persisted'));
    expect(await page.textContent('#data-storage')).toMatch(/used of .* this site may use/);
    const s = await snapshot();
    expect(s.jobs).toEqual([]);
    expect(await page.isDisabled('#data-start')).toBe(false);
  });

  it('a reload mid-job resumes it by itself: one record per prompt, nothing lost or doubled, earlier records unchanged', async () => {
    await startJob({ batch: 1 });
    const seen = await waitDone(3);
    expect(await state()).toBe('running');
    const before = await snapshot();
    expect(before.jobs).toHaveLength(1);
    const job = before.jobs[0]!;
    expect(job.config.teacher).toMatchObject({ model: 'brown-teacher', device: DEVICE });
    const written = before.records.filter((r) => r.datasetId === job.datasetId);
    expect(written.length).toBeGreaterThanOrEqual(seen);
    expect(written.length, 'the job finished before the reload: nothing left to resume').toBeLessThan(PROMPTS.length);
    const t0 = Date.now();
    await page.reload();
    await gotoStage(page, 'data');
    // The reloaded page finds the job unfinished and resumes it without a click.
    await page.waitForSelector('#data-status[data-resumed="true"]', { timeout: 60_000 });
    expect(await page.getAttribute('#data-status', 'data-job')).toBe(job.id);
    expect(await waitState(['done', 'error', 'stopped'])).toBe('done');
    const after = await snapshot();
    expect(after.jobs).toHaveLength(1);
    const recs = expectExactlyOnce(after, job.id);
    // Records written before the reload are untouched (same id, key, messages, provenance, hash) ...
    const byKey = new Map(recs.map((r) => [r.key, r]));
    for (const r of written) expect(byKey.get(r.key), r.key).toEqual(r);
    // ... and the rest were written by the resumed run, after the reload.
    const late = recs.filter((r) => !written.some((w) => w.key === r.key));
    expect(late.length).toBeGreaterThan(0);
    for (const r of late) expect(r.provenance.time).toBeGreaterThan(t0);
    expect((await listedKeys()).sort()).toEqual(recs.map((r) => r.key).sort());
    expect(await page.textContent('#data-progress-text')).toMatch(new RegExp(`^${PROMPTS.length}/${PROMPTS.length} prompts · [\\d,]+ tokens · cost \\$0\\.0000$`));
    console.log(`reload after ${written.length}/${PROMPTS.length} records (${DEVICE}); resumed run wrote ${late.length}`);
  });

  it('Stop pauses a job; Resume finishes it with every record exactly once', async () => {
    await startJob({ batch: 2 });
    await waitDone(2);
    await page.click('#data-stop');
    expect(await waitState(['stopped', 'done', 'error'])).toBe('stopped');
    const mid = await snapshot();
    const job = [...mid.jobs].sort((a, b) => b.createdAt - a.createdAt)[0]!;
    expect(job.status).toBe('paused');
    const written = mid.records.filter((r) => r.datasetId === job.datasetId);
    expect(written.length).toBe(job.progress.done);
    expect(written.length).toBeLessThan(PROMPTS.length);
    expect(await page.isDisabled('#data-resume')).toBe(false);
    await page.click('#data-resume');
    expect(await waitState(['done', 'error', 'stopped'])).toBe('done');
    const after = await snapshot();
    const recs = expectExactlyOnce(after, job.id);
    const byKey = new Map(recs.map((r) => [r.key, r]));
    for (const r of written) expect(byKey.get(r.key), r.key).toEqual(r);
  });

  it('storage full: a clear "Storage is full" error and nothing written', async () => {
    // A fresh context (its own storage) with Chromium's DevTools quota override set before anything is written:
    // IndexedDB caches the space it may use for up to 30 s, so an override made mid-job takes effect only later.
    const ctx = await browser.newContext();
    await guardOffsite(ctx, offsite);
    await serveSmallTeacher(ctx);
    try {
      const p = await ctx.newPage();
      recordErrors(p, pageErrors, { label: 'full storage', console: false });
      const cdp = await ctx.newCDPSession(p);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 1 });
      await p.goto(url);
      await gotoStage(p, 'data');
      expect(await waitState(['idle'], 30_000, p)).toBe('idle');
      await startJob({ batch: 2 }, p);
      expect(await waitState(['error', 'running', 'done'], 180_000, p)).toBe('error');
      expect(await p.textContent('#data-status')).toMatch(/^Storage is full while writing a dataset: .*nothing of it was written/s);
      const s = await snapshot(p);
      expect(s.datasets).toEqual([]);
      expect(s.jobs).toEqual([]);
      expect(s.records).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
