// The Data stage's import, dataset browser and dataset export in Chromium: a JSONL file with one bad line is refused
// naming the line and nothing is written (raw IndexedDB read in the page); good files in the three JSONL schemas
// (by the file picker and by a drop) and a Parquet file (written by our exportParquet in Node) import into new or
// chosen datasets, with duplicates skipped and counted; the browser pages 20 records at a time, searches, shows
// preference pairs, deletes a record and (after a confirm step) a dataset; the exports download and read back
// (JSONL and Parquet through our importers on fake-indexeddb in Node, the scale-out zip through `unzip -t`); a TRL
// preference JSONL is detected as pairs and a reward model trains on them from the Train stage (issue #24).
// Screenshots: test-results/data-browser-{1280,390}.png, data-import-error-{1280,390}.png.
import 'fake-indexeddb/auto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importJsonl } from '../../src/store/io.ts';
import { exportParquet, importParquet } from '../../src/store/parquet.ts';
import { openStore } from '../../src/store/store.ts';
import { gotoStage, openApp, startRunFromForm } from './harness.ts';
import {
  browseDataset, importByDrop, importByPicker, importResult, insertPair, pageInfo, screenshots, snapshot, waitPageInfo,
} from './data-support.ts';

let browser: Browser;
let server: PreviewServer;
let page: Page;
const pageErrors: string[] = [];
const offsite: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'data-import-'));

const line = (u: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });
const GOOD = Array.from({ length: 45 }, (_, i) => ({ u: i % 4 === 0 ? `Question ${i} about the River mill` : `Question ${i} about the fields`, a: `Answer ${i}.` }));
const GOOD_TEXT = [...GOOD.map((x) => line(x.u, x.a)), line(GOOD[3]!.u, GOOD[3]!.a), '', line(GOOD[7]!.u, GOOD[7]!.a)].join('\n') + '\n';
const BAD_TEXT = [line('a', 'b'), line('c', 'd'), '{"messages": [{"role": "user", "content": "cut off"}', line('e', 'f')].join('\n');

async function freshNodeStore() {
  return openStore(`readback-${Math.random()}`, new IDBFactory());
}

async function download(selectValue: string): Promise<{ name: string; bytes: Buffer }> {
  await page.selectOption('#data-export-format', selectValue);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#data-export')]);
  await page.waitForSelector('#data-export-status[data-state="done"]');
  const bytes = readFileSync((await dl.path())!);
  return { name: dl.suggestedFilename(), bytes };
}

