// The ensemble strategy from the page (#23 multi-teacher data): one test OpenAI server serves three models — the
// judge model (tests/e2e/remote-support.ts: grades with a known score, else the byte bigram), a sharp and a
// near-random word bigram of the same prose. The judge model is installed as the active teacher through the Teacher
// stage like a user would; the ensemble form names the two others (one by name at the same server, one as
// model@URL). The job asks all three, the judge grades every answer, the highest grade is kept; every answer and its
// teacher are in IndexedDB; the ensemble panel shows how often each teacher was kept, and "choose again" makes a new
// dataset with one teacher's answers. Bad lines in the form name the line. Screenshots: test-results/ensemble-*.png.
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { WordBigramModel } from '../support/text-model.ts';
import { screenshots, snapshot, type RawRecord } from './data-support.ts';
import { gotoStage, openApp } from './harness.ts';
import { JudgeModel, judgeScore } from './remote-support.ts';

let browser: Browser;
let server: PreviewServer;
let page: Page;
let teachers: OpenAiServer;
const pageErrors: string[] = [];
const offsite: string[] = [];
const judge = new JudgeModel();
const prose = new WordBigramModel('prose-teacher', 0.01);
const noisy = new WordBigramModel('noisy-teacher', 1);
const PROMPTS = ['Tell me about the river', 'What did the stranger carry', 'Describe the village in winter', 'Why did she wait', 'What grew from the seeds'];

interface Answer { member: number; teacher: { model: string }; text: string; consensus: number; judge: number | null }
const choiceOf = (r: RawRecord) => (r.provenance as unknown as { params: { ensemble: { chosen: number; rule: string; answers: Answer[] } } }).params.ensemble;

beforeAll(async () => {
  teachers = await startOpenAiServer({ model: judge, models: [prose, noisy], seed: 5 });
  ({ server, browser, page } = await openApp({ offsite, pageErrors }));
  await page.setViewportSize({ width: 1280, height: 800 });
  await gotoStage(page, 'teacher');
  await page.check('#teacher-mode-remote');
  await page.selectOption('#remote-preset', 'custom');
  await page.fill('#remote-base-url', teachers.url);
  await page.dispatchEvent('#remote-base-url', 'change');
  await page.fill('#remote-model', judge.name);
  await page.dispatchEvent('#remote-model', 'change');
  await page.click('#remote-test');
  await page.waitForSelector('#remote-report[data-result="ok"], #remote-report[data-result="error"]', { timeout: 60_000 });
  expect(await page.getAttribute('#remote-report', 'data-result'), await page.textContent('#remote-report') ?? '').toBe('ok');
  await gotoStage(page, 'data');
  await page.waitForFunction((m) => (document.querySelector('#data-teacher-bar')?.textContent ?? '').includes(m), judge.name, { timeout: 10_000 });
  await page.waitForSelector('#data-status[data-state="idle"]', { timeout: 30_000 });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await teachers?.close();
});

async function previewState(): Promise<{ state: string; text: string; error: string }> {
  await page.waitForTimeout(50);
  await page.waitForSelector('#data-preview:not([data-state="pending"])');
  return {
    state: (await page.getAttribute('#data-preview', 'data-state')) ?? '',
    text: (await page.textContent('#data-preview')) ?? '',
    error: (await page.textContent('#data-form-error')) ?? '',
  };
}

