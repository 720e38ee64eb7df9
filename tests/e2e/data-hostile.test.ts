// Hostile text in the Data stage: records whose messages (as a teacher might answer, or a downloaded dataset holds)
// carry <script>, <img onerror>, javascript: links, "><svg onload>, iframes, styles and a 3,000-character word,
// imported as a JSONL dataset under a hostile name, and a hostile preference pair. They must show as text in every
// place the stage shows them — the import result and error, the datasets table, the record and pair browser, a
// search, the delete confirmation, the strategy form's dataset choice and preview (prompts, a template), and the
// records of a labeling job run on them by the default teacher — and nothing may execute: no dialog, no global
// set, no element created from them (the DOM's script/img/svg/iframe/a/style/math elements are the app's own),
// no on* attribute anywhere. Long words wrap: nothing overflows. Screenshots: test-results/data-hostile-*.png.
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gotoStage, openApp } from './harness.ts';
import { browseDataset, importByPicker, importResult, insertPair, screenshots, snapshot, waitPageInfo } from './data-support.ts';

let browser: Browser;
let server: PreviewServer;
let page: Page;
const pageErrors: string[] = [];
const offsite: string[] = [];
const dialogs: string[] = [];

const PAYLOADS = [
  `<script>window.__pwned='script';alert('script')</script>`,
  `<img src=x onerror="window.__pwned='img';alert('img')">`,
  `<a href="javascript:window.__pwned='a';alert('a')">click me</a>`,
  `"><svg onload="window.__pwned='svg';alert('svg')">`,
  `'><iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe>`,
  `<style>*{display:none!important}</style><b>bold?</b>`,
  `<details open ontoggle="window.__pwned='details'">x</details>`,
  `<math><mi xlink:href="javascript:alert('math')">m</mi></math> {{input}}`,
  `</textarea><body onload="alert('body')"><!--`,
];
/** A 3,000-character word (as an answer only: the default teacher's context is 128 tokens). */
const LONG = 'W'.repeat(3000);
const NAME = `<img src=x onerror="window.__pwned='name';alert('name')">`;
const FILE = `"><svg onload=alert('file')>.jsonl`;
const TAGS = ['script', 'img', 'svg', 'iframe', 'a', 'style', 'math', 'b', 'mi', 'body', 'textarea', 'details'];

const USERS = [...PAYLOADS, 'a long word'];
const jsonl = USERS.map((p, i) => JSON.stringify({ messages: [{ role: 'user', content: p }, { role: 'assistant', content: i === PAYLOADS.length ? LONG : PAYLOADS[(i + 1) % PAYLOADS.length] }] })).join('\n');

/** Tag counts in the whole document and in the Data stage. */
async function tagCounts(): Promise<Record<string, [number, number]>> {
  return page.evaluate((tags) => Object.fromEntries(tags.map((t) => [t, [document.getElementsByTagName(t).length, document.querySelector('#stage-data')!.getElementsByTagName(t).length]])), TAGS);
}

/** What executes or injects: globals set, on* attributes, javascript: URLs, srcdoc. */
async function traces(): Promise<{ pwned: unknown; onAttrs: string[]; jsUrls: number; srcdoc: number }> {
  return page.evaluate(() => {
    const onAttrs: string[] = [];
    for (const el of document.querySelectorAll('*')) for (const a of el.getAttributeNames()) if (a.toLowerCase().startsWith('on')) onAttrs.push(`${el.tagName}[${a}]`);
    return {
      pwned: (window as unknown as { __pwned?: unknown }).__pwned,
      onAttrs,
      jsUrls: document.querySelectorAll('[href^="javascript:" i], [src^="javascript:" i], [xlink\\:href]').length,
      srcdoc: document.querySelectorAll('[srcdoc]').length,
    };
  });
}

let baseline: Record<string, [number, number]>;

