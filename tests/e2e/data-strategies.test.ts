// The Data stage's strategies from the page, against the test OpenAI server (tests/support/openai-server.ts, its
// bigram model, no faults) installed as the teacher through the Teacher stage's remote form like a user would:
// labeling (with an edited template, then again into the same dataset), expansion (Self-Instruct), curation (an
// edited topic tree), Evol-Instruct and feature (top-k rows stored with the records) each run to 'done', checked
// from IndexedDB (records, provenance, top-k) and from the requests the server received. The form: the preview
// shows the first requests before Start; an invalid template or topic tree shows the validator's message and Start
// stores nothing; feedback and self-knowledge say to train a student first and keep Start disabled (no training
// run exists here); a teacher without logprobs disables feature. Screenshots: test-results/data-make-{1280,390}.png.
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { gotoStage, openApp } from './harness.ts';
import { screenshots, snapshot, type RawJob, type Snapshot } from './data-support.ts';

let browser: Browser;
let server: PreviewServer;
let page: Page;
let teacher: OpenAiServer;
let noLogprobs: OpenAiServer;
const pageErrors: string[] = [];
const offsite: string[] = [];

/** Installs an OpenAI-compatible server as the teacher through the Teacher stage's remote form, then goes to Data. */
async function useRemoteTeacher(url: string, model: string): Promise<void> {
  await gotoStage(page, 'teacher');
  await page.check('#teacher-mode-remote');
  await page.selectOption('#remote-preset', 'custom');
  await page.fill('#remote-base-url', url);
  await page.dispatchEvent('#remote-base-url', 'change');
  await page.fill('#remote-model', model);
  await page.dispatchEvent('#remote-model', 'change');
  await page.click('#remote-test');
  await page.waitForSelector('#remote-report[data-result="ok"], #remote-report[data-result="error"]', { timeout: 60_000 });
  expect(await page.getAttribute('#remote-report', 'data-result'), await page.textContent('#remote-report') ?? '').toBe('ok');
  await gotoStage(page, 'data');
  await page.waitForFunction((m) => document.querySelector('#data-teacher-bar')?.getAttribute('data-kind') === 'remote'
    && (document.querySelector('#data-teacher-bar')?.textContent ?? '').includes(m), model, { timeout: 10_000 });
}

async function chooseStrategy(name: string): Promise<void> {
  await page.selectOption('#data-strategy', name);
  await page.waitForSelector('#data-preview:not([data-state="pending"])');
}

async function setCommon(o: { max?: number; temperature?: number; seed?: number; batch?: number }): Promise<void> {
  if (o.max !== undefined) await page.fill('#data-max', String(o.max));
  if (o.temperature !== undefined) await page.fill('#data-temperature', String(o.temperature));
  if (o.seed !== undefined) await page.fill('#data-seed', String(o.seed));
  if (o.batch !== undefined) await page.fill('#data-batch', String(o.batch));
}

async function openTemplates(): Promise<void> {
  await page.$eval('#data-templates', (d) => { (d as HTMLDetailsElement).open = true; });
}

/** Waits for the preview of the form as it is now; returns its text and number of requests. */
async function preview(): Promise<{ state: string; requests: number; text: string }> {
  await page.waitForTimeout(50);
  await page.waitForSelector('#data-preview:not([data-state="pending"])');
  return page.$eval('#data-preview', (el) => ({ state: el.getAttribute('data-state') ?? '', requests: Number(el.getAttribute('data-requests')), text: el.textContent ?? '' }));
}

/** Presses Start, waits for the job to end; returns the job and the store as they are then. */
async function runJob(timeout = 120_000): Promise<{ job: RawJob; s: Snapshot; state: string; status: string }> {
  const before = await page.getAttribute('#data-status', 'data-job');
  await page.click('#data-start');
  await page.waitForFunction((prev) => {
    const st = document.querySelector('#data-status');
    const state = st?.getAttribute('data-state');
    return (state === 'error' && st?.getAttribute('data-job') === prev) || (st?.getAttribute('data-job') !== prev && ['done', 'error', 'stopped'].includes(state ?? ''));
  }, before, { timeout, polling: 50 });
  const state = (await page.getAttribute('#data-status', 'data-state')) ?? '';
  const status = (await page.textContent('#data-status')) ?? '';
  const id = await page.getAttribute('#data-status', 'data-job');
  const s = await snapshot(page);
  return { job: s.jobs.find((j) => j.id === id)!, s, state, status };
}

