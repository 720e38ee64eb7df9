// KD across tokenizers in the page (issue #23), as a user does it in Chromium on SwiftShader: the default teacher
// (the small fixture, its own BPE of 1,024 ids) answers prompts with its top-k (the feature strategy), the student
// gets a new BPE of 300 ids trained on the dataset; the plan refuses same-tokenizer top-k KD for it and offers to
// distil across tokenizers; one click, and the run trains with the ULD term beside the exact KL (its step logs in
// IndexedDB carry both), the run view says how the answer tokens were paired, and it evaluates. Screenshots at
// 1280×800 and 390 wide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gotoStage, openApp, runLogs, type AppSession } from './harness.ts';

const PROMPTS = [
  'The history of the city', 'In the morning the farmers', 'The President said that', 'Music and art in the schools',
  'The church stood on the hill', 'A new law was passed', 'The team won the game', 'Science and the modern world',
  'She opened the letter and', 'The river ran through the valley', 'The doctor told him', 'After the war the people',
];

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

describe('KD across tokenizers in the page', () => {
  it('offers cross-tokenizer KD for a new-BPE student, trains it with the ULD term and says how tokens were paired', async () => {
    const { page } = s;
    await gotoStage(page, 'teacher');
    await page.click('#teacher-default');
    await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 120_000 });
    await gotoStage(page, 'data');
    await page.selectOption('#data-strategy', 'feature');
    await page.fill('#data-prompts', PROMPTS.join('\n'));
    await page.fill('#data-max', '16');
    await page.fill('#data-temperature', '0.8');
    await page.fill('#data-batch', '4');
    await page.click('#data-start');
    await page.waitForSelector('#data-status[data-state="done"]', { timeout: 240_000 });

    await gotoStage(page, 'train');
    await page.selectOption('#train-method', 'kd');
    await page.selectOption('#train-kd-source', 'store-topk');
    await page.selectOption('#train-objective', 'fkl');
    await page.selectOption('#train-preset', 'nano');
    await page.selectOption('#train-tokenizer', 'bpe');
    await page.fill('#train-vocab', '300');
    for (const [id, v] of [['steps', 4], ['batch', 2], ['seqlen', 24], ['lr', 0.01], ['warmup', 1]] as const) await page.fill(`#train-${id}`, String(v));
    await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
    for (const [id, v] of [['eval-every', 2], ['ckpt-every', 2], ['sample-every', 0], ['heldout', 4]] as const) await page.fill(`#train-${id}`, String(v));
    await page.fill('#train-name', 'cross-kd');
    await page.dispatchEvent('#train-name', 'change');
    // Same-tokenizer top-k cannot work for a new BPE: the plan says so and offers the way across tokenizers.
    await page.waitForSelector('#train-use-cross', { timeout: 120_000 });
    expect(await page.textContent('#train-plan')).toMatch(/the stored top-k rows are in the teacher's tokens, and a new BPE's tokens are others/);
    await page.screenshot({ path: 'test-results/train-cross-offer-1280.png', fullPage: true });
    await page.click('#train-use-cross');
    await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 120_000 });
    expect(await page.inputValue('#train-kd-source')).toBe('cross-topk');
    expect(await page.textContent('#train-plan')).toMatch(/ULD term \(its gradient chunk/);
    expect(await page.textContent('#train-cross-share')).toMatch(/measured when the run is created \(its new BPE is trained then\)/);

    const before = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
    await page.click('#train-start');
    const handle = await page.waitForFunction((b) => [...document.querySelectorAll('#run-list tr[data-run]')].map((t) => t.getAttribute('data-run')).find((r) => r && !b.includes(r)), before, { timeout: 120_000 });
    const runId = (await handle.jsonValue()) as string;
    await page.waitForSelector(`#run-list tr[data-run="${runId}"][data-status="done"]`, { timeout: 300_000 });
    expect(await page.textContent('#run-data')).toMatch(/across tokenizers: \d+% of the aligned answers' tokens learn the teacher's distribution exactly/);
    const steps = (await runLogs<{ kind: string; step: number; kd?: number; uld?: number }>(page, runId)).filter((l) => l.kind === 'step');
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(steps.every((l) => Number.isFinite(l.kd) && Number.isFinite(l.uld) && l.uld! > 0)).toBe(true);
    await page.screenshot({ path: 'test-results/train-cross-1280.png', fullPage: true });
    await page.setViewportSize({ width: 390, height: 800 });
    await page.screenshot({ path: 'test-results/train-cross-390.png', fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    await gotoStage(page, 'evaluate');
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  }, 900_000);
});
