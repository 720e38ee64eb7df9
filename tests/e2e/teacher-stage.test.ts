// The Teacher stage in Chromium: the default local teacher loads with one click and the stepper's teacher step
// shows done; the remote form against real OpenAI-protocol test servers on 127.0.0.1 at other ports than the app
// (real cross-origin requests: the servers send CORS headers) lists the models and its Test connection reports
// token log-probabilities, a server without logprobs is reported as sequence-level only, a wrong key gets the 401
// explanation, a port with nothing listening and a server without CORS headers are told apart. The API key: with
// "Remember" off it is not in localStorage and after a reload the status asks for it; with "Remember" on it
// survives a reload and re-activates the teacher; it never appears in IndexedDB (every database, read raw), nor
// in localStorage outside the remember entry, nor in the page's HTML. Screenshots at 1280×800 and 390×800 go to
// test-results/ (teacher-local.png, teacher-remote.png, teacher-remote-narrow.png); nothing overflows either width.
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { gotoStage, openApp } from './harness.ts';
import { freePort as closedPort } from '../support/net.ts';

const KEY = 'sk-e2e-4f1c9a7d2b8e6f30';
const WRONG_KEY = 'sk-e2e-wrong-77aa11bb';
const MODEL = 'bigram-test-model';
const REMEMBER_ENTRY = 'distill:teacher-api-keys';

let browser: Browser;
let server: PreviewServer;
let page: Page;
let withKey: OpenAiServer;
let noLogprobs: OpenAiServer;
let noCors: http.Server;
let noCorsUrl: string;
const pageErrors: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  [withKey, noLogprobs] = await Promise.all([startOpenAiServer({ apiKey: KEY }), startOpenAiServer({ omitLogprobs: true })]);
  // A server that answers but sends no CORS headers: the browser hides its answers from the page.
  noCors = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
  });
  await new Promise<void>((resolve) => noCors.listen(0, '127.0.0.1', () => resolve()));
  noCorsUrl = `http://127.0.0.1:${(noCors.address() as { port: number }).port}/v1`;
  ({ server, browser, page } = await openApp({ offsite, pageErrors, teacher: 'shipped' }));
  await page.setViewportSize({ width: 1280, height: 800 });
  mkdirSync('test-results', { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await Promise.all([withKey?.close(), noLogprobs?.close(), new Promise((r) => noCors ? noCors.close(r) : r(undefined))]);
});


/** Nothing is wider than the window (no horizontal scrolling). */
async function expectNoOverflow(p: Page): Promise<void> {
  const r = await p.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('#stage-teacher *')]
      .filter((el) => (el as HTMLElement).offsetParent !== null && el.getBoundingClientRect().right > w + 1)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
    return { scroll: document.documentElement.scrollWidth, w, wide: wide.slice(0, 5) };
  });
  expect(r.wide, JSON.stringify(r)).toEqual([]);
  expect(r.scroll).toBeLessThanOrEqual(r.w);
}

async function stepState(): Promise<{ state: string; text: string }> {
  return { state: (await page.getAttribute('#step-teacher', 'data-state')) ?? '', text: (await page.textContent('#step-teacher .step-status')) ?? '' };
}

/** Fills the remote form (Tab commits each field, as a person's next move would). */
async function fillRemote(o: { baseURL: string; key: string; model?: string }): Promise<void> {
  await page.check('#teacher-mode-remote');
  await page.selectOption('#remote-preset', 'custom');
  await page.fill('#remote-base-url', o.baseURL);
  await page.press('#remote-base-url', 'Tab');
  await page.fill('#remote-key', o.key);
  await page.press('#remote-key', 'Tab');
  if (o.model !== undefined) {
    await page.fill('#remote-model', o.model);
    await page.press('#remote-model', 'Tab');
  }
}

