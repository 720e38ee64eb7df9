// The product's walk in Chromium on SwiftShader, as a user does it (issue #11): the default teacher (one click) →
// a feature job (answers + top-k) into IndexedDB → a token-level KD run of a tiny student on WebGPU in the engine
// worker → Evaluate (held-out perplexity, KL/top-1 against the teacher, the teacher's own perplexity; teacher and
// student side by side) → Export of the run as ONNX, which onnxruntime-node runs to the held-out loss the page
// showed (within 1e-3), on the same number of held-out tokens. Then a run reloaded mid-training (before its last
// step) resumes by itself: its own log says it resumed from the checkpoint of a step N ≥ the checkpoint interval,
// the steps up to N are the ones logged before the reload (not computed again), and its loss curve equals an
// uninterrupted twin's step for step. Screenshots of every stage at 1280×800 and 390 wide.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunData } from '../../src/engine/runs/data.ts';
import type { StoredRecord } from '../../src/store/schema.ts';
import { BpeTokenizer } from '../../src/tokenizer/bpe.ts';
import { evalBatches } from '../../src/train/batches.ts';
import { logSoftmaxRow } from '../../src/util/logsoftmax.ts';
import { gotoStage, openApp, runLogRows, type AppSession } from './harness.ts';

const PROMPTS = [
  'The history of the city', 'In the morning the farmers', 'The President said that', 'Music and art in the schools',
  'The church stood on the hill', 'A new law was passed', 'The team won the game', 'Science and the modern world',
  'She opened the letter and', 'The river ran through the valley', 'The doctor told him', 'After the war the people',
  'The board of education', 'His wife and children', 'The new house was', 'When the sun went down',
  'The first thing to do', 'Most of the students', 'The price of wheat', 'Late in the afternoon',
];
const HELD_OUT_EVERY = 4, T = 24, B = 4;

let s: AppSession;
const pageErrors: string[] = [];
const offsite: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `test-results/${name}.png`, fullPage: true });
}

/** Every step log of a run: [step, loss]. */
async function stepLosses(page: Page, runId: string): Promise<[number, number][]> {
  return (await runLogRows(page, runId)).filter((x) => x.log.kind === 'step').map((x) => [x.log.step, x.log.loss!]);
}

async function records(page: Page, datasetId: string): Promise<StoredRecord[]> {
  return page.evaluate((ds) => new Promise<StoredRecord[]>((resolve, reject) => {
    const req = indexedDB.open('webgpu-distill');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const r = req.result.transaction('records', 'readonly').objectStore('records').index('by-dataset').getAll(ds);
      r.onsuccess = () => { req.result.close(); resolve(r.result as StoredRecord[]); };
      r.onerror = () => reject(r.error);
    };
  }), datasetId);
}

const CKPT_EVERY = 3;

/** Fills the Train stage's form for a tiny KD run of `steps` steps (checkpoint every CKPT_EVERY) and starts it. */
async function startKdRun(page: Page, name: string, steps: number): Promise<string> {
  await gotoStage(page, 'train');
  await page.selectOption('#train-method', 'kd');
  await page.selectOption('#train-kd-source', 'store-topk');
  await page.selectOption('#train-objective', 'fkl');
  await page.selectOption('#train-preset', 'nano');
  await page.selectOption('#train-tokenizer', 'teacher');
  for (const [id, v] of [['steps', steps], ['batch', B], ['seqlen', T], ['lr', 0.01], ['warmup', 1]] as const) await page.fill(`#train-${id}`, String(v));
  await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
  for (const [id, v] of [['eval-every', 3], ['ckpt-every', CKPT_EVERY], ['sample-every', 3], ['heldout', HELD_OUT_EVERY]] as const) await page.fill(`#train-${id}`, String(v));
  await page.fill('#train-prompts', 'The history of the city');
  await page.fill('#train-name', name);
  await page.dispatchEvent('#train-name', 'change');
  await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 60_000 });
  const before = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
  await page.click('#train-start');
  const id = await page.waitForFunction((b) => [...document.querySelectorAll('#run-list tr[data-run]')].map((t) => t.getAttribute('data-run')).find((r) => r && !b.includes(r)), before, { timeout: 120_000 });
  return (await id.jsonValue()) as string;
}

