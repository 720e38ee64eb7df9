// The remote-teacher walk in Chromium, through the page as a user does it, against the test OpenAI server
// (tests/support/openai-server.ts on 127.0.0.1, CORS, an API key, ~31% of chat requests faulted: 429/500/503 with
// retry-after, streams cut mid-way, malformed JSON/SSE, late answers). Never-answering hangs are off: the remote form
// has no timeout setting and the RemoteTeacher waits 60 s per hung attempt (src/teacher/config.ts). The server's
// model is JudgeModel (remote-support.ts): the bigram model, except that it grades (feedback.grade) and verifies
// (self-knowledge.verify) deterministically, so the test knows which pairs and records the jobs must write.
// 1. Teacher stage: remote, custom preset, base URL, key ("Remember" off), model, Test connection → OK → Use. Data
//    stage: a labeling job of 16 prompts through the faults → done; raw IndexedDB: one record per prompt, keys equal
//    to the job's idempotency keys, progress and counts 16, tokens = the records' usage; the server counted faults.
//    The key then appears nowhere: every dataset export the Data stage offers (JSONL ×3 and Parquet ×3, each with and
//    without provenance, the scale-out zip unzipped), the zips of a tiny SFT run (new BPE of 300, nano, 3 steps) in
//    every export format (safetensors, ONNX, transformers.js, GGUF F32 and F16; every file), every IndexedDB database
//    of the origin read raw (every store, key and value; binary values as bytes), localStorage (no remember entry at
//    all), sessionStorage, Cache Storage, OPFS (a read error fails the scan), the page's HTML and form fields — each
//    search proven able to find the key by a positive control planted in that very place (and the zips by a zip).
// 2. With that run as the student: feedback → preference pairs, each the judge's best vs worst sample of its prompt;
//    self-knowledge (verify) → records exactly the samples the judge accepted; DPO from the SFT run on the pairs; a
//    reward model from the SFT run on those pairs (the judge's preferences, distilled), then RL (GRPO) from the SFT run
//    against it on the labeling prompts, paused and resumed from the page, its reward/KL/length charts drawn; RL judged
//    by the server itself (every answer graded through the page's teacher, faults on).
// 3. "Remember on this device" ticked: the whole origin scanned again finds the key in its own localStorage entry
//    only (also after a reload, which restores it from there); unticked, nowhere.
// Screenshots: test-results/remote-teacher.png, remote-data-done.png, feedback-pairs.png.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { renderPrompt } from '../support/text-model.ts';
import { browseDataset, snapshot, type RawJob, type Snapshot } from './data-support.ts';
import { gotoStage, openApp, runLogs, type AppSession } from './harness.ts';
import {
  deleteDb, findNeedles, JudgeModel, judgeScore, judgeTask, judgeVerdict, plantControlDb, plantControls, removeControls, scanOrigin, scanParquet, scanZip,
} from './remote-support.ts';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const TAIL = Array.from(randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join('');
const KEY = `sk-test-${TAIL}`;
/** The whole key, and its random part alone (found even if a prefix were stripped or the key re-wrapped). */
const NEEDLES = [KEY, TAIL];
const REMEMBER_ENTRY = 'distill:teacher-api-keys';
const PROMPTS = [
  'The river ran past the mill', 'Every morning she carried bread', 'The people of the village', 'In the spring the fields',
  'In the summer the heat', 'In the autumn the apples', 'In the winter the snow', 'One year a stranger came',
  'He asked the way to the mountains', 'The seasons turned', 'On clear nights she looked', 'At last, on a cold morning',
  'He gave the seeds to the village', 'The children played in the shade', 'She planted one tree', 'A promise is a kind of seed',
];
const FEEDBACK_PROMPTS = ['The river ran', 'In the spring', 'The stranger said', 'The mill stood'];
const SK_PROMPTS = ['The village was', 'In the winter', 'The children ran'];
/** Chromium's console lines for the injected faults (failed fetches): expected here, nothing else is. */
const FAULT_CONSOLE = /Failed to load resource: the server responded with a status of (429|500|503)|net::ERR_(INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE|CONNECTION_RESET|CONNECTION_CLOSED|FAILED)/;

let s: AppSession;
let page: Page;
let teacher: OpenAiServer;
const pageErrors: string[] = [];
const offsite: string[] = [];
const out = mkdtempSync(join(tmpdir(), 'remote-flow-'));

let unauthorizedBeforeKey = 0;

const faultTotal = () => Object.values(teacher.stats.faults).reduce((a, b) => a + b, 0);

/** Presses Start, waits for the job to end; returns the job and the store as they are then. */
async function runJob(timeout = 180_000): Promise<{ job: RawJob; s: Snapshot; state: string; status: string }> {
  const before = await page.getAttribute('#data-status', 'data-job');
  await page.waitForSelector('#data-start:not([disabled])', { timeout: 30_000 });
  await page.click('#data-start');
  await page.waitForFunction((prev) => {
    const st = document.querySelector('#data-status');
    const state = st?.getAttribute('data-state');
    return (state === 'error' && st?.getAttribute('data-job') === prev) || (st?.getAttribute('data-job') !== prev && ['done', 'error', 'stopped'].includes(state ?? ''));
  }, before, { timeout, polling: 100 });
  const state = (await page.getAttribute('#data-status', 'data-state')) ?? '';
  const status = (await page.textContent('#data-status')) ?? '';
  const id = await page.getAttribute('#data-status', 'data-job');
  const snap = await snapshot(page);
  return { job: snap.jobs.find((j) => j.id === id)!, s: snap, state, status };
}

async function chooseStrategy(name: string): Promise<void> {
  await page.selectOption('#data-strategy', name);
  await page.waitForSelector('#data-preview:not([data-state="pending"])');
}

/** Fills the Train stage's form and starts the run; returns its id. */
async function startRun(o: { name: string; datasetId: string; method: 'sft' | 'dpo' | 'reward' | 'rl'; initFrom?: string; steps: number; batch?: number; rl?: { rewardRun?: string; G: number; tokens: number } }): Promise<string> {
  await gotoStage(page, 'train');
  await page.selectOption('#train-dataset', o.datasetId, { timeout: 30_000 });
  await page.selectOption('#train-method', o.method);
  if (o.rl) {
    await page.selectOption('#train-rl-reward', o.rl.rewardRun ? 'model' : 'judge');
    if (o.rl.rewardRun) await page.selectOption('#train-reward-run', o.rl.rewardRun, { timeout: 30_000 });
    await page.fill('#train-rl-g', String(o.rl.G));
    await page.fill('#train-rl-tokens', String(o.rl.tokens));
  }
  await page.selectOption('#train-init', o.initFrom ?? '', { timeout: 30_000 });
  if (!o.initFrom) {
    await page.selectOption('#train-tokenizer', 'bpe');
    await page.fill('#train-vocab', '300');
    await page.dispatchEvent('#train-vocab', 'change');
    await page.selectOption('#train-preset', 'nano');
  }
  for (const [id, v] of [['steps', o.steps], ['batch', o.batch ?? 2], ['seqlen', 24], ['lr', 0.01], ['warmup', 1]] as const) await page.fill(`#train-${id}`, String(v));
  await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
  for (const [id, v] of [['eval-every', o.steps], ['ckpt-every', o.steps], ['sample-every', 0], ['heldout', 4]] as const) await page.fill(`#train-${id}`, String(v));
  await page.fill('#train-prompts', '');
  await page.fill('#train-name', o.name);
  await page.dispatchEvent('#train-name', 'change');
  await page.waitForFunction(() => document.querySelector('#train-plan')?.getAttribute('data-ok') === 'true' && !(document.querySelector('#train-start') as HTMLButtonElement).disabled,
    null, { timeout: 60_000 }).catch(async (e) => { throw new Error(`the plan did not pass: ${await page.textContent('#train-plan')} (${String(e)})`); });
  const before = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
  await page.click('#train-start');
  const id = await page.waitForFunction((b) => [...document.querySelectorAll('#run-list tr[data-run]')].map((t) => t.getAttribute('data-run')).find((r) => r && !b.includes(r)), before, { timeout: 120_000 });
  return (await id.jsonValue()) as string;
}

async function waitRunDone(runId: string, timeout = 200_000): Promise<void> {
  await page.waitForSelector(`#run-list tr[data-run="${runId}"][data-status="done"], #run-list tr[data-run="${runId}"][data-status="failed"]`, { timeout });
  const st = await page.getAttribute(`#run-list tr[data-run="${runId}"]`, 'data-status');
  expect(st, (await page.textContent('#train-status')) ?? '').toBe('done');
}

interface RawRun { id: string; status: string; step: number; params: number; tokenizerVocab: number; spec: { method: string; datasetId: string; preset: string; initFrom?: string; tokenizer: { kind: string; vocabSize?: number } }; train: { steps: number; batchSize: number; seqLen: number }; data: { trainRecords: number; heldOutRecords: number; trainPairs: number; heldOutPairs: number } }

/** A run as stored in the runs database, read by a raw IndexedDB transaction in the page. */
async function rawRun(runId: string): Promise<RawRun> {
  return page.evaluate((id) => new Promise<RawRun>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill-runs');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const r = req.result.transaction('runs', 'readonly').objectStore('runs').get(id);
      r.onsuccess = () => { req.result.close(); resolve(r.result as RawRun); };
      r.onerror = () => reject(r.error);
    };
  }), runId);
}