describe('Data stage: an ensemble of three teachers with a judge', () => {
  it('the form names the other teachers (bad lines named); the job asks all three, keeps the best-graded answer, and can choose again', async () => {
    await page.selectOption('#data-strategy', 'ensemble');
    await page.fill('#data-prompts', PROMPTS.join('\n'));
    await page.fill('#data-max', '16');
    await page.fill('#data-seed', '3');
    await page.selectOption('#data-opt-ensemble-select', 'judge');
    await page.fill('#data-opt-ensemble-answersPerTeacher', '1');
    // Bad lines: named, nothing to start.
    await page.fill('#data-opt-ensemble-others', '');
    expect((await previewState()).error).toMatch(/name at least one more teacher/);
    await page.fill('#data-opt-ensemble-others', `${prose.name}\n${noisy.name}@not a url`);
    expect((await previewState()).error).toMatch(/line 2: 'not a url' is not an http\(s\) URL/);
    await page.fill('#data-opt-ensemble-others', `${prose.name}\n${noisy.name}@${teachers.url}`);
    const p = await previewState();
    expect(p.state, p.error).toBe('ok');
    expect(p.text).toContain(`sent to each of ${judge.name}, ${prose.name}, ${noisy.name}`);
    expect(p.text).toContain('the judge then grades every answer');

    const sent = teachers.stats.chatBodies.length; // the Teacher stage's connection test asked the judge once
    await page.click('#data-start');
    await page.waitForSelector('#data-status[data-state="done"], #data-status[data-state="error"]', { timeout: 120_000 });
    expect(await page.getAttribute('#data-status', 'data-state'), (await page.textContent('#data-status')) ?? '').toBe('done');
    expect(await page.textContent('#data-teacher')).toContain(`teachers ${judge.name}`);
    const s = await snapshot(page);
    const job = s.jobs.find((j) => j.kind === 'elicit:ensemble')!;
    expect(job.status).toBe('done');
    const members = (job.config as unknown as { members: { kind: string; model: string; baseURL: string }[] }).members;
    expect(members.map((m) => m.model)).toEqual([judge.name, prose.name, noisy.name]);
    expect(members.every((m) => m.kind === 'remote' && m.baseURL.startsWith(teachers.url.replace(/\/v1$/, '')))).toBe(true);
    const recs = s.records.filter((r) => r.datasetId === job.datasetId);
    expect(recs).toHaveLength(PROMPTS.length);
    for (const r of recs) {
      const e = choiceOf(r);
      expect(e.rule).toBe('judge');
      expect(e.answers.map((a) => a.teacher.model).sort()).toEqual([judge.name, noisy.name, prose.name].sort());
      for (const a of e.answers) expect(a.judge).toBe(judgeScore(a.text));
      expect(e.answers[e.chosen]!.judge).toBe(Math.max(...e.answers.map((a) => a.judge!)));
      expect(r.messages.at(-1)!.content).toBe(e.answers[e.chosen]!.text);
      expect(r.provenance.teacher.model).toBe(e.answers[e.chosen]!.teacher.model);
    }
    const bodies = teachers.stats.chatBodies.slice(sent).map((b) => b.model);
    for (const m of [prose.name, noisy.name]) expect(bodies.filter((b) => b === m)).toHaveLength(PROMPTS.length);
    expect(bodies.filter((b) => b === judge.name)).toHaveLength(PROMPTS.length * 4); // its answers + every grade

    // The tally and "choose again".
    await page.waitForSelector('#ensemble-panel:not([hidden])');
    const tally = (await page.textContent('#ensemble-tally')) ?? '';
    expect(tally).toContain(`Kept answers of ${PROMPTS.length} prompts`);
    const kept = (m: string) => recs.filter((r) => { const e = choiceOf(r); return e.answers[e.chosen]!.teacher.model === m; }).length;
    for (const m of [judge.name, prose.name, noisy.name]) expect(tally).toContain(`${m} ${kept(m)} (`);
    expect(await page.$$eval('#ensemble-rule option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(
      ['consensus', 'judge', ...[judge.name, prose.name, noisy.name].map((m) => `teacher:${m}`)]);
    await page.selectOption('#ensemble-rule', `teacher:${prose.name}`);
    await page.click('#ensemble-rechoose');
    await page.waitForFunction(() => /A new dataset holds/.test(document.querySelector('#ensemble-note')?.textContent ?? ''), undefined, { timeout: 20_000 });
    const after = await snapshot(page);
    const made = after.datasets.find((d) => d.name.endsWith(`chosen by teacher ${prose.name}`))!;
    expect(made.counts.records).toBe(PROMPTS.length);
    const madeRecs = after.records.filter((r) => r.datasetId === made.id);
    expect(madeRecs.every((r) => r.provenance.teacher.model === prose.name && r.messages.at(-1)!.content === choiceOf(r).answers[choiceOf(r).chosen]!.text)).toBe(true);
    expect(after.records.filter((r) => r.datasetId === job.datasetId).map((r) => r.messages.at(-1)!.content).sort()).toEqual(recs.map((r) => r.messages.at(-1)!.content).sort());

    const shots = await screenshots(page, 'ensemble');
    for (const [w, over] of Object.entries(shots)) expect(over, `overflow at ${w}`).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  });
});