beforeAll(async () => {
  ({ server, browser, page } = await openApp({ offsite, pageErrors }));
  page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  await gotoStage(page, 'data');
  await page.waitForSelector('#data-status[data-state="idle"]', { timeout: 30_000 });
  baseline = await tagCounts();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('Data stage: hostile text stays text', () => {
  let dsId = '';

  it('an import error naming a hostile field, and a hostile import: shown as text', async () => {
    await importByPicker(page, 'bad.jsonl', `${JSON.stringify({ messages: [{ role: 'user', content: 'q' }], [NAME]: 1 })}\n`);
    const bad = await importResult(page);
    expect(bad.state).toBe('error');
    expect(bad.text).toContain(`unsupported field "${NAME}"`);
    await page.fill('#data-import-name', NAME);
    await importByPicker(page, FILE, jsonl);
    const r = await importResult(page);
    expect(r.state, r.text).toBe('done');
    expect(r.written).toBe(USERS.length);
    expect(r.text).toContain(`Imported ${FILE}`);
    expect(r.text).toContain(`into “${NAME}”`);
    dsId = r.dataset;
    expect((await snapshot(page)).datasets[0]!.name).toBe(NAME);
  });

  it('the datasets table, the record browser, a search and the delete confirmation show it as text', async () => {
    await page.waitForSelector(`#data-datasets tr[data-id="${dsId}"]`);
    expect(await page.textContent(`#data-datasets tr[data-id="${dsId}"] button.pick`)).toBe(NAME);
    await browseDataset(page, dsId);
    await waitPageInfo(page, /^records 1–10 of 10$/);
    expect(await page.textContent('#data-browse-title')).toBe(NAME);
    const texts = await page.$$eval('#data-browse-records .msg .text', (els) => els.map((e) => e.textContent));
    for (const p of [...PAYLOADS, LONG]) expect(texts).toContain(p);
    await page.fill('#data-search', '<img src=x');
    await page.press('#data-search', 'Enter');
    await waitPageInfo(page, /^records matching “<img src=x” 1–2$/);
    await page.click('#data-search-clear');
    await page.click('#data-delete-dataset');
    expect(await page.textContent('#data-delete-confirm')).toContain(`Delete “${NAME}”`);
    await page.click('#data-delete-no');
  });

  it('a hostile preference pair shows as text', async () => {
    await insertPair(page, dsId, { key: 'p', prompt: [{ role: 'user', content: PAYLOADS[0]! }], chosen: PAYLOADS[1]!, rejected: PAYLOADS[3]! });
    await page.reload();
    await gotoStage(page, 'data');
    await page.waitForSelector(`#data-datasets tr[data-id="${dsId}"]`);
    await browseDataset(page, dsId);
    await page.click('#data-view-pairs');
    await waitPageInfo(page, /^pairs 1–1 of 1$/);
    const texts = await page.$$eval('#data-browse-pairs .msg .text', (els) => els.map((e) => e.textContent));
    expect(texts).toEqual([PAYLOADS[0], PAYLOADS[1], PAYLOADS[3]]);
  });

  it('the strategy form: the dataset as the prompts, the preview, a hostile template and prompts', async () => {
    await page.selectOption('#data-strategy', 'labeling');
    await page.selectOption('#data-inputs-from', dsId);
    const optionText = await page.$eval(`#data-inputs-from option[value="${dsId}"]`, (o) => o.textContent ?? '');
    expect(optionText.startsWith(NAME)).toBe(true);
    await page.$eval('#data-templates', (d) => { (d as HTMLDetailsElement).open = true; });
    await page.fill('#data-template-labeling-user', `<img src=x onerror="window.__pwned='tpl'"> {{input}}`);
    await page.waitForFunction(() => document.querySelector('#data-preview')?.getAttribute('data-state') === 'ok'
      && (document.querySelector('#data-preview')?.textContent ?? '').includes("window.__pwned='tpl'"));
    const msgs = await page.$$eval('#data-preview .msg .text', (els) => els.map((e) => e.textContent));
    expect(msgs).toEqual(PAYLOADS.slice(0, 3).map((p) => `<img src=x onerror="window.__pwned='tpl'"> ${p}`));
    await page.click('#data-template-reset-labeling-user');
    await page.selectOption('#data-inputs-from', '');
    await page.fill('#data-prompts', PAYLOADS.slice(3, 6).join('\n'));
    await page.waitForFunction((p) => (document.querySelector('#data-preview')?.textContent ?? '').includes(p), PAYLOADS[5]!);
    expect(await page.$$eval('#data-preview .msg .text', (els) => els.map((e) => e.textContent))).toEqual(PAYLOADS.slice(3, 6));
  });

  it('a labeling job on the hostile prompts (default teacher): its records list shows them as text', async () => {
    await page.selectOption('#data-device', 'wasm');
    await page.selectOption('#data-inputs-from', dsId);
    await page.fill('#data-max', '3');
    await page.fill('#data-temperature', '0');
    await page.fill('#data-batch', '5');
    await page.waitForSelector('#data-preview[data-state="ok"]');
    await page.click('#data-start');
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('#data-status')?.getAttribute('data-state') ?? ''), null, { timeout: 150_000, polling: 100 });
    expect(await page.getAttribute('#data-status', 'data-state'), (await page.textContent('#data-status')) ?? '').toBe('done');
    // The list is re-read from the store when the job ends, after the status says done: wait for that read.
    await page.waitForFunction((n) => document.querySelectorAll('#data-records li .q').length >= n, USERS.length, { timeout: 10_000 });
    const qs = await page.$$eval('#data-records li .q', (els) => els.map((e) => e.textContent));
    expect(qs.sort()).toEqual([...USERS].sort());
    const shots = await screenshots(page, 'hostile');
    expect(shots).toEqual({ 1280: [], 390: [] });
  });

  it('nothing executed and no element was made from the payloads', async () => {
    expect(dialogs).toEqual([]);
    const t = await traces();
    expect(t).toEqual({ pwned: undefined, onAttrs: [], jsUrls: 0, srcdoc: 0 });
    expect(await tagCounts()).toEqual(baseline);
    for (const tag of ['script', 'img', 'svg', 'iframe', 'a', 'style', 'math', 'b', 'mi', 'body']) expect(baseline[tag]![1], tag).toBe(0);
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