/** Clicks a download button and saves what it downloads under `out`. */
async function download(button: string, timeout = 120_000): Promise<{ path: string; name: string }> {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout }), page.click(button)]);
  const path = join(out, d.suggestedFilename());
  await d.saveAs(path);
  return { path, name: d.suggestedFilename() };
}

beforeAll(async () => {
  teacher = await startOpenAiServer({
    apiKey: KEY, model: new JudgeModel(), seed: 20261202,
    faults: { p429: 0.06, p500: 0.05, p503: 0.05, pCutStream: 0.06, pMalformed: 0.03, pTimeout: 0.06, timeoutMode: 'late', lateMs: 1500, retryAfterMs: [5, 60], cutMode: 'mixed' },
  });
  s = await openApp({ offsite, pageErrors, acceptDownloads: true });
  page = s.page;
  await page.setViewportSize({ width: 1280, height: 800 });
  mkdirSync('test-results', { recursive: true });
});

afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
  await teacher?.close();
});

describe('a remote teacher with faults: data exactly once, the API key never stored or exported; feedback and self-knowledge', () => {
  const MODEL = 'judge-bigram-model';
  let datasetId = '';
  let sftRun = '';
  let feedbackDataset = '';

  it('Teacher stage: remote, custom preset, the key ("Remember" off), Test connection → OK, used as the teacher', async () => {
    await gotoStage(page, 'teacher');
    await page.check('#teacher-mode-remote');
    await page.selectOption('#remote-preset', 'custom');
    await page.fill('#remote-base-url', teacher.url);
    await page.press('#remote-base-url', 'Tab');
    await page.fill('#remote-key', KEY);
    await page.press('#remote-key', 'Tab');
    expect(await page.isChecked('#remote-remember')).toBe(false);
    await page.fill('#remote-model', MODEL);
    await page.press('#remote-model', 'Tab');
    // Test connection sends one chat request without retries: a fault injected into it is reported, and the user
    // presses the button again.
    const tries: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.click('#remote-test');
      await page.waitForSelector('#remote-report[data-result="ok"], #remote-report[data-result="error"]', { timeout: 60_000 });
      const result = await page.getAttribute('#remote-report', 'data-result');
      const problem = await page.getAttribute('#remote-report', 'data-problem');
      tries.push(`${result}${problem ? `:${problem}` : ''}`);
      if (result === 'ok') break;
      expect(problem, (await page.textContent('#remote-report')) ?? '').toMatch(/^(rate-limit|server|malformed|incomplete|connection|timeout)$/);
    }
    console.log(`Test connection: ${tries.join(', ')}`);
    expect(tries.at(-1)).toBe('ok');
    expect(await page.getAttribute('#remote-report', 'data-logprobs')).toBe('yes');
    await page.click('#remote-use');
    await page.waitForSelector('#step-teacher[data-state="done"]');
    const port = new URL(teacher.url).port;
    expect(await page.textContent('#teacher-active-text')).toBe(`Active teacher: ${MODEL} (127.0.0.1:${port}) — token-level KD possible.`);
    expect(await page.inputValue('#remote-key')).toBe(KEY);
    await page.locator('#stage-teacher').screenshot({ path: 'test-results/remote-teacher.png' });
    // The page lists the server's models 300 ms after the base URL changed: on a loaded machine that can be before
    // the key was typed (a 401, logged by Chromium). At most that one; after this point no request goes without it.
    unauthorizedBeforeKey = teacher.stats.unauthorized;
    expect(unauthorizedBeforeKey).toBeLessThanOrEqual(1);
  });

  it('Data stage: a labeling job of 16 prompts through the faults → done, one record per prompt (raw IndexedDB)', async () => {
    await gotoStage(page, 'data');
    await page.waitForFunction((m) => document.querySelector('#data-teacher-bar')?.getAttribute('data-kind') === 'remote'
      && (document.querySelector('#data-teacher-bar')?.textContent ?? '').includes(m), MODEL, { timeout: 30_000 });
    await chooseStrategy('labeling');
    await page.selectOption('#data-target', '');
    await page.fill('#data-prompts', PROMPTS.join('\n'));
    for (const [id, v] of [['max', 16], ['temperature', 0.5], ['seed', 11], ['batch', 4]] as const) await page.fill(`#data-${id}`, String(v));
    const f0 = faultTotal(), c0 = teacher.stats.chatRequests, s0 = teacher.stats.served, u0 = teacher.stats.unauthorized, faults0 = { ...teacher.stats.faults };
    const t0 = Date.now();
    const { job, s: snap, state, status } = await runJob();
    const secs = (Date.now() - t0) / 1000;
    expect(state, status).toBe('done');
    expect(job.status).toBe('done');
    expect(job.kind).toBe('elicit:labeling');
    datasetId = job.datasetId;
    const recs = snap.records.filter((r) => r.datasetId === datasetId);
    expect(recs).toHaveLength(PROMPTS.length);
    expect(new Set(recs.map((r) => r.key)).size).toBe(PROMPTS.length);
    expect(new Set(recs.map((r) => r.id)).size).toBe(PROMPTS.length);
    expect(recs.map((r) => r.key).sort()).toEqual(PROMPTS.map((_, i) => `${job.id}:labeling:${i}:0`).sort());
    for (const r of recs) {
      const i = Number(r.key.split(':')[2]);
      expect(r.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(r.messages[0]!.content, r.key).toBe(PROMPTS[i]);
      expect(r.provenance).toMatchObject({ strategy: 'labeling', teacher: { kind: 'openai-compatible', model: MODEL } });
      expect(r.provenance.usage.output).toBeGreaterThan(0);
    }
    expect(job.progress).toMatchObject({ done: PROMPTS.length, total: PROMPTS.length });
    expect(job.progress.tokens).toBe(recs.reduce((a, r) => a + r.provenance.usage.input + r.provenance.usage.output, 0));
    expect(snap.datasets.find((d) => d.id === datasetId)!.counts).toMatchObject({ records: PROMPTS.length, pairs: 0 });
    expect(await page.textContent('#data-progress-text')).toMatch(/^16\/16 prompts · [\d,]+ tokens · cost \$0\.0000$/);
    expect((await page.$$('#data-records li[data-key]')).length).toBe(PROMPTS.length);
    // The faults were real: the server injected them into this job's requests, and it needed more requests than prompts.
    const faults = Object.fromEntries(Object.entries(teacher.stats.faults).map(([k, v]) => [k, v - faults0[k as keyof typeof faults0]]));
    const injected = faultTotal() - f0;
    console.log(`labeling: ${secs.toFixed(1)} s, ${teacher.stats.chatRequests - c0} chat requests, ${teacher.stats.served - s0} served, faults ${JSON.stringify(faults)}`);
    expect(injected).toBeGreaterThanOrEqual(3);
    expect(Object.values(faults).filter((v) => v > 0).length).toBeGreaterThanOrEqual(2);
    expect(teacher.stats.chatRequests - c0).toBeGreaterThan(PROMPTS.length);
    expect(teacher.stats.served - s0).toBeGreaterThanOrEqual(PROMPTS.length);
    // The key did reach the server (the control for the searches below): in the Authorization header, every time.
    // (Counted from the job's start: the Teacher stage may list /v1/models once before the key is typed.)
    expect(teacher.stats.unauthorized - u0).toBe(0);
    const auths = teacher.stats.authorizations.filter((a) => a !== null);
    expect(auths.length).toBeGreaterThan(PROMPTS.length);
    expect(new Set(auths)).toEqual(new Set([`Bearer ${KEY}`]));
    await page.locator('#stage-data').screenshot({ path: 'test-results/remote-data-done.png' });
  });

  it('the search finds a planted key in zips (deflated), Parquet (SNAPPY) and plain files: the control for the exports', async () => {
    const dir = mkdtempSync(join(out, 'control-'));
    writeFileSync(join(dir, 'note.txt'), `a b c ${KEY} d e f `.repeat(50));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'w.bin'), Buffer.concat([Buffer.alloc(4000), Buffer.from(KEY), Buffer.alloc(4000)]));
    execFileSync('zip', ['-q', '-r', '-9', join(out, 'control.zip'), '.'], { cwd: dir });
    expect(findNeedles(readFileSync(join(out, 'control.zip')), [KEY]), 'deflate hides the key from a raw search').toEqual([]);
    const z = scanZip(join(out, 'control.zip'), NEEDLES);
    expect(z.hits.sort()).toEqual([`note.txt: ${KEY}`, `note.txt: ${TAIL}`, `sub/w.bin: ${KEY}`, `sub/w.bin: ${TAIL}`].sort());
    const pq = parquetWriteBuffer({ columnData: [{ name: 'text', data: Array.from({ length: 20 }, (_, i) => `row ${i} ${i === 7 ? KEY : ''} ${'abc '.repeat(20)}`) }] });
    const p = await scanParquet(new Uint8Array(pq), NEEDLES);
    expect(p.rows).toHaveLength(20);
    expect(p.hits).toEqual(expect.arrayContaining([`(decoded rows): ${KEY}`, `(decoded rows): ${TAIL}`]));
  });

  it('every export of the dataset (JSONL ×3, Parquet ×3, with and without provenance; the scale-out zip) is free of the key', async () => {
    await browseDataset(page, datasetId);
    const formats = await page.$$eval('#data-export-format option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(formats).toEqual(['jsonl-openai', 'jsonl-sharegpt', 'jsonl-alpaca', 'parquet-openai', 'parquet-sharegpt', 'parquet-alpaca', 'scaleout']);
    const report: string[] = [];
    for (const format of formats) {
      for (const prov of format === 'scaleout' ? [false] : [false, true]) {
        await page.selectOption('#data-export-format', format);
        if (format !== 'scaleout') await page.setChecked('#data-export-provenance', prov);
        const f = await download('#data-export');
        await page.waitForSelector('#data-export-status[data-state="done"], #data-export-status[data-state="error"]');
        expect(await page.getAttribute('#data-export-status', 'data-state'), (await page.textContent('#data-export-status')) ?? '').toBe('done');
        expect(await page.getAttribute('#data-export-status', 'data-file')).toBe(f.name);
        const bytes = readFileSync(f.path);
        if (format.startsWith('jsonl')) {
          const lines = bytes.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
          expect(lines).toHaveLength(PROMPTS.length);
          expect(lines.every((l) => 'provenance' in l)).toBe(prov);
          expect(findNeedles(bytes, NEEDLES), f.name).toEqual([]);
          report.push(`${f.name}${prov ? ' +prov' : ''}: ${bytes.length} B`);
        } else if (format.startsWith('parquet')) {
          const p = await scanParquet(bytes, NEEDLES);
          expect(p.rows).toHaveLength(PROMPTS.length);
          expect(p.hits, f.name).toEqual([]);
          report.push(`${f.name}${prov ? ' +prov' : ''}: ${bytes.length} B, ${p.rows.length} rows`);
        } else {
          expect(await page.textContent('#data-export-status')).toMatch(/16 SFT conversations, 0 DPO pairs/);
          const z = scanZip(f.path, NEEDLES);
          expect(z.files.length).toBeGreaterThanOrEqual(2);
          const sft = z.files.filter((x) => /sft.*\.jsonl$/i.test(x.path));
          expect(sft.length, JSON.stringify(z.files)).toBeGreaterThanOrEqual(1);
          expect(z.hits).toEqual([]);
          report.push(`${f.name}: ${z.files.map((x) => `${x.path} (${x.bytes} B)`).join(', ')}`);
        }
      }
    }
    console.log(`dataset exports searched:\n  ${report.join('\n  ')}`);
  });

  it('Train: a tiny SFT run (new BPE of 300, nano, 3 steps) → done; its zip in every export format holds no key', async () => {
    const t0 = Date.now();
    sftRun = await startRun({ name: 'remote-sft', datasetId, method: 'sft', steps: 3 });
    await waitRunDone(sftRun);
    console.log(`SFT run: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const run = await rawRun(sftRun);
    expect(run).toMatchObject({ status: 'done', step: 3, tokenizerVocab: 300, spec: { method: 'sft', datasetId, preset: 'nano', tokenizer: { kind: 'bpe', vocabSize: 300 } }, train: { steps: 3, batchSize: 2, seqLen: 24 } });
    expect(run.data).toMatchObject({ trainRecords: 12, heldOutRecords: 4 });
    await gotoStage(page, 'export');
    await page.selectOption('#export-source', `run:${sftRun}`, { timeout: 30_000 });
    const seen: string[] = [];
    const formats = await page.$$eval('#export-format option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    const weightsOf = { safetensors: ['model.safetensors'], onnx: ['model.onnx'], 'onnx-q8': ['model_quantized.onnx'], 'onnx-q4': ['model_q4.onnx'], 'transformers.js': ['model.safetensors', 'model.onnx'], gguf: ['model.gguf'], 'gguf-f16': ['model.gguf'], 'gguf-q8_0': ['model.gguf'], 'gguf-q4_k_m': ['model.gguf'], 'gguf-q4_0': ['model.gguf'], ollama: ['model.gguf', 'Modelfile'] } as const;
    expect(formats.sort()).toEqual(Object.keys(weightsOf).sort());
    for (const [format, weights] of Object.entries(weightsOf)) {
      await page.selectOption('#export-format', format);
      const f = await download('#export-zip', 180_000);
      await page.waitForSelector('#export-status[data-done]', { timeout: 60_000 });
      expect(await page.getAttribute('#export-status', 'data-done'), (await page.textContent('#export-status')) ?? '').toBe('ok');
      const z = scanZip(f.path, NEEDLES);
      for (const w of weights) expect(z.files.map((x) => x.path.split('/').at(-1))).toContain(w);
      expect(z.files.map((x) => x.path.split('/').at(-1))).toContain('training.json');
      expect(z.hits).toEqual([]);
      // training.json names the data and configs of the run; the teacher's settings may be there, its key not.
      const training = z.files.find((x) => x.path.endsWith('training.json'))!;
      expect(readFileSync(join(z.dir, training.path), 'utf8')).not.toMatch(/sk-test-|Bearer/);
      seen.push(`${f.name}: ${z.files.map((x) => `${x.path} (${x.bytes} B)`).join(', ')}`);
    }
    console.log(`run exports searched:\n  ${seen.join('\n  ')}`);

    // What each format costs, measured in the page's engine on the run's held-out data.
    await page.click('#export-compare');
    await page.waitForSelector('#export-compare-status[data-done]', { timeout: 120_000 });
    expect(await page.getAttribute('#export-compare-status', 'data-done'), (await page.textContent('#export-compare-status')) ?? '').toBe('ok');
    const rows = await page.$$eval('#export-compare-table tr[data-format]', (trs) => trs.map((t) => [t.getAttribute('data-format'), ...[...t.querySelectorAll('td')].map((td) => td.textContent)]));
    expect(rows.map((r) => r[0])).toEqual(['gguf', 'gguf-f16', 'gguf-q8_0', 'gguf-q4_k_m', 'gguf-q4_0']);
    expect(rows[0]![4]).toBe('reference');
    for (const r of rows) expect(r[3], JSON.stringify(r)).toMatch(/^\d+\.\d\d$/);
    expect(await page.textContent('#export-format option[value="gguf-q4_0"]')).toMatch(/KiB, perplexity [+−]?\d/);
    await page.screenshot({ path: 'test-results/export-compare.png', fullPage: true });
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: 'test-results/export-compare-narrow.png', fullPage: true });
    await page.setViewportSize(size);
  });

  it('the key is in no IndexedDB database, storage, cache or file of the origin, nor in the page (after a planted control is found)', async () => {
    const control = 'remote-flow-planted-control';
    await plantControlDb(page, control, KEY);
    const where = await plantControls(page, control, KEY);
    const planted = await scanOrigin(page, NEEDLES, ['remote-key']);
    const mine = planted.hits.filter((h) => h.startsWith(`idb:${control}/`));
    for (const k of ['string', 'typed', 'arraybuffer', 'blob']) {
      for (const n of NEEDLES) expect(mine.some((h) => h.includes(`[${k}]`) && h.endsWith(n)), `planted ${k} / ${n} not found: ${mine.join(' | ')}`).toBe(true);
    }
    // Each of the other places: both needles found there, and nothing found anywhere but at the planted values.
    for (const [place, prefix] of Object.entries(where)) {
      for (const n of NEEDLES) expect(planted.hits.some((h) => h.startsWith(prefix) && h.endsWith(n)), `planted ${place} / ${n} not found: ${planted.hits.join(' | ')}`).toBe(true);
    }
    expect(planted.hits.filter((h) => !h.startsWith(`idb:${control}/`) && !Object.values(where).some((p) => h.startsWith(p))), 'a hit outside the planted places').toEqual([]);
    expect(planted.opfsFiles).toContain(`/${control}.bin`);
    expect(planted.caches).toContain(control);
    await deleteDb(page, control);
    await removeControls(page, control);
    const r = await scanOrigin(page, NEEDLES, ['remote-key']);
    console.log(`origin scan: ${r.dbs.length} databases (${r.dbs.join(', ')}), ${r.values} values, ${r.binaryBytes} binary bytes; stores: ${r.stores.join('; ')}; ` +
      `localStorage [${r.localStorageKeys.join(', ')}]; caches [${r.caches.join(', ')}]; OPFS ${r.opfsFiles.length} files; HTML ${r.htmlChars} chars`);
    expect(r.dbs).not.toContain(control);
    expect(r.caches).not.toContain(control);
    expect(r.opfsFiles).not.toContain(`/${control}.bin`);
    expect(r.dbs).toEqual(expect.arrayContaining(['webgpu-distill', 'webgpu-distill-runs']));
    expect(r.values).toBeGreaterThan(PROMPTS.length);
    expect(r.binaryBytes).toBeGreaterThan(10_000); // the run's checkpoint was searched too
    expect(r.localStorageKeys).not.toContain(REMEMBER_ENTRY);
    expect(r.hits).toEqual([]);
    // The key is still in the page's memory (the teacher works), in its password field only.
    expect(await page.inputValue('#remote-key')).toBe(KEY);
  });

  it('feedback with the run as the student: preference pairs, each the judge’s best vs worst sample of its prompt', async () => {
    await gotoStage(page, 'data');
    await chooseStrategy('feedback');
    await page.waitForSelector(`#data-student-run option[value="${sftRun}"]`, { state: 'attached', timeout: 30_000 });
    await page.selectOption('#data-student-run', sftRun);
    await page.fill('#data-student-max', '12');
    await page.fill('#data-student-temperature', '1');
    await page.selectOption('#data-target', '');
    await page.fill('#data-prompts', FEEDBACK_PROMPTS.join('\n'));
    await page.fill('#data-opt-feedback-samples', '3');
    for (const [id, v] of [['max', 24], ['temperature', 0], ['seed', 5], ['batch', 2]] as const) await page.fill(`#data-${id}`, String(v));
    expect(await page.isHidden('#data-blocker')).toBe(true);
    const bodies0 = teacher.stats.chatBodies.length;
    const t0 = Date.now();
    const { job, s: snap, state, status } = await runJob();
    console.log(`feedback: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(state, status).toBe('done');
    expect(job.kind).toBe('elicit:feedback');
    expect(job.progress).toMatchObject({ done: FEEDBACK_PROMPTS.length, total: FEEDBACK_PROMPTS.length });
    expect((job.config as unknown as { student: { runId: string } }).student.runId).toBe(sftRun);
    feedbackDataset = job.datasetId;
    // What the teacher was asked to grade (retries repeat a request: sets), and what it answered.
    const graded = new Map<string, Set<string>>();
    for (const b of teacher.stats.chatBodies.slice(bodies0)) {
      const t = judgeTask(renderPrompt(b.messages as { role: string; content: string }[]));
      if (t?.kind !== 'score') continue;
      if (!graded.has(t.prompt)) graded.set(t.prompt, new Set());
      graded.get(t.prompt)!.add(t.response);
    }
    expect([...graded.keys()].sort()).toEqual([...FEEDBACK_PROMPTS].sort());
    const expected = [...graded].flatMap(([prompt, rs]) => {
      const scores = [...rs].map((r) => judgeScore(r));
      return rs.size >= 2 && Math.max(...scores) !== Math.min(...scores) ? [{ prompt, best: Math.max(...scores), worst: Math.min(...scores) }] : [];
    });
    const pairs = snap.pairs.filter((p) => p.datasetId === feedbackDataset);
    console.log(`feedback: ${[...graded].map(([p, rs]) => `"${p}": ${[...rs].map((r) => `${JSON.stringify(r)}=${judgeScore(r)}`).join(', ')}`).join(' | ')}`);
    expect(pairs).toHaveLength(expected.length);
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    expect(new Set(pairs.map((p) => p.key)).size).toBe(pairs.length);
    for (const p of pairs) {
      const i = Number(p.key.split(':').at(-1));
      expect(p.key).toBe(`${job.id}:feedback:${i}`);
      expect(p.prompt).toEqual([{ role: 'user', content: FEEDBACK_PROMPTS[i] }]);
      expect(p.chosen).not.toBe(p.rejected);
      const e = expected.find((x) => x.prompt === FEEDBACK_PROMPTS[i])!;
      expect(e, `no pair expected for "${FEEDBACK_PROMPTS[i]}"`).toBeDefined();
      expect(graded.get(e.prompt)!.has(p.chosen) && graded.get(e.prompt)!.has(p.rejected)).toBe(true);
      expect(judgeScore(p.chosen)).toBe(e.best);
      expect(judgeScore(p.rejected)).toBe(e.worst);
      const prov = (p as unknown as { provenance: { strategy: string; params: { chosen_score: number; rejected_score: number } } }).provenance;
      expect(prov.strategy).toBe('feedback');
      expect(prov.params).toMatchObject({ chosen_score: e.best, rejected_score: e.worst });
    }
    expect(snap.datasets.find((d) => d.id === feedbackDataset)!.counts).toMatchObject({ records: 0, pairs: pairs.length });
    // A feedback job writes pairs only: its progress counts the grading tokens their provenance carries.
    const pairTokens = pairs.reduce((a, p) => { const u = (p as unknown as { provenance: { usage: { input: number; output: number } } }).provenance.usage; return a + u.input + u.output; }, 0);
    expect(pairTokens).toBeGreaterThan(0);
    expect(job.progress.tokens).toBe(pairTokens);
    await browseDataset(page, feedbackDataset);
    // The pairs go out in the scale-out zip as DPO data: no key there either.
    await page.selectOption('#data-export-format', 'scaleout');
    const f = await download('#data-export');
    await page.waitForSelector('#data-export-status[data-state="done"]');
    expect(await page.textContent('#data-export-status')).toContain(`0 SFT conversations, ${pairs.length} DPO pairs`);
    const z = scanZip(f.path, NEEDLES);
    const dpo = z.files.find((x) => x.path.endsWith('dpo/train.jsonl'));
    expect(dpo, JSON.stringify(z.files)).toBeDefined();
    expect(readFileSync(join(z.dir, dpo!.path), 'utf8').split('\n').filter(Boolean)).toHaveLength(pairs.length);
    expect(z.hits).toEqual([]);
    await page.click('#data-view-pairs');
    await page.waitForFunction((n) => document.querySelectorAll('#data-browse-pairs li[data-id]').length === n, pairs.length, { timeout: 20_000 });
    await page.locator('#stage-data').screenshot({ path: 'test-results/feedback-pairs.png' });
  });

  it('self-knowledge (verify): done; its records are exactly the student samples the teacher accepted', async () => {
    await chooseStrategy('self-knowledge');
    await page.selectOption('#data-student-run', sftRun);
    await page.selectOption('#data-target', '');
    await page.fill('#data-prompts', SK_PROMPTS.join('\n'));
    await page.selectOption('#data-opt-self-knowledge-mode', 'verify');
    await page.fill('#data-opt-self-knowledge-samples', '2');
    for (const [id, v] of [['max', 24], ['temperature', 0], ['seed', 9], ['batch', 2]] as const) await page.fill(`#data-${id}`, String(v));
    const bodies0 = teacher.stats.chatBodies.length;
    const { job, s: snap, state, status } = await runJob();
    expect(state, status).toBe('done');
    expect(job.kind).toBe('elicit:self-knowledge');
    expect(job.progress).toMatchObject({ done: SK_PROMPTS.length, total: SK_PROMPTS.length });
    const asked = new Set<string>();
    for (const b of teacher.stats.chatBodies.slice(bodies0)) {
      const t = judgeTask(renderPrompt(b.messages as { role: string; content: string }[]));
      if (t?.kind === 'verdict') asked.add(JSON.stringify([t.prompt, t.answer]));
    }
    expect(asked.size).toBeGreaterThan(0);
    const accepted = [...asked].filter((x) => judgeVerdict((JSON.parse(x) as string[])[1]!));
    const recs = snap.records.filter((r) => r.datasetId === job.datasetId);
    console.log(`self-knowledge: ${asked.size} samples verified, ${accepted.length} accepted, ${recs.length} records`);
    expect(recs.map((r) => JSON.stringify([r.messages[0]!.content, r.messages[1]!.content])).sort()).toEqual(accepted.sort());
    expect(new Set(recs.map((r) => r.key)).size).toBe(recs.length);
    for (const r of recs) {
      expect(r.key).toMatch(new RegExp(`^${job.id}:self-knowledge:\\d+:\\d+$`));
      expect(r.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
      expect(SK_PROMPTS).toContain(r.messages[0]!.content);
      expect(r.provenance).toMatchObject({ strategy: 'self-knowledge', teacher: { model: MODEL } });
      expect((r.provenance as unknown as { params: { kept_by: string } }).params.kept_by).toBe('verify');
    }
    expect(snap.datasets.find((d) => d.id === job.datasetId)!.counts.records).toBe(recs.length);
  });

  it('DPO from the SFT run on the feedback pairs → done', async () => {
    const t0 = Date.now();
    const dpo = await startRun({ name: 'remote-dpo', datasetId: feedbackDataset, method: 'dpo', initFrom: sftRun, steps: 2 });
    await waitRunDone(dpo);
    console.log(`DPO run: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const run = await rawRun(dpo);
    expect(run).toMatchObject({ status: 'done', step: 2, spec: { method: 'dpo', datasetId: feedbackDataset, initFrom: sftRun } });
    const pairs = (await snapshot(page)).pairs.filter((p) => p.datasetId === feedbackDataset).length;
    expect(run.data.trainPairs + run.data.heldOutPairs).toBe(pairs);
    expect(run.data.trainPairs).toBeGreaterThanOrEqual(1);
    expect(await page.textContent(`#run-list tr[data-run="${dpo}"]`)).toMatch(/DPO/);
  });

  it('a reward model from the SFT run on the judge’s pairs, then RL against it on the labeling prompts: charts, pause and resume', async () => {
    const rm = await startRun({ name: 'remote-rm', datasetId: feedbackDataset, method: 'reward', initFrom: sftRun, steps: 4, batch: 1 });
    await waitRunDone(rm);
    expect(await rawRun(rm)).toMatchObject({ status: 'done', step: 4, spec: { method: 'reward', datasetId: feedbackDataset, initFrom: sftRun } });
    expect(await page.textContent(`#run-list tr[data-run="${rm}"]`)).toMatch(/reward model/);
    const rl = await startRun({ name: 'remote-rl', datasetId, method: 'rl', initFrom: sftRun, steps: 4, rl: { rewardRun: rm, G: 2, tokens: 6 } });
    // Paused once it has logged a step, then resumed from the page: it finishes all 4 steps.
    await page.waitForFunction(() => Number(document.querySelector('#run-status')?.getAttribute('data-step') ?? 0) >= 1, null, { timeout: 200_000 });
    await page.click('#run-pause');
    await page.waitForSelector(`#run-list tr[data-run="${rl}"][data-status="paused"], #run-list tr[data-run="${rl}"][data-status="done"]`, { timeout: 120_000 });
    if (await page.getAttribute(`#run-list tr[data-run="${rl}"]`, 'data-status') === 'paused') await page.click('#run-resume');
    await waitRunDone(rl);
    expect(await rawRun(rl)).toMatchObject({ status: 'done', step: 4, spec: { method: 'rl', datasetId, initFrom: sftRun } });
    for (const id of ['reward', 'kl', 'length']) {
      expect(await page.isVisible(`#chart-${id}`), id).toBe(true);
      expect(Number(await page.getAttribute(`#chart-${id}`, 'data-points')), id).toBeGreaterThanOrEqual(4);
    }
    expect(await page.isVisible('#chart-teacher')).toBe(false);
    expect(await page.textContent('#run-status')).toMatch(/held-out mean reward -?\d/);
    for (const w of [1280, 390]) {
      await page.setViewportSize({ width: w, height: 800 });
      await page.waitForTimeout(100);
      await page.locator('#run-view').screenshot({ path: `test-results/rl-run-${w}.png` });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    // RL judged by the teacher itself: every answer graded by the server (faults on) through the page's teacher.
    const graded0 = teacher.stats.chatBodies.filter((b) => judgeTask(renderPrompt(b.messages as { role: string; content: string }[]))?.kind === 'score').length;
    const judged = await startRun({ name: 'remote-rl-judged', datasetId, method: 'rl', initFrom: sftRun, steps: 3, rl: { G: 2, tokens: 6 } });
    await waitRunDone(judged);
    const graded = teacher.stats.chatBodies.filter((b) => judgeTask(renderPrompt(b.messages as { role: string; content: string }[]))?.kind === 'score').length - graded0;
    expect(graded).toBeGreaterThanOrEqual(3 * 2 * 2); // 3 steps × 2 prompts × G 2, then the held-out prompts (retries repeat some)
    const rewards = (await runLogs<{ kind: string; reward?: number }>(page, judged)).filter((l) => l.kind === 'step').map((l) => l.reward!);
    expect(rewards.length === 3 && rewards.every((r) => r >= 0 && r <= 1), JSON.stringify(rewards)).toBe(true);
  });

  it('"Remember on this device" ticked: the key is in its own localStorage entry and nowhere else; unticked: nowhere', async () => {
    await gotoStage(page, 'teacher');
    await page.check('#remote-remember');
    const stored = await page.evaluate((k) => localStorage.getItem(k), REMEMBER_ENTRY);
    expect(JSON.parse(stored ?? '{}')).toEqual({ [teacher.url]: KEY });
    const only = [`localStorage.${REMEMBER_ENTRY}: ${KEY}`, `localStorage.${REMEMBER_ENTRY}: ${TAIL}`];
    const r = await scanOrigin(page, NEEDLES, ['remote-key']);
    expect(r.hits.sort()).toEqual(only.sort());
    // After a reload the key comes back from that entry (into its password field) and is still nowhere else.
    await page.reload();
    await gotoStage(page, 'teacher');
    await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 30_000 });
    expect(await page.inputValue('#remote-key')).toBe(KEY);
    expect((await scanOrigin(page, NEEDLES, ['remote-key'])).hits.sort()).toEqual(only.sort());
    await page.uncheck('#remote-remember');
    const after = await scanOrigin(page, NEEDLES, ['remote-key']);
    expect(after.localStorageKeys).not.toContain(REMEMBER_ENTRY);
    expect(after.hits).toEqual([]);
  });

  it('at the end: still no key anywhere in the origin; nothing sent off 127.0.0.1; no page errors but the faults’ own', async () => {
    const r = await scanOrigin(page, NEEDLES, ['remote-key']);
    expect(r.hits).toEqual([]);
    expect(r.localStorageKeys).not.toContain(REMEMBER_ENTRY);
    expect(offsite).toEqual([]);
    expect(teacher.stats.unauthorized, 'a request without the key after it was typed').toBe(unauthorizedBeforeKey);
    const early401 = pageErrors.filter((e) => /status of 401 \(Unauthorized\)/.test(e));
    expect(early401.length).toBeLessThanOrEqual(unauthorizedBeforeKey);
    const faultLines = pageErrors.filter((e) => FAULT_CONSOLE.test(e));
    console.log(`server: ${JSON.stringify({ ...teacher.stats, arrivals: teacher.stats.arrivals.length, authorizations: teacher.stats.authorizations.length, chatBodies: teacher.stats.chatBodies.length })}; ${faultLines.length} fault console lines: ${[...new Set(faultLines.map((l) => l.replace(/https?:\/\/\S+/g, 'URL')))].join(' | ')}`);
    expect(pageErrors.filter((e) => !FAULT_CONSOLE.test(e) && !early401.includes(e))).toEqual([]);
    expect(pageErrors.join('\n')).not.toContain(TAIL);
  });
});