async function waitRun(page: Page, runId: string, status: string, timeout = 240_000): Promise<void> {
  await page.waitForSelector(`#run-list tr[data-run="${runId}"][data-status="${status}"]`, { timeout });
}

beforeAll(async () => {
  s = await openApp({ offsite, pageErrors, acceptDownloads: true });
  await s.page.setViewportSize({ width: 1280, height: 800 });
});

afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
});

describe('the walk: teacher → data → train → evaluate → export', () => {
  let datasetId = '';
  let runId = '';
  let pageLoss = NaN;
  let pageTokens = NaN;

  it('loads the default teacher with one click and makes a feature dataset with it', async () => {
    const { page } = s;
    await gotoStage(page, 'teacher');
    await page.click('#teacher-default');
    await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 120_000 });
    await shot(page, 'step-1-teacher');
    await gotoStage(page, 'data');
    await page.selectOption('#data-strategy', 'feature');
    await page.fill('#data-prompts', PROMPTS.join('\n'));
    await page.fill('#data-max', '12');
    await page.fill('#data-temperature', '0');
    await page.fill('#data-batch', '4');
    await page.click('#data-start');
    await page.waitForSelector('#data-status[data-state="done"]', { timeout: 240_000 });
    await shot(page, 'step-2-data');
    datasetId = await page.evaluate(() => new Promise<string>((resolve) => {
      const req = indexedDB.open('webgpu-distill');
      req.onsuccess = () => {
        const r = req.result.transaction('datasets').objectStore('datasets').getAll();
        r.onsuccess = () => { req.result.close(); resolve((r.result as { id: string; createdAt: number }[]).sort((a, b) => b.createdAt - a.createdAt)[0]!.id); };
      };
    }));
    const recs = await records(page, datasetId);
    expect(recs).toHaveLength(PROMPTS.length);
  });

  it('trains a KD student on WebGPU with live charts and samples', async () => {
    const { page } = s;
    runId = await startKdRun(page, 'flow-kd', 6);
    await waitRun(page, runId, 'done');
    await page.waitForSelector('#run-status[data-status="done"]');
    expect(Number(await page.getAttribute('#chart-loss', 'data-points'))).toBe(6);
    expect(Number(await page.getAttribute('#chart-ppl', 'data-points'))).toBeGreaterThanOrEqual(1);
    expect(await page.$$eval('#run-samples li', (l) => l.length)).toBeGreaterThanOrEqual(2);
    expect(await page.getAttribute('#step-train', 'data-state')).toBe('done');
    await shot(page, 'step-3-train');
  });

  it('evaluates the run against the teacher and shows them side by side', async () => {
    const { page } = s;
    await gotoStage(page, 'evaluate');
    await page.selectOption('#eval-run', runId);
    await page.click('#eval-go');
    await page.waitForSelector('#eval-status[data-done="ok"]', { timeout: 120_000 });
    const value = async (m: string) => Number(await page.getAttribute(`#eval-results tr[data-metric="${m}"] td[data-run="${runId}"]`, 'data-value'));
    pageLoss = await value('loss');
    pageTokens = await value('tokens');
    expect(pageTokens).toBeGreaterThan(0);
    expect(pageLoss).toBeGreaterThan(0);
    expect(await value('ppl')).toBeCloseTo(Math.exp(pageLoss), 4);
    expect(await value('top1')).toBeGreaterThanOrEqual(0);
    expect(await value('teacher-ppl')).toBeGreaterThan(1);
    expect(await value('kl')).toBeGreaterThan(0);
    await page.fill('#eval-prompt', 'The history of the city');
    await page.fill('#eval-max', '8');
    await page.click('#eval-generate');
    await page.waitForSelector('#eval-gen-status[data-done]', { timeout: 120_000 });
    expect(await page.getAttribute('#eval-gen-status', 'data-done'), await page.textContent('#eval-gen-status') ?? '').toBe('ok');
    expect((await page.textContent('#eval-out-teacher'))!.length).toBeGreaterThan(0);
    expect((await page.textContent('#eval-out-student'))!.length).toBeGreaterThan(0);
    await shot(page, 'step-4-evaluate');
  });

  it("exports the run as ONNX; onnxruntime gives the held-out loss the page showed", async () => {
    const { page } = s;
    await gotoStage(page, 'export');
    await page.selectOption('#export-source', `run:${runId}`);
    await page.selectOption('#export-format', 'onnx');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 180_000 }), page.click('#export-zip')]);
    await page.waitForSelector('#export-status[data-done="ok"]', { timeout: 60_000 });
    await shot(page, 'step-5-export');
    const dir = mkdtempSync(join(tmpdir(), 'flow-'));
    const zip = join(dir, 'student.zip');
    await download.saveAs(zip);
    execFileSync('unzip', ['-q', zip, '-d', dir]);
    const folder = join(dir, download.suggestedFilename().replace(/\.zip$/, ''));
    const training = JSON.parse(readFileSync(join(folder, 'training.json'), 'utf8'));
    expect(training.heldOut.loss).toBeCloseTo(pageLoss, 6);
    expect(training.heldOut.tokens).toBe(pageTokens);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(join(folder, 'tokenizer.json'), 'utf8')));
    const built = await buildRunData(await records(page, datasetId), [], { format: 'continuation', tok, eos: tok.tokenToId('<|endoftext|>')!, T, heldOutEvery: HELD_OUT_EVERY });
    const session = await ort.InferenceSession.create(join(folder, 'onnx', 'model.onnx'));
    let sum = 0, count = 0;
    const V = config.vocab_size as number;
    for (const batch of evalBatches(built.evalRows, B, T, training.train.evalBatches, true)) {
      for (let r = 0; r < B; r++) {
        const ids = batch.ids.subarray(r * T, (r + 1) * T);
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, T]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
          position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]),
        };
        for (let l = 0; l < config.num_hidden_layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, config.num_key_value_heads, 0, config.head_dim]);
        const logits = (await session.run(feeds)).logits!.data as Float32Array;
        const lp = new Float32Array(V);
        for (let t = 0; t < T; t++) {
          if (batch.weights[r * T + t] === 0) continue;
          logSoftmaxRow(logits, t * V, V, lp);
          sum -= lp[batch.labels[r * T + t]!]!;
          count++;
        }
      }
    }
    // The same held-out tokens as the page's evaluation, and the same loss on them.
    expect(count).toBe(pageTokens);
    expect(Math.abs(sum / count - pageLoss)).toBeLessThan(1e-3);
    writeFileSync(join(dir, 'check.json'), JSON.stringify({ pageLoss, pageTokens, ort: sum / count, count }));
  });

  it('resumes a run after a reload mid-training, from its checkpoint, on the same loss curve as an uninterrupted twin', async () => {
    const { page } = s;
    const STEPS = 8;
    const twin = await startKdRun(page, 'twin', STEPS);
    await waitRun(page, twin, 'done');
    const reloaded = await startKdRun(page, 'reloaded', STEPS);
    // Past the checkpoint of step CKPT_EVERY, before the end: reload.
    await page.waitForFunction((id) => document.querySelector(`#run-view[data-run="${id}"] #run-status`)?.getAttribute('data-step') === '4', reloaded, { timeout: 240_000, polling: 20 });
    const before = await stepLosses(page, reloaded);
    await page.reload();
    // The reload came before the last step: the run had logged at least the checkpoint's steps and not the last one.
    expect(before.length).toBeGreaterThanOrEqual(CKPT_EVERY + 1);
    expect(Math.max(...before.map(([st]) => st))).toBeLessThan(STEPS);
    await gotoStage(page, 'train');
    await waitRun(page, reloaded, 'done');
    const logs = await runLogRows(page, reloaded);
    // The run's own log: started once from random weights, then resumed once from a checkpoint of step N, with
    // CKPT_EVERY ≤ N < STEPS.
    const events = logs.filter((x) => x.log.kind === 'event');
    const started = events.filter((x) => /^started from random weights$/.test(x.log.message ?? ''));
    const resumed = events.filter((x) => /^resumed from the checkpoint of step \d+$/.test(x.log.message ?? ''));
    expect(started).toHaveLength(1);
    expect(resumed, `the run's events: ${JSON.stringify(events.map((x) => x.log.message))}`).toHaveLength(1);
    const N = Number(/step (\d+)$/.exec(resumed[0]!.log.message!)![1]);
    expect(N).toBeGreaterThanOrEqual(CKPT_EVERY);
    expect(N % CKPT_EVERY).toBe(0);
    expect(N).toBeLessThan(STEPS);
    expect(resumed[0]!.log.step).toBe(N);
    // Steps 1..N were logged before the resume (by the first session, kept), steps N+1.. after it (the second).
    const steps = logs.filter((x) => x.log.kind === 'step');
    const at = resumed[0]!.seq;
    expect(steps.filter((x) => x.seq < at).map((x) => x.log.step)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(steps.filter((x) => x.seq > at).map((x) => x.log.step)).toEqual(Array.from({ length: STEPS - N }, (_, i) => N + i + 1));
    expect(started[0]!.seq).toBeLessThan(steps[0]!.seq);
    // And the whole curve is the uninterrupted twin's.
    const after = steps.map((x) => [x.log.step, x.log.loss!] as [number, number]);
    expect(after.map(([st]) => st)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(after).toEqual(await stepLosses(page, twin));
    // Steps logged before the reload past the checkpoint were computed again with the same values.
    for (const [st, loss] of before) expect(after.find(([x]) => x === st)![1]).toBe(loss);
    await page.waitForSelector(`#run-view[data-run="${reloaded}"]`);
    expect(await page.textContent('#run-view')).toMatch(/resumed|Done/);
  });

  it('refuses token-level KD for a student on a new BPE, offers SeqKD; the chat-template format needs a template', async () => {
    const { page } = s;
    await gotoStage(page, 'train');
    await page.selectOption('#train-method', 'kd');
    await page.selectOption('#train-kd-source', 'dense');
    await page.selectOption('#train-tokenizer', 'bpe');
    await page.fill('#train-vocab', '300');
    await page.dispatchEvent('#train-vocab', 'change');
    await page.waitForSelector('#train-plan[data-ok="false"] #train-use-seqkd', { timeout: 60_000 });
    expect(await page.textContent('#train-plan')).toMatch(/token-level KD is unavailable: a new BPE's tokens are not the teacher's.*SeqKD/);
    expect(await page.isDisabled('#train-start')).toBe(true);
    await page.click('#train-use-seqkd');
    await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 60_000 });
    expect(await page.inputValue('#train-method')).toBe('sft');
    // The default teacher has no chat template of its own: the format says so until one is pasted.
    await page.selectOption('#train-tokenizer', 'teacher');
    await page.selectOption('#train-format', 'template');
    await page.waitForSelector('#train-plan[data-ok="false"]', { timeout: 60_000 });
    expect(await page.textContent('#train-plan')).toMatch(/has none: paste a template/);
    expect(await page.isVisible('#train-template')).toBe(true);
    await page.fill('#train-template', "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|endoftext|>{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}");
    await page.dispatchEvent('#train-template', 'change');
    await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 60_000 });
    await page.selectOption('#train-format', 'continuation');
  });

  it('fits a narrow window, and raised no page error and no off-site request', async () => {
    const { page } = s;
    await page.setViewportSize({ width: 390, height: 800 });
    for (const id of ['teacher', 'data', 'train', 'evaluate', 'export'] as const) {
      await gotoStage(page, id);
      const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(over, `stage ${id} overflows a 390-px window by ${over}px`).toBeLessThanOrEqual(0);
      await shot(page, `step-${id}-narrow`);
    }
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  });
});