async function testConnection(): Promise<{ result: string; problem: string | null; logprobs: string | null; text: string }> {
  await page.click('#remote-test');
  await page.waitForSelector('#remote-report[data-result="ok"], #remote-report[data-result="error"]', { timeout: 60_000 });
  return {
    result: (await page.getAttribute('#remote-report', 'data-result')) ?? '',
    problem: await page.getAttribute('#remote-report', 'data-problem'),
    logprobs: await page.getAttribute('#remote-report', 'data-logprobs'),
    text: (await page.textContent('#remote-report')) ?? '',
  };
}

/** Every record and key of every IndexedDB database of the page, read raw, as text (bytes decoded as latin1). */
async function indexedDbText(p: Page): Promise<{ dbs: string[]; text: string }> {
  return p.evaluate(async () => {
    const asText = (v: unknown) => JSON.stringify(v, (_k, x: unknown) =>
      ArrayBuffer.isView(x) ? new TextDecoder('latin1').decode(x as Uint8Array) : x instanceof ArrayBuffer ? new TextDecoder('latin1').decode(x) : x);
    const req = <T>(r: IDBRequest<T>) => new Promise<T>((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    const dbs = (await indexedDB.databases()).map((d) => d.name!).filter(Boolean);
    let text = '';
    for (const name of dbs) {
      const db = await req(indexedDB.open(name));
      for (const store of [...db.objectStoreNames]) {
        const tx = db.transaction(store, 'readonly');
        text += `${name}/${store}: ${asText(await req(tx.objectStore(store).getAll()))} ${asText(await req(tx.objectStore(store).getAllKeys()))}\n`;
      }
      db.close();
    }
    return { dbs, text };
  });
}

async function storageEntries(p: Page): Promise<Record<string, string>> {
  return p.evaluate(() => Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k) ?? ''])));
}