function recordsOf(s: Snapshot, job: RawJob) {
  return s.records.filter((r) => r.datasetId === job.datasetId && r.key.startsWith(`${job.id}:`));
}

beforeAll(async () => {
  teacher = await startOpenAiServer({ seed: 7 });
  noLogprobs = await startOpenAiServer({ seed: 8, omitLogprobs: true });
  ({ server, browser, page } = await openApp({ offsite, pageErrors }));
  await page.setViewportSize({ width: 1280, height: 800 });
  await useRemoteTeacher(teacher.url, teacher.model.name);
  await page.waitForSelector('#data-status[data-state="idle"]', { timeout: 30_000 });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await teacher?.close();
  await noLogprobs?.close();
});


describe('Data stage: the strategies against a remote teacher', () => {
  it('labeling: the preview shows the edited template; the job uses it; a second job writes into the same dataset', async () => {
    await chooseStrategy('labeling');
    await page.fill('#data-prompts', 'The river ran\nThe mill stood\nIn the spring');
    await setCommon({ max: 24, temperature: 1, seed: 11, batch: 2 });
    await openTemplates();
    await page.fill('#data-template-labeling-user', 'Q: {{input}}');
    const p = await preview();
    expect(p.state).toBe('ok');
    expect(p.requests).toBe(3);
    expect(p.text).toContain('Q: The river ran');
    expect(p.text).toMatch(/template labeling\.user · temperature 1 · max tokens 24 · seed \d+/);
    const { job, s, state, status } = await runJob();
    expect(state, status).toBe('done');
    expect(job.kind).toBe('elicit:labeling');
    expect(job.config.teacher).toMatchObject({ kind: 'remote', baseURL: teacher.url, model: 'bigram-test-model' });
    expect(JSON.stringify(job.config)).not.toMatch(/apiKey|Bearer/);
    const recs = recordsOf(s, job);
    expect(recs).toHaveLength(3);
    for (const r of recs) {
      expect(r.messages[0]!.content).toMatch(/^Q: /);
      expect(r.provenance).toMatchObject({ strategy: 'labeling', teacher: { kind: 'openai-compatible', model: 'bigram-test-model' } });
    }
    expect(teacher.stats.chatBodies.some((b) => JSON.stringify(b).includes('Q: The mill stood'))).toBe(true);
    expect(await page.textContent('#data-progress-text')).toMatch(/^3\/3 prompts · [\d,]+ tokens · cost \$0\.0000$/);
    expect((await page.$$('#data-records li[data-key]')).length).toBe(3);

    // Again, into the dataset the first job wrote.
    await page.click('#data-template-reset-labeling-user');
    await page.selectOption('#data-target', job.datasetId);
    await page.fill('#data-prompts', 'The children ran\nThe snow fell');
    const second = await runJob();
    expect(second.state, second.status).toBe('done');
    expect(second.job.datasetId).toBe(job.datasetId);
    expect(second.s.datasets.find((d) => d.id === job.datasetId)!.counts.records).toBe(5);
    expect(recordsOf(second.s, second.job).map((r) => r.messages[0]!.content).sort()).toEqual(['The children ran', 'The snow fell']);

    // Several answers per prompt: the progress counts answers and says so (2 prompts × 3 answers = 6 answers).
    await page.selectOption('#data-target', '');
    await page.fill('#data-prompts', 'The miller\nThe baker');
    await page.fill('#data-opt-labeling-answersPerInput', '3');
    const third = await runJob();
    expect(third.state, third.status).toBe('done');
    expect(recordsOf(third.s, third.job)).toHaveLength(6);
    expect(third.status).toBe('Done: 6/6 answers (2 prompts × 3).');
    expect(await page.textContent('#data-progress-text')).toMatch(/^6\/6 answers \(2 prompts × 3\) · [\d,]+ tokens · cost \$0\.0000$/);
    await page.fill('#data-opt-labeling-answersPerInput', '1');
  });

  it('expansion (Self-Instruct): new instructions generated from the seeds, filtered and answered', async () => {
    await chooseStrategy('expansion');
    await page.selectOption('#data-target', '');
    await page.fill('#data-seeds', 'Write a story about the mill.\nDescribe the river in spring.\nTell me about the village bread.');
    await page.fill('#data-opt-expansion-target', '3');
    await page.fill('#data-opt-expansion-perRequest', '2');
    await page.fill('#data-opt-expansion-demosPerPrompt', '2');
    await page.fill('#data-opt-expansion-generateMaxTokens', '60');
    await setCommon({ max: 24, temperature: 1, seed: 5 });
    expect(await page.isHidden('#data-batch')).toBe(true);
    const p = await preview();
    expect(p.state).toBe('ok');
    expect(p.text).toMatch(/Come up with a series of diverse tasks/);
    expect(p.text).toMatch(/Note: each kept instruction is then answered/);
    const { job, s, state, status } = await runJob();
    expect(state, status).toBe('done');
    const recs = recordsOf(s, job);
    expect(recs.length).toBeGreaterThan(0);
    expect(recs.length).toBeLessThanOrEqual(3);
    for (const r of recs) {
      expect(r.provenance.strategy).toBe('expansion');
      expect(r.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    }
    expect(s.datasets.find((d) => d.id === job.datasetId)!.name).toMatch(/^expansion: \d{4}-\d\d-\d\d \d\d:\d\d$/);
  });

  it('curation: an edited topic tree (a bad one is refused naming the line), questions per leaf, answered', async () => {
    await chooseStrategy('curation');
    await page.fill('#data-topics', 'The village\n    Bread\n  Mill');
    await page.waitForFunction(() => /^Topic tree, line 3/.test(document.querySelector('#data-topics-status')?.textContent ?? ''));
    expect(await page.textContent('#data-form-error')).toMatch(/^Topic tree, line 3: “Mill” is indented 2 spaces/);
    const before = await snapshot(page);
    const bad = await runJob();
    expect(bad.state).toBe('error');
    expect(bad.status).toMatch(/^Topic tree, line 3/);
    expect(bad.s.datasets).toHaveLength(before.datasets.length);
    expect(bad.s.jobs).toHaveLength(before.jobs.length);

    await page.fill('#data-topics', 'The village\n  Bread\n  Mill\nThe river');
    await page.fill('#data-opt-curation-questionsPerLeaf', '2');
    await page.fill('#data-opt-curation-questionMaxTokens', '50');
    await setCommon({ max: 20, temperature: 1, seed: 9 });
    await page.waitForFunction(() => document.querySelector('#data-topics-status')?.textContent === '3 leaf topics.');
    const p = await preview();
    expect(p.requests).toBe(3);
    expect(p.text).toContain('about "Bread" (within: The village > Bread)');
    await screenshotsOk('make');
    const { job, s, state, status } = await runJob();
    expect(state, status).toBe('done');
    expect(job.progress).toMatchObject({ done: 6, total: 6 });
    const recs = recordsOf(s, job);
    expect(recs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(recs.map((r) => (r as unknown as { provenance: { params: { leaf_index: number } } }).provenance.params.leaf_index))).toEqual(new Set([0, 1, 2]));
  });

  it('Evol-Instruct: each prompt evolved over two rounds (failed evolutions eliminated) and answered', async () => {
    await chooseStrategy('evol');
    await page.fill('#data-prompts', 'Describe the mill.\nTell a story about the stranger.');
    await page.fill('#data-opt-evol-rounds', '2');
    await page.fill('#data-opt-evol-evolveMaxTokens', '50');
    await page.uncheck('#data-opt-evol-methods-breadth');
    await setCommon({ max: 30, temperature: 1, seed: 3, batch: 2 });
    const p = await preview();
    expect(p.requests).toBe(2);
    expect(p.text).toMatch(/#Given Prompt#:\s*Describe the mill\./);
    const { job, s, state, status } = await runJob();
    expect(state, status).toBe('done');
    expect(job.progress.total).toBe(4);
    expect(job.config.config.methods).toEqual(['deepen', 'constraints', 'concretize', 'reasoning']);
    const recs = recordsOf(s, job);
    expect(recs.length).toBeGreaterThan(0);
    for (const r of recs) expect(r.provenance.strategy).toBe('evol');
  });

  it('feature: top-k distributions stored with each record', async () => {
    await chooseStrategy('feature');
    await page.fill('#data-prompts', 'The river\nThe mill\nThe bread');
    await page.fill('#data-opt-feature-topLogprobs', '5');
    await setCommon({ max: 16, temperature: 1, seed: 4, batch: 2 });
    const p = await preview();
    expect(p.text).toMatch(/top-k 5/);
    const { job, s, state, status } = await runJob();
    expect(state, status).toBe('done');
    const recs = recordsOf(s, job);
    expect(recs).toHaveLength(3);
    const rows = s.topk.filter((t) => recs.some((r) => r.id === t.recordId));
    expect(rows).toHaveLength(3);
    for (const t of rows) expect(t.tokens).toBeGreaterThan(0);
    const ds = s.datasets.find((d) => d.id === job.datasetId)!;
    expect(ds.counts.topk).toBe(3);
    expect(ds.counts.topkTokens).toBe(rows.reduce((a, t) => a + t.tokens, 0));
    expect(teacher.stats.chatBodies.some((b) => b.top_logprobs === 5 && b.logprobs === true)).toBe(true);
  });

  it('an invalid template shows the validator’s message, and Start stores nothing', async () => {
    await chooseStrategy('labeling');
    await openTemplates();
    await page.fill('#data-template-labeling-user', 'Answer this: {{question}}');
    await page.waitForFunction(() => /unknown placeholder \{\{question\}\}/.test(document.querySelector('#data-form-error')?.textContent ?? ''));
    expect(await page.getAttribute('#data-preview', 'data-state')).toBe('error');
    const before = await snapshot(page);
    const r = await runJob();
    expect(r.state).toBe('error');
    expect(r.status).toMatch(/^Labeling config: templates\['labeling.user'\]: unknown placeholder \{\{question\}\}/);
    expect(r.s.datasets).toHaveLength(before.datasets.length);
    expect(r.s.jobs).toHaveLength(before.jobs.length);
    await page.click('#data-template-reset-labeling-user');
    await page.waitForFunction(() => (document.querySelector('#data-form-error')?.textContent ?? '') === '');
    expect(await page.isDisabled('#data-start')).toBe(false);
  });

  it('feedback and self-knowledge: without a trained student they say so and Start is disabled', async () => {
    for (const name of ['feedback', 'self-knowledge']) {
      await chooseStrategy(name);
      await page.waitForSelector('#data-blocker:not([hidden])');
      expect(await page.textContent('#data-blocker')).toMatch(/Train a student first \(step 3\), then come back/);
      expect(await page.isVisible('#data-student-note')).toBe(true);
      expect(await page.isVisible('#data-goto-train')).toBe(true);
      expect(await page.isDisabled('#data-start')).toBe(true);
      const p = await preview();
      expect(p.state).toBe('ok');
      expect(p.text).toContain('[student sample]');
    }
    await page.click('#data-goto-train');
    await page.waitForSelector('#stage-train:not([hidden])');
    await gotoStage(page, 'data');
    await chooseStrategy('labeling');
    expect(await page.isDisabled('#data-start')).toBe(false);
  });

  it('a teacher without log-probabilities: feature says so and is disabled, labeling still runs', async () => {
    await useRemoteTeacher(noLogprobs.url, noLogprobs.model.name);
    await chooseStrategy('feature');
    await page.waitForSelector('#data-blocker:not([hidden])');
    expect(await page.textContent('#data-blocker')).toMatch(/returns no token log-probabilities/);
    expect(await page.isDisabled('#data-start')).toBe(true);
    await chooseStrategy('labeling');
    await page.fill('#data-prompts', 'The river');
    expect(await page.isDisabled('#data-start')).toBe(false);
    const r = await runJob();
    expect(r.state, r.status).toBe('done');
    expect(r.job.config.teacher).toMatchObject({ kind: 'remote', baseURL: noLogprobs.url });
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

async function screenshotsOk(name: string): Promise<void> {
  await openTemplates();
  const shots = await screenshots(page, name);
  expect(shots).toEqual({ 1280: [], 390: [] });
}
