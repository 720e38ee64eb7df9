// The local teacher in Chromium: the app's Teacher panel loads a tiny exported model (written into dist/models/
// e2e-tiny/, which vite preview serves) in the teacher worker through transformers.js, on WebGPU (SwiftShader
// here) and on the WASM fallback, and from the same folder picked as files. Greedy generation must give the ids
// of the float64 reference model's greedy loop, and the top-k table the reference's top-k log-probabilities.
// Every request of the page and its workers is recorded: none may leave 127.0.0.1 (ONNX Runtime's WASM files come
// from our build, not a CDN), and the model files must be among them (so the recording does see the worker).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refDecode, refLogprobs, tinyTeacher, writeFolder, type TinyTeacher } from '../support/tiny-teacher.ts';
import { guardOffsite, launchChromium, openApp, openGpuDetails, recordErrors, startDev } from './harness.ts';

const FOLDER = 'dist/models/e2e-tiny';
const PROMPT = 'The teacher reads';
const MAX_NEW = 20;

let t: TinyTeacher;
let browser: Browser;
let server: PreviewServer;
let page: Page;
let url: string;
const pageErrors: string[] = [];
const requests: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  t = tinyTeacher();
  writeFolder(FOLDER, t.files);
  // Every request of the context (pages and their dedicated workers); anything off 127.0.0.1 is recorded and refused.
  ({ url, server, browser, page } = await openApp({ offsite, pageErrors, requests }));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(FOLDER, { recursive: true, force: true });
});

async function load(kind: 'folder' | 'files', device: 'auto' | 'wasm'): Promise<{ device: string; text: string }> {
  await page.selectOption('#teacher-kind', kind);
  if (kind === 'folder') await page.fill('#teacher-source', 'models/e2e-tiny/');
  await page.selectOption('#teacher-device', device);
  await page.click('#teacher-load');
  await page.waitForSelector('#teacher-status[data-done]', { timeout: 180_000 });
  const text = (await page.textContent('#teacher-status')) ?? '';
  expect(await page.getAttribute('#teacher-status', 'data-done'), text).toBe('ready');
  return { device: (await page.getAttribute('#teacher-status', 'data-device')) ?? '', text };
}

interface Row { pos: number; id: number; topIds: number[]; topLogprobs: number[] }

async function generateGreedy(prompt = PROMPT, maxNew = MAX_NEW): Promise<{ ids: number[]; promptIds: number[]; rows: Row[] }> {
  await page.fill('#teacher-prompt', prompt);
  await page.setChecked('#teacher-greedy', true);
  await page.fill('#teacher-max', String(maxNew));
  await page.fill('#teacher-k', '5');
  await page.click('#teacher-generate');
  await page.waitForSelector('#teacher-gen-status[data-done]', { timeout: 180_000 });
  expect(await page.getAttribute('#teacher-gen-status', 'data-done'), (await page.textContent('#teacher-gen-status')) ?? '').toBe('ok');
  const list = (s: string | null) => (s ? s.split(',').map(Number) : []);
  const ids = list(await page.getAttribute('#teacher-output', 'data-ids'));
  const promptIds = list(await page.getAttribute('#teacher-output', 'data-prompt-ids'));
  const rows = await page.$$eval('#teacher-topk tr[data-pos]', (trs) => trs.map((tr) => ({
    pos: Number(tr.getAttribute('data-pos')), id: Number(tr.getAttribute('data-id')),
    topIds: (tr.getAttribute('data-top-ids') ?? '').split(',').map(Number),
    topLogprobs: (tr.getAttribute('data-top-logprobs') ?? '').split(',').map(Number),
  })));
  return { ids, promptIds, rows };
}