describe('Teacher stage', () => {
  it('the default local teacher loads with one click; the stepper shows the teacher step done', async () => {
    await gotoStage(page, 'teacher');
    expect(await page.isChecked('#teacher-mode-local')).toBe(true);
    expect(await page.textContent('#teacher-active')).toMatch(/No active teacher yet/);
    await page.click('#teacher-default');
    await page.waitForSelector('#teacher-status[data-done]', { timeout: 180_000 });
    const status = (await page.textContent('#teacher-status')) ?? '';
    expect(await page.getAttribute('#teacher-status', 'data-done'), status).toBe('ready');
    expect(status).toMatch(/^Loaded brown-teacher on WEBGPU/);
    await page.waitForSelector('#step-teacher[data-state="done"]');
    expect(await stepState()).toEqual({ state: 'done', text: 'brown-teacher · local · WebGPU' });
    expect(await page.textContent('#teacher-active-text')).toBe('Active teacher: brown-teacher (local, WebGPU) — token-level KD possible.');
    await page.fill('#teacher-max', '8');
    await page.click('#teacher-generate');
    await page.waitForSelector('#teacher-gen-status[data-done]', { timeout: 120_000 });
    expect(await page.getAttribute('#teacher-gen-status', 'data-done')).toBe('ok');
    await expectNoOverflow(page);
    await page.locator('#stage-teacher').screenshot({ path: 'test-results/teacher-local.png' });
  });

  it('the remote form asks a server nothing until the user does: not on opening, not on picking a preset', async () => {
    await page.check('#teacher-mode-remote');
    // The OpenAI preset without a key, then presets whose base URLs are not on 127.0.0.1: any request would go
    // off-site (the guard records it in `offsite`).
    for (const preset of ['openai', 'vllm', 'ollama', 'openai']) {
      await page.selectOption('#remote-preset', preset);
      await page.waitForTimeout(600);
    }
    expect(offsite).toEqual([]);
    // "List the models" without the key the preset needs: said, and still nothing sent.
    await page.click('#remote-models-refresh');
    await page.waitForFunction(() => /Enter your API key first/.test(document.querySelector('#remote-models-status')?.textContent ?? ''));
    expect(offsite).toEqual([]);
    // A keyless server: "List the models" asks it (and only then).
    await page.selectOption('#remote-preset', 'custom');
    await page.fill('#remote-base-url', noLogprobs.url);
    await page.press('#remote-base-url', 'Tab');
    await page.waitForTimeout(500);
    expect(noLogprobs.stats.requests, 'the base URL alone asked the server').toBe(0);
    await page.click('#remote-models-refresh');
    await page.waitForSelector('#remote-models-status[data-count="1"]', { timeout: 30_000 });
    expect(noLogprobs.stats.requests).toBeGreaterThan(0);
    expect(noLogprobs.stats.chatRequests).toBe(0);
    expect(await page.inputValue('#remote-model')).toBe(MODEL);
    await page.fill('#remote-model', '');
    await page.press('#remote-model', 'Tab');
  });

  it('remote, cross-origin with a key: the models are listed and Test connection reports token log-probabilities', async () => {
    await fillRemote({ baseURL: withKey.url, key: KEY });
    // The key's change lists the models; the empty model field takes the first one.
    await page.waitForSelector('#remote-models-status[data-count="1"]', { timeout: 30_000 });
    expect(await page.inputValue('#remote-model')).toBe(MODEL);
    expect(await page.$$eval('#remote-models option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual([MODEL]);
    const r = await testConnection();
    expect(r.result, r.text).toBe('ok');
    expect(r.logprobs).toBe('yes');
    expect(r.text).toMatch(/Connected: bigram-test-model answered in [\d.]+ s\./);
    expect(r.text).toMatch(/Token-level KD possible/);
    expect(r.text).toMatch(/Model that answeredbigram-test-model/);
    const port = new URL(withKey.url).port;
    expect(await stepState()).toEqual({ state: 'done', text: `bigram-test-model · 127.0.0.1:${port} · token-level KD` });
    expect(await page.textContent('#teacher-active-text')).toBe(`Active teacher: bigram-test-model (127.0.0.1:${port}) — token-level KD possible.`);
    // The key went to that server, only in the Authorization header; the page's HTML does not hold it.
    expect(withKey.stats.authorizations.filter((a) => a !== null).every((a) => a === `Bearer ${KEY}`)).toBe(true);
    expect(withKey.stats.chatBodies.at(-1)).toMatchObject({ logprobs: true, top_logprobs: 5 });
    expect(await page.content()).not.toContain(KEY);
    await expectNoOverflow(page);
    await page.locator('#stage-teacher').screenshot({ path: 'test-results/teacher-remote.png' });
    await page.setViewportSize({ width: 390, height: 800 });
    await expectNoOverflow(page);
    await page.screenshot({ path: 'test-results/teacher-remote-narrow.png', fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('a server without logprobs: only sequence-level KD, said plainly', async () => {
    await fillRemote({ baseURL: noLogprobs.url, key: '', model: MODEL });
    const r = await testConnection();
    expect(r.result, r.text).toBe('ok');
    expect(r.logprobs).toBe('no');
    expect(r.text).toMatch(/Only sequence-level KD \(SFT on the teacher's answers\): this server returns no log-probabilities\./);
    expect((await stepState()).text).toMatch(/· sequence-level KD only$/);
  });

  it('a wrong key: the 401 explanation, without the key', async () => {
    await fillRemote({ baseURL: withKey.url, key: WRONG_KEY, model: MODEL });
    const r = await testConnection();
    expect(r.result).toBe('error');
    expect(r.problem).toBe('auth');
    expect(r.text).toMatch(/The server refused the API key \(HTTP 401\)\./);
    expect(r.text).toMatch(/Check the API key for 127\.0\.0\.1:\d+/);
    expect(await page.content()).not.toContain(WRONG_KEY);
  });

  it('nothing listening, and a server without CORS headers, are told apart', async () => {
    const port = await closedPort();
    await fillRemote({ baseURL: `http://127.0.0.1:${port}/v1`, key: '', model: 'm' });
    let r = await testConnection();
    expect(r.problem, r.text).toBe('unreachable');
    expect(r.text).toMatch(/Nothing answered at http:\/\/127\.0\.0\.1:\d+: the server is not running/);
    await fillRemote({ baseURL: noCorsUrl, key: '', model: 'm' });
    r = await testConnection();
    expect(r.problem, r.text).toBe('cors');
    const origin = new URL(page.url()).origin;
    expect(r.text).toContain(`it does not allow requests from this page's origin (${origin}). This is CORS.`);
    expect(r.text).toContain(`OLLAMA_ORIGINS=${origin} ollama serve`);
  });

  it('"Remember" off: the key is not stored, and after a reload the status asks for it', async () => {
    await fillRemote({ baseURL: withKey.url, key: KEY, model: MODEL });
    expect(await page.isChecked('#remote-remember')).toBe(false);
    expect((await testConnection()).result).toBe('ok');
    expect(JSON.stringify(await storageEntries(page))).not.toContain(KEY);
    await page.reload();
    await page.waitForSelector('#stage-teacher:not([hidden])');
    await page.waitForSelector('#step-teacher[data-state="ready"]', { timeout: 30_000 });
    expect((await stepState()).text).toBe(`${MODEL}: enter your API key`);
    expect(await page.isChecked('#teacher-mode-remote')).toBe(true);
    expect(await page.inputValue('#remote-base-url')).toBe(withKey.url);
    expect(await page.inputValue('#remote-model')).toBe(MODEL);
    expect(await page.inputValue('#remote-key')).toBe('');
    expect(await page.getAttribute('#remote-report', 'data-result')).toBe('need-key');
    expect(await page.textContent('#teacher-active')).toMatch(/needs its API key again .*Enter your API key below/);
  });

  it('"Remember" on: the key survives a reload (only under its entry) and the teacher is active again; never in IndexedDB', async () => {
    await page.fill('#remote-key', KEY);
    await page.press('#remote-key', 'Tab');
    await page.check('#remote-remember');
    expect(await page.isVisible('#remote-remember-warning')).toBe(true);
    expect(await page.textContent('#remote-remember-warning')).toMatch(/anyone using this browser profile can read it/);
    expect((await testConnection()).result).toBe('ok');
    const stored = await storageEntries(page);
    expect(JSON.parse(stored[REMEMBER_ENTRY]!)).toEqual({ [withKey.url]: KEY });
    expect(Object.entries(stored).filter(([k, v]) => k !== REMEMBER_ENTRY && v.includes(KEY))).toEqual([]);
    await page.reload();
    await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 30_000 });
    expect((await stepState()).text).toBe(`${MODEL} · 127.0.0.1:${new URL(withKey.url).port} · token-level KD`);
    expect(await page.inputValue('#remote-key')).toBe(KEY);
    expect(await page.isChecked('#remote-remember')).toBe(true);
    const idb = await indexedDbText(page);
    expect(idb.text).not.toContain(KEY);
    expect(await page.content()).not.toContain(KEY);
    // Unticking deletes the stored key at once.
    await page.uncheck('#remote-remember');
    expect(Object.keys(await storageEntries(page))).not.toContain(REMEMBER_ENTRY);
    console.log(`IndexedDB databases read: ${idb.dbs.join(', ') || '(none)'}`);
  });

  it('a local teacher from a served folder is loaded again after a reload', async () => {
    await page.check('#teacher-mode-local');
    await page.click('#teacher-default');
    await page.waitForFunction(() => document.querySelector('#step-teacher .step-status')?.textContent === 'brown-teacher · local · WebGPU', null, { timeout: 180_000 });
    await page.reload();
    await page.waitForSelector('#teacher-status[data-done]', { timeout: 180_000 });
    expect(await page.getAttribute('#teacher-status', 'data-done')).toBe('ready');
    expect(await page.isChecked('#teacher-mode-local')).toBe(true);
    await page.waitForSelector('#step-teacher[data-state="done"]');
    expect((await stepState()).text).toBe('brown-teacher · local · WebGPU');
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    // Chromium logs a console error for each request it blocks (CORS) or that finds nothing listening: expected here.
    expect(pageErrors.filter((e) => !/Access-Control-Allow-Origin|CORS policy|ERR_CONNECTION_REFUSED|ERR_FAILED|status of 401|Failed to load resource/.test(e))).toEqual([]);
  });
});