beforeAll(async () => {
  ({ server, browser, page } = await openApp({ offsite, pageErrors, acceptDownloads: true }));
  await gotoStage(page, 'data');
  await page.waitForSelector('#data-status[data-state="idle"]', { timeout: 30_000 });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('Data stage: import, browse, export', () => {
  let goodId = '';

  it('a JSONL file with a bad line is refused naming the line, and nothing is written', async () => {
    const before = await snapshot(page);
    expect(before.datasets).toEqual([]);
    await importByPicker(page, 'bad.jsonl', BAD_TEXT);
    const r = await importResult(page);
    expect(r.state).toBe('error');
    expect(r.text).toMatch(/^Import refused: 1 of 4 lines are invalid/); // the reason, not the error's class name
    expect(r.text).toMatch(/line 3: invalid JSON/);
    expect(r.text).toMatch(/nothing was written/);
    expect(await snapshot(page)).toEqual(before);
    // A format chosen by hand is enforced: an OpenAI-messages file is not ShareGPT.
    await page.selectOption('#data-import-format', 'sharegpt');
    await importByPicker(page, 'good.jsonl', GOOD_TEXT);
    const forced = await importResult(page);
    expect(forced.state).toBe('error');
    expect(forced.text).toMatch(/lines are invalid ShareGPT \(format forced\)/);
    expect(forced.text).toMatch(/line 1: not in ShareGPT format: missing "conversations"/);
    // The error stays until the user acts: a new attempt replaces it (above), Dismiss takes it away.
    await page.click('#data-import-status button.dismiss');
    expect(await page.getAttribute('#data-import-status', 'data-state')).toBe('idle');
    expect(await page.textContent('#data-import-status')).toBe('');
    await page.selectOption('#data-import-format', 'auto');
    expect(await snapshot(page)).toEqual(before);
    await importByPicker(page, 'bad.jsonl', BAD_TEXT);
    await importResult(page);
    const shots = await screenshots(page, 'import-error');
    expect(shots).toEqual({ 1280: [], 390: [] });
  });

  it('imports OpenAI-messages JSONL (picker), Alpaca into the chosen dataset, ShareGPT (drop) and Parquet', async () => {
    await importByPicker(page, 'good.jsonl', GOOD_TEXT);
    const r = await importResult(page);
    expect(r.state, r.text).toBe('done');
    expect(r.written).toBe(45);
    expect(r.duplicates).toBe(2);
    expect(r.text).toMatch(/45 records written, 2 duplicates skipped \(2 repeated in the file, 0 already in the dataset\)/);
    goodId = r.dataset;
    let s = await snapshot(page);
    expect(s.datasets).toHaveLength(1);
    expect(s.datasets[0]).toMatchObject({ id: goodId, name: 'good.jsonl', counts: { records: 45 } });
    expect(s.records.filter((x) => x.datasetId === goodId)).toHaveLength(45);

    // Alpaca lines into the chosen dataset: one is a conversation the dataset already has.
    await page.selectOption('#data-import-target', goodId);
    const alpaca = [
      { instruction: GOOD[0]!.u, output: GOOD[0]!.a },
      { instruction: 'Name a season', input: 'in one word', output: 'Spring.' },
      { instruction: 'Where does the river go?', output: 'To the sea.', system: 'Be brief.' },
    ].map((x) => JSON.stringify(x)).join('\n');
    await importByPicker(page, 'more.alpaca.jsonl', alpaca);
    const r2 = await importResult(page);
    expect(r2.state, r2.text).toBe('done');
    expect([r2.written, r2.duplicates, r2.dataset]).toEqual([2, 1, goodId]);
    s = await snapshot(page);
    expect(s.datasets.find((d) => d.id === goodId)!.counts.records).toBe(47);
    expect(s.records.some((x) => x.datasetId === goodId && x.messages[0]!.role === 'system' && x.messages[1]!.content === 'Where does the river go?')).toBe(true);

    // ShareGPT by drag and drop, into a new dataset.
    await page.selectOption('#data-import-target', '');
    await page.fill('#data-import-name', 'dropped conversations');
    const sharegpt = Array.from({ length: 4 }, (_, i) => JSON.stringify({ conversations: [{ from: 'human', value: `hello ${i}` }, { from: 'gpt', value: `hi ${i}` }, { from: 'human', value: 'and?' }, { from: 'gpt', value: 'bye' }] })).join('\n');
    await importByDrop(page, 'chat.sharegpt.jsonl', sharegpt);
    const r3 = await importResult(page);
    expect(r3.state, r3.text).toBe('done');
    expect(r3.written).toBe(4);
    s = await snapshot(page);
    expect(s.datasets.find((d) => d.id === r3.dataset)).toMatchObject({ name: 'dropped conversations', counts: { records: 4 } });
    expect(s.records.filter((x) => x.datasetId === r3.dataset)[0]!.messages).toHaveLength(4);

    // Parquet written by our exporter in Node.
    const ns = await freshNodeStore();
    const nds = await ns.createDataset({ name: 'n' });
    await importJsonl(ns, nds.id, Array.from({ length: 6 }, (_, i) => line(`parquet question ${i}`, `parquet answer ${i}`)).join('\n'));
    const pq = await exportParquet(ns, nds.id);
    await page.fill('#data-import-name', '');
    await importByPicker(page, 'six.parquet', pq);
    const r4 = await importResult(page);
    expect(r4.state, r4.text).toBe('done');
    expect(r4.text).toMatch(/\(Parquet, OpenAI messages, 6 rows\)/);
    expect(r4.written).toBe(6);
    s = await snapshot(page);
    expect(s.datasets.find((d) => d.id === r4.dataset)).toMatchObject({ name: 'six.parquet', counts: { records: 6 } });
    expect(s.datasets).toHaveLength(3);
    // The stepper's line for the stage counts them.
    await page.waitForFunction(() => /3 datasets · 57 records/.test(document.querySelector('#step-data')?.textContent ?? ''), null, { timeout: 10_000 });
  });

  it('browses 20 records a page, searches, deletes a record', async () => {
    await page.waitForSelector(`#data-datasets tr[data-id="${goodId}"]`);
    await browseDataset(page, goodId);
    await waitPageInfo(page, /^records 1–20 of 47$/);
    expect(await page.$$eval('#data-browse-records > li', (l) => l.length)).toBe(20);
    expect(await page.isDisabled('#data-page-prev')).toBe(true);
    await page.click('#data-page-next');
    await waitPageInfo(page, /^records 21–40 of 47$/);
    await page.click('#data-page-next');
    await waitPageInfo(page, /^records 41–47 of 47$/);
    expect(await page.isDisabled('#data-page-next')).toBe(true);
    expect(await page.$$eval('#data-browse-records > li', (l) => l.length)).toBe(7);
    await page.click('#data-page-prev');
    await waitPageInfo(page, /^records 21–40 of 47$/);

    // Search: a substring over every message, case-insensitive.
    const s = await snapshot(page);
    const want = s.records.filter((r) => r.datasetId === goodId && r.messages.some((m) => m.content.toLowerCase().includes('river'))).map((r) => r.id);
    expect(want.length).toBe(13);
    await page.fill('#data-search', 'RIVER');
    await page.press('#data-search', 'Enter');
    await waitPageInfo(page, /^records matching “RIVER” 1–13$/);
    const ids = await page.$$eval('#data-browse-records > li', (l) => l.map((x) => Number(x.getAttribute('data-id'))));
    expect(ids).toEqual(want);
    for (const t of await page.$$eval('#data-browse-records > li', (l) => l.map((x) => x.textContent ?? ''))) expect(t.toLowerCase()).toContain('river');
    await page.click('#data-search-clear');
    await waitPageInfo(page, /^records 1–20 of 47$/);

    // Delete one record.
    const first = Number(await page.getAttribute('#data-browse-records > li:first-child', 'data-id'));
    await page.click('#data-browse-records > li:first-child button.delete-record');
    await waitPageInfo(page, /^records 1–20 of 46$/);
    const after = await snapshot(page);
    expect(after.records.some((r) => r.id === first)).toBe(false);
    expect(after.datasets.find((d) => d.id === goodId)!.counts.records).toBe(46);
    expect(after.records.filter((r) => r.datasetId === goodId)).toHaveLength(46);
  });

  it('shows preference pairs (getPairs)', async () => {
    await insertPair(page, goodId, { key: 'pair-1', prompt: [{ role: 'user', content: 'Which is better?' }], chosen: 'The chosen answer.', rejected: 'The rejected answer.' });
    await page.reload();
    await gotoStage(page, 'data');
    await page.waitForSelector(`#data-datasets tr[data-id="${goodId}"]`);
    await browseDataset(page, goodId);
    expect(await page.isDisabled('#data-view-pairs')).toBe(false);
    await page.click('#data-view-pairs');
    await waitPageInfo(page, /^pairs 1–1 of 1$/);
    const text = await page.textContent('#data-browse-pairs');
    expect(text).toContain('Which is better?');
    expect(text).toContain('The chosen answer.');
    expect(text).toContain('The rejected answer.');
    await page.click('#data-view-records');
    await waitPageInfo(page, /^records 1–20 of 46$/);
    const shots = await screenshots(page, 'browser');
    expect(shots).toEqual({ 1280: [], 390: [] });
  });

  it('exports JSONL, Parquet and the scale-out zip as downloads that read back', async () => {
    const s = await snapshot(page);
    const want = s.records.filter((r) => r.datasetId === goodId).length;
    expect(want).toBe(46);

    const j = await download('jsonl-openai');
    expect(j.name).toBe('good.jsonl-openai.jsonl');
    const ns = await freshNodeStore();
    const d1 = await ns.createDataset({ name: 'j' });
    expect((await importJsonl(ns, d1.id, j.bytes.toString('utf8'), { format: 'openai' })).written).toBe(want);

    const a = await download('jsonl-sharegpt');
    const d2 = await ns.createDataset({ name: 's' });
    expect((await importJsonl(ns, d2.id, a.bytes.toString('utf8'))).format).toBe('sharegpt');
    expect((await ns.counts(d2.id)).records).toBe(want);

    const p = await download('parquet-openai');
    expect(p.name).toBe('good.jsonl-openai.parquet');
    expect(p.bytes.subarray(0, 4).toString('latin1')).toBe('PAR1');
    const d3 = await ns.createDataset({ name: 'p' });
    expect((await importParquet(ns, d3.id, new Uint8Array(p.bytes))).written).toBe(want);

    const z = await download('scaleout');
    expect(z.name).toBe('good.jsonl-scaleout.zip');
    const zipPath = join(dir, z.name);
    writeFileSync(zipPath, z.bytes);
    expect(execFileSync('unzip', ['-t', zipPath], { encoding: 'utf8' })).toMatch(/No errors detected/);
    const listing = execFileSync('unzip', ['-Z1', zipPath], { encoding: 'utf8' }).split('\n');
    for (const f of ['sft/train.jsonl', 'dpo/train.jsonl', 'trl-sft.yaml', 'README.md', 'manifest.json']) expect(listing).toContain(`good.jsonl/${f}`);
    const sft = execFileSync('unzip', ['-p', zipPath, 'good.jsonl/sft/train.jsonl'], { encoding: 'utf8' });
    expect(sft.trim().split('\n')).toHaveLength(want);
    const dpo = execFileSync('unzip', ['-p', zipPath, 'good.jsonl/dpo/train.jsonl'], { encoding: 'utf8' });
    expect(JSON.parse(dpo.trim())).toMatchObject({ chosen: [{ role: 'assistant', content: 'The chosen answer.' }] });
    // Nothing that looks like a credential in any exported byte.
    for (const b of [j.bytes, a.bytes, p.bytes, z.bytes]) expect(b.toString('latin1')).not.toMatch(/sk-[A-Za-z0-9]{8}|Bearer |api[_-]?key/i);
  });

  it('deletes a dataset only after the confirm step', async () => {
    await page.click('#data-delete-dataset');
    await page.waitForSelector('#data-delete-confirm:not([hidden])');
    expect(await page.textContent('#data-delete-confirm')).toMatch(/Delete “good\.jsonl” with its 46 records, 1 pairs/);
    await page.click('#data-delete-no');
    await page.waitForSelector('#data-delete-confirm', { state: 'hidden' });
    expect((await snapshot(page)).datasets.some((d) => d.id === goodId)).toBe(true);
    await page.click('#data-delete-dataset');
    await page.click('#data-delete-yes');
    await page.waitForSelector(`#data-datasets tr[data-id="${goodId}"]`, { state: 'detached' });
    const s = await snapshot(page);
    expect(s.datasets.map((d) => d.name).sort()).toEqual(['dropped conversations', 'six.parquet']);
    expect(s.records.some((r) => r.datasetId === goodId)).toBe(false);
    expect(s.pairs.some((r) => r.datasetId === goodId)).toBe(false);
    expect(await page.isHidden('#data-browse')).toBe(true);
  });

  it('imports preference pairs (TRL JSONL, detected) and trains a reward model on them from the Train stage', async () => {
    const colours = ['red', 'green', 'blue', 'white', 'black', 'brown'];
    const prefs = Array.from({ length: 24 }, (_, i) => JSON.stringify({
      prompt: `Which colour is thing number ${i}?`, chosen: `It is ${colours[i % 6]}, as the book says.`, rejected: `Seven tables sing ${i} times.`,
    })).join('\n');
    await importByPicker(page, 'prefs.jsonl', prefs);
    const r = await importResult(page);
    expect(r.state).toBe('done');
    expect(r.written).toBe(24);
    expect(await page.getAttribute('#data-import-status', 'data-kind')).toBe('pairs');
    expect(r.text).toMatch(/24 pairs written/);
    expect((await snapshot(page)).pairs.filter((p) => p.datasetId === r.dataset)).toHaveLength(24);
    await gotoStage(page, 'train');
    await page.selectOption('#train-dataset', r.dataset, { timeout: 30_000 });
    await page.selectOption('#train-method', 'reward');
    await page.selectOption('#train-preset', 'nano');
    await page.selectOption('#train-tokenizer', 'bpe');
    await page.fill('#train-vocab', '300');
    await page.dispatchEvent('#train-vocab', 'change');
    const runId = await startRunFromForm(page, { steps: 4, batch: 2, seqlen: 24, lr: 0.01, warmup: 1, evalEvery: 4, ckptEvery: 4, sampleEvery: 0, heldout: 4, name: 'imported-rm' });
    await page.waitForSelector(`#run-list tr[data-run="${runId}"][data-status="done"]`, { timeout: 300_000 });
    expect(await page.textContent(`#run-list tr[data-run="${runId}"]`)).toMatch(/reward model.*\d+% pairs/);
    expect(await page.isVisible('#chart-pairs')).toBe(true);
    expect(await page.isVisible('#chart-ppl')).toBe(false);
    // The Evaluate stage measures a reward model by held-out preference accuracy, not a perplexity.
    await gotoStage(page, 'evaluate');
    await page.selectOption('#eval-run', runId, { timeout: 30_000 });
    await page.click('#eval-go');
    await page.waitForSelector('#eval-status[data-done="ok"]', { timeout: 120_000 });
    expect(await page.textContent('#eval-status')).toMatch(/^Held-out preference accuracy \d+\.\d% \(a reward model/);
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