/** Greedy ids = the reference's; every row's top-5 ids = the reference's, their log-probabilities within tol. */
function checkAgainstReference(r: { ids: number[]; promptIds: number[]; rows: Row[] }, tol: number, prompt = PROMPT, maxNew = MAX_NEW): number {
  const promptIds = t.tokenizer.encode(prompt);
  expect(r.promptIds).toEqual(promptIds);
  const ref = refDecode(t, promptIds, maxNew);
  expect(Math.min(...ref.margins)).toBeGreaterThan(1e-3);
  expect(r.ids).toEqual(ref.ids);
  expect(r.rows.map((x) => x.id)).toEqual(ref.ids);
  const V = t.config.vocabSize;
  const lp = refLogprobs(t, [...promptIds, ...ref.ids]);
  let worst = 0;
  for (const row of r.rows) {
    const at = promptIds.length - 1 + row.pos;
    const ranked = Array.from(lp.subarray(at * V, (at + 1) * V)).map((x, id) => [x, id] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    expect(row.topIds, `row ${row.pos}`).toEqual(ranked.slice(0, 5).map((x) => x[1]));
    row.topLogprobs.forEach((x, i) => { worst = Math.max(worst, Math.abs(x - ranked[i]![0])); });
  }
  expect(worst).toBeLessThan(tol);
  return worst;
}

// ONNX Runtime's WebGPU backend on SwiftShader (the CPU Vulkan driver here) agrees with the float64 reference to
// float32 rounding (< 1e-5) at position 0, where RoPE angles are 0 and attention reads one key, and only to a few
// 1e-3 after it (measured: 3.4e-3 at most over these 20 rows). The likely cause is the precision of sin/cos (RoPE)
// and exp (softmax) in SwiftShader's shaders, which Vulkan leaves loose; it was not pinned down further. The WASM
// backend agrees to 1e-5 everywhere. Greedy ids must match exactly on both (reference margins are checked > 1e-3).
const TOL_WEBGPU = 1e-2;
const TOL_WASM = 1e-4;

describe('local teacher in Chromium (Teacher panel, teacher worker, transformers.js)', () => {
  it('loads models/e2e-tiny/ on WebGPU (auto) and generates the reference greedy ids and top-k', async () => {
    const s = await load('folder', 'auto');
    expect(s.device, s.text).toBe('webgpu');
    const worst = checkAgainstReference(await generateGreedy(), TOL_WEBGPU);
    console.log(`WebGPU: greedy ids equal; top-5 logprobs within ${worst.toExponential(2)} of the float64 reference`);
    mkdirSync('test-results', { recursive: true });
    await page.locator('#stage-teacher').screenshot({ path: 'test-results/teacher.png' });
    // One prompt token: the first row is position 0, where the WebGPU math is plain float32.
    const first = await generateGreedy('T', 1);
    expect(first.promptIds).toHaveLength(1);
    expect(checkAgainstReference(first, 1e-5, 'T', 1)).toBeLessThan(1e-5);
    expect(requests.some((u) => u.endsWith('/models/e2e-tiny/onnx/model.onnx')), requests.join('\n')).toBe(true);
  });

  it('the WASM backend (the fallback without an adapter) gives the same ids', async () => {
    const s = await load('folder', 'wasm');
    expect(s.device).toBe('wasm');
    const worst = checkAgainstReference(await generateGreedy(), TOL_WASM);
    console.log(`WASM: greedy ids equal; top-5 logprobs within ${worst.toExponential(2)} of the float64 reference`);
    expect(requests.some((u) => /\/assets\/ort-wasm-simd-threaded\.asyncify-[\w-]+\.wasm$/.test(u)), requests.join('\n')).toBe(true);
  });

  it('loads the same folder picked as files from disk (no request for model files)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'e2e-pick-')), 'picked-tiny');
    writeFolder(dir, t.files);
    await page.selectOption('#teacher-kind', 'files');
    await page.setInputFiles('#teacher-files', dir);
    const before = requests.length;
    const s = await load('files', 'auto');
    expect(s.text).toMatch(/Loaded picked-tiny on/);
    expect(requests.slice(before).filter((u) => /config\.json|tokenizer|\.onnx/.test(u))).toEqual([]);
    checkAgainstReference(await generateGreedy(), s.device === 'wasm' ? TOL_WASM : TOL_WEBGPU);
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

/** A fresh browser on `appUrl`: picks the tiny folder as files, loads it (auto device), generates greedily. */
async function pickedRun(appUrl: string, webgpu: boolean, before?: (p: Page) => Promise<void>): Promise<{ status: string; device: string; ids: number[]; offsite: string[]; errors: string[] }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'e2e-pick-')), 'picked-tiny');
  writeFolder(dir, t.files);
  const b = await launchChromium({ webgpu });
  const off: string[] = [];
  const errors: string[] = [];
  try {
    const ctx = await b.newContext();
    await guardOffsite(ctx, off);
    const p = await ctx.newPage();
    recordErrors(p, errors, { console: false });
    await p.goto(appUrl);
    await before?.(p);
    await p.selectOption('#teacher-kind', 'files');
    await p.setInputFiles('#teacher-files', dir);
    await p.click('#teacher-load');
    await p.waitForSelector('#teacher-status[data-done]', { timeout: 180_000 });
    const status = (await p.textContent('#teacher-status')) ?? '';
    expect(await p.getAttribute('#teacher-status', 'data-done'), status).toBe('ready');
    await p.fill('#teacher-prompt', PROMPT);
    await p.fill('#teacher-max', '12');
    await p.click('#teacher-generate');
    await p.waitForSelector('#teacher-gen-status[data-done]', { timeout: 180_000 });
    expect(await p.getAttribute('#teacher-gen-status', 'data-done')).toBe('ok');
    const ids = ((await p.getAttribute('#teacher-output', 'data-ids')) ?? '').split(',').map(Number);
    return { status, device: (await p.getAttribute('#teacher-status', 'data-device')) ?? '', ids, offsite: off, errors };
  } finally {
    await b.close();
  }
}

describe('local teacher elsewhere', () => {
  it('without a WebGPU adapter, auto falls back to WASM and says why', async () => {
    const r = await pickedRun(url, false);
    expect(r.device).toBe('wasm');
    expect(r.status).toMatch(/WASM instead of WebGPU: navigator\.gpu offered no adapter/);
    expect(r.ids).toEqual(refDecode(t, t.tokenizer.encode(PROMPT), 12).ids);
    expect(r.offsite).toEqual([]);
    expect(r.errors).toEqual([]);
  });

  it('the dev server (npm start) serves the same app: the engine worker finds the adapter, the teacher worker and ONNX Runtime files work', async () => {
    const dev = await startDev();
    try {
      const r = await pickedRun(dev.url, true, async (p) => {
        await openGpuDetails(p);
        await p.waitForSelector('#gpu-adapter', { timeout: 120_000 });
        expect(await p.isEnabled('#selftest-run')).toBe(true);
      });
      expect(r.ids).toEqual(refDecode(t, t.tokenizer.encode(PROMPT), 12).ids);
      expect(r.offsite).toEqual([]);
      expect(r.errors).toEqual([]);
    } finally {
      await dev.server.close();
    }
  });
});
