// A hostile teacher (issue #11: model output is untrusted text everywhere): the test OpenAI server's model answers
// every prompt with HTML/JS payloads — script tags, event-handler attributes, a javascript: URL, an svg onload —
// and that answer flows through the page like any answer: the Teacher stage's connection report, the Data stage's
// records of a labeling job and the dataset browser (its records page and a search), a student trained on those
// records (its sample generations), and the Evaluate stage's side-by-side output. Every place shows the payload as
// text (exactly, where it shows the answer whole); nothing runs (no dialog, no global set by a payload), no element
// or attribute is created from it, and the page raises no error (no uncaught exception, no console error).
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import type { TextModel } from '../support/text-model.ts';
import { browseDataset, snapshot, waitPageInfo } from './data-support.ts';
import { gotoStage, openApp, type AppSession } from './harness.ts';

const PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><a href="javascript:window.__pwned=3">go</a>"><svg onload="window.__pwned=4"></svg>';
const MODEL = 'hostile-model';

/** Byte tokens; whatever the prompt, the answer is PAYLOAD (greedy), then the end token. */
class PayloadModel implements TextModel {
  readonly name = MODEL;
  readonly vocabSize = 257;
  readonly endId = 256;
  private readonly bytes = Array.from(new TextEncoder().encode(PAYLOAD));
  encode(text: string): number[] { return Array.from(new TextEncoder().encode(text)); }
  decode(ids: number[]): string { return new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i !== this.endId))); }
  tokenText(id: number): string { return id === this.endId ? '<|end|>' : new TextDecoder().decode(Uint8Array.of(id)); }
  tokenBytes(id: number): number[] | null { return id === this.endId ? null : [id]; }
  nextLogprobs(ids: number[]): Float32Array {
    // How much of the payload the context already ends with (prompts end with "assistant: ", never a payload prefix).
    let k = Math.min(ids.length, this.bytes.length);
    while (k > 0 && !this.bytes.slice(0, k).every((b, i) => ids[ids.length - k + i] === b)) k--;
    const lp = new Float32Array(this.vocabSize).fill(-30);
    lp[k < this.bytes.length ? this.bytes[k]! : this.endId] = 0;
    return lp;
  }
}

let s: AppSession;
let page: Page;
let server: OpenAiServer;
const dialogs: string[] = [];
const pageErrors: string[] = [];
const offsite: string[] = [];

/** Nothing from the payload ran or became markup. */
async function expectInert(p: Page): Promise<void> {
  const found = await p.evaluate(() => ({
    pwned: (window as { __pwned?: unknown }).__pwned ?? null,
    scripts: [...document.querySelectorAll('script')].filter((x) => x.textContent?.includes('__pwned')).length,
    imgs: document.querySelectorAll('img[onerror], img[src="x"]').length,
    svgs: document.querySelectorAll('svg[onload]').length,
    jsLinks: [...document.querySelectorAll('a')].filter((a) => a.getAttribute('href')?.startsWith('javascript:')).length,
    handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
  }));
  expect(found).toEqual({ pwned: null, scripts: 0, imgs: 0, svgs: 0, jsLinks: 0, handlers: 0 });
  expect(dialogs).toEqual([]);
  expect(pageErrors, 'page errors and console errors').toEqual([]);
}

beforeAll(async () => {
  server = await startOpenAiServer({ model: new PayloadModel(), seed: 1 });
  s = await openApp({ offsite, pageErrors });
  page = s.page;
  page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  await page.setViewportSize({ width: 1280, height: 800 });
});

afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
  await server?.close();
});

describe('a teacher whose answers are HTML/JS payloads', () => {
  it('shows them as text in the connection report, the records, the student\'s samples and the side-by-side output', async () => {
    await gotoStage(page, 'teacher');
    await page.check('#teacher-mode-remote');
    await page.selectOption('#remote-preset', 'custom');
    await page.fill('#remote-base-url', server.url);
    await page.press('#remote-base-url', 'Tab');
    await page.fill('#remote-model', MODEL);
    await page.press('#remote-model', 'Tab');
    await page.click('#remote-test');
    await page.waitForSelector('#remote-report[data-result="ok"]', { timeout: 60_000 });
    // The connection test asks for 16 tokens: the report shows the payload's first 16 bytes, as text.
    expect(await page.textContent('#remote-report')).toContain(PAYLOAD.slice(0, 16));
    await page.click('#remote-use');
    await expectInert(page);

    await gotoStage(page, 'data');
    await page.selectOption('#data-strategy', 'labeling');
    await page.fill('#data-prompts', Array.from({ length: 12 }, (_, i) => `Question ${i + 1}`).join('\n'));
    await page.fill('#data-max', '200');
    await page.fill('#data-temperature', '0');
    await page.click('#data-start');
    await page.waitForSelector('#data-status[data-state="done"]', { timeout: 120_000 });
    const shown = await page.$$eval('#data-records li .a', (els) => els.map((e) => e.textContent ?? ''));
    expect(shown.length).toBeGreaterThan(0);
    for (const t of shown) expect(t).toBe(PAYLOAD);
    await expectInert(page);
    // The dataset browser: every record's answer is the payload, as text; a search for a piece of it finds them.
    const { jobs } = await snapshot(page);
    expect(jobs).toHaveLength(1);
    await browseDataset(page, jobs[0]!.datasetId);
    await waitPageInfo(page, /^records 1–12 of 12$/);
    const browsed = await page.$$eval('#data-browse-records .msg .text', (els) => els.map((e) => e.textContent ?? ''));
    expect(browsed.filter((t) => t === PAYLOAD)).toHaveLength(12);
    expect(browsed.filter((t) => t !== PAYLOAD).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `Question ${i + 1}`).sort());
    await page.fill('#data-search', '<svg onload=');
    await page.press('#data-search', 'Enter');
    await waitPageInfo(page, /^records matching “<svg onload=” 1–12$/);
    const found = await page.$$eval('#data-browse-records .msg .text', (els) => els.map((e) => e.textContent ?? ''));
    expect(found.filter((t) => t === PAYLOAD)).toHaveLength(12);
    await page.click('#data-search-clear');
    await expectInert(page);

    await gotoStage(page, 'train');
    await page.selectOption('#train-method', 'sft');
    await page.selectOption('#train-init', '');
    await page.selectOption('#train-tokenizer', 'bpe');
    await page.fill('#train-vocab', '300');
    await page.dispatchEvent('#train-vocab', 'change');
    await page.selectOption('#train-preset', 'nano');
    for (const [id, v] of [['steps', 2], ['batch', 2], ['seqlen', 24], ['lr', 0.01], ['warmup', 1]] as const) await page.fill(`#train-${id}`, String(v));
    await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
    for (const [id, v] of [['eval-every', 2], ['ckpt-every', 2], ['sample-every', 1], ['heldout', 4]] as const) await page.fill(`#train-${id}`, String(v));
    await page.fill('#train-prompts', PAYLOAD);
    await page.fill('#train-name', 'hostile');
    await page.dispatchEvent('#train-name', 'change');
    await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 60_000 });
    await page.click('#train-start');
    await page.waitForSelector('#run-list tr[data-status="done"]', { timeout: 240_000 });
    await page.waitForSelector('#run-samples li');
    // The sample prompt is the payload itself: shown as text beside what the student wrote.
    expect(await page.textContent('#run-samples')).toContain(PAYLOAD);
    await expectInert(page);

    await gotoStage(page, 'evaluate');
    await page.fill('#eval-prompt', PAYLOAD);
    await page.fill('#eval-max', '200');
    await page.click('#eval-generate');
    await page.waitForSelector('#eval-gen-status[data-done]', { timeout: 120_000 });
    expect(await page.getAttribute('#eval-gen-status', 'data-done'), await page.textContent('#eval-gen-status') ?? '').toBe('ok');
    expect(await page.textContent('#eval-out-teacher')).toBe(PAYLOAD);
    await page.screenshot({ path: 'test-results/hostile-evaluate.png', fullPage: true });
    await expectInert(page);
    expect(offsite).toEqual([]);
  }, 600_000);
});
