// A pretrained student in the page (issue #20), as a user does it in Chromium on SwiftShader: the default teacher
// (the small fixture) loaded, a chat dataset imported, then the Train stage's student "a pretrained model" with its
// folder picked from disk (an HF Llama folder: the fixture itself), fine-tuned by SFT and by dense token-level KD
// from the local teacher (same tokenizer: KL starts at 0), the KD run reloaded mid-training (it resumes from its
// checkpoint, not from the pretrained weights), and exported: the HF folder has the pretrained model's
// architecture, and training.json names its base model. Then a Qwen3-shaped folder (per-head q/k norms) picked the
// same way trains and exports as Qwen3ForCausalLM.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFolder, writeFiles } from '../../src/cli/export.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importedExportInput, importHfFolder } from '../../src/export/import.ts';
import { makeConfig } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { defaultTeacherAndImport, gotoStage, openApp, runLogs, SMALL_TEACHER_DIR, startRunFromForm, type AppSession } from './harness.ts';

const LINES = [
  ['The history of the city', 'is the history of its people, who came from the farms to work in the mills.'],
  ['In the morning the farmers', 'went out to the fields before the sun was up.'],
  ['The committee said that', 'the new law would be passed by the end of the year.'],
  ['He told the jury', 'that there was no evidence that the money had been taken.'],
  ['The church stood on the hill', 'above the river, and its bell could be heard in every house.'],
  ['After the war the people', 'went back to their towns and began to build again.'],
];
const JSONL = Array.from({ length: 18 }, (_, i) => {
  const [u, a] = LINES[i % LINES.length]!;
  return JSON.stringify({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: `${a} (${i})` }] });
}).join('\n');

let s: AppSession;
const pageErrors: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  s = await openApp({ offsite, pageErrors, acceptDownloads: true });
  await s.page.setViewportSize({ width: 1280, height: 800 });
});
afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
});

async function startRun(page: Page, name: string, method: 'sft' | 'kd', steps: number, folder = SMALL_TEACHER_DIR, plan = /0\.\d+M parameters · 128 wide, 3 layers, 4 heads, vocabulary 1024/): Promise<string> {
  await gotoStage(page, 'train');
  await page.selectOption('#train-method', method);
  if (method === 'kd') {
    await page.selectOption('#train-kd-source', 'dense');
    await page.fill('#train-ce', '0');
  }
  await page.selectOption('#train-preset', 'pretrained');
  await page.setInputFiles('#train-pretrained-files', folder);
  await page.waitForFunction(() => (document.querySelector('#train-pretrained') as HTMLInputElement).value.startsWith('picked folder: '));
  return startRunFromForm(page, { steps, batch: 2, seqlen: 24, lr: 0.001, warmup: 1, evalEvery: 2, ckptEvery: 2, sampleEvery: 0, heldout: 3, name }, (text) => {
    expect(text).toMatch(plan);
  }, plan);
}

describe('a pretrained student in the page', () => {
  it('fine-tunes a picked pretrained folder by SFT and by dense KD; a reload resumes the KD run; the export names its base', async () => {
    const { page } = s;
    expect((await defaultTeacherAndImport(page, 'lines.jsonl', JSONL)).written).toBe(18);

    const sft = await startRun(page, 'pre-sft', 'sft', 2);
    await page.waitForSelector(`#run-list tr[data-run="${sft}"][data-status="done"]`, { timeout: 300_000 });
    const sftLogs = await runLogs(page, sft);
    expect(sftLogs.find((l) => l.kind === 'event')).toMatchObject({ code: 'started' });
    expect(JSON.parse((await page.textContent('#run-config'))!).pretrained).toBe('brown-teacher-small');

    // Dense KD from the local teacher (the same fixture): the student starts as the teacher, the KL term at 0.
    const kd = await startRun(page, 'pre-kd', 'kd', 6);
    await page.waitForFunction((id) => Number(document.querySelector(`#run-list tr[data-run="${id}"]`)?.textContent?.match(/ (\d+)\/6/)?.[1] ?? 0) >= 3, kd, { timeout: 300_000 });
    await page.reload();
    await page.waitForSelector(`#run-list tr[data-run="${kd}"][data-status="done"]`, { timeout: 300_000 });
    const logs = await runLogs(page, kd);
    const steps = logs.filter((l) => l.kind === 'step');
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Math.abs(steps[0]!.kd!)).toBeLessThan(1e-4);
    const resumed = logs.find((l) => l.kind === 'event' && l.code === 'resumed');
    expect(resumed?.checkpointStep, 'the reload must resume from a checkpoint, not start again').toBeGreaterThanOrEqual(2);

    await gotoStage(page, 'export');
    await page.selectOption('#export-source', `run:${kd}`);
    await page.selectOption('#export-format', 'safetensors');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-zip')]);
    const dir = mkdtempSync(join(tmpdir(), 'pre-export-'));
    const zip = join(dir, 'x.zip');
    await download.saveAs(zip);
    const read = (p: string) => JSON.parse(execFileSync('unzip', ['-p', zip, p], { encoding: 'utf8' }));
    const members = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).split('\n');
    const prefix = members.find((m) => m.endsWith('config.json') && !m.includes('generation') && !m.includes('tokenizer'))!.replace(/config\.json$/, '');
    const cfg = read(`${prefix}config.json`);
    expect([cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size]).toEqual([128, 3, 1024]);
    expect(read(`${prefix}training.json`).baseModel).toMatch(/brown-teacher-small/);
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  }, 900_000);

  it('a Qwen3 folder (per-head q/k norms, heads·head_dim ≠ hidden) fine-tunes in the page and exports as Qwen3', async () => {
    const { page } = s;
    // The fixture's tokenizer with a Qwen3-shaped model, written as HF writes it (config.json Qwen3ForCausalLM).
    const fixture = importHfFolder(readFolder(SMALL_TEACHER_DIR));
    const tokenizer = importedExportInput(fixture, 'fixture').tokenizer;
    const config = makeConfig({ vocabSize: tokenizer.vocabSize, hidden: 48, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, maxSeqLen: 64, qkNorm: true, rmsNormEps: 1e-6 });
    const dir = join(mkdtempSync(join(tmpdir(), 'qwen3-')), 'qwen3-student');
    writeFiles(dir, exportHfFolder({ config, params: initParams(config, 5), tokenizer }));
    expect(JSON.parse(execFileSync('cat', [join(dir, 'config.json')], { encoding: 'utf8' })).architectures).toEqual(['Qwen3ForCausalLM']);
    const run = await startRun(page, 'qwen3-sft', 'sft', 2, dir, /M parameters · 48 wide, 2 layers, 4 heads, vocabulary 1024/);
    await page.waitForSelector(`#run-list tr[data-run="${run}"][data-status="done"]`, { timeout: 300_000 });
    const steps = (await runLogs(page, run)).filter((l) => l.kind === 'step');
    expect(steps.map((l) => l.step)).toEqual([1, 2]);
    await gotoStage(page, 'export');
    await page.selectOption('#export-source', `run:${run}`);
    await page.selectOption('#export-format', 'safetensors');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-zip')]);
    const zip = join(mkdtempSync(join(tmpdir(), 'qwen3-export-')), 'x.zip');
    await download.saveAs(zip);
    const members = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).split('\n');
    const cfgPath = members.find((m) => m.endsWith('/config.json') && !m.includes('generation') && !m.includes('tokenizer'))!;
    const cfg = JSON.parse(execFileSync('unzip', ['-p', zip, cfgPath], { encoding: 'utf8' }));
    expect([cfg.architectures, cfg.model_type, cfg.head_dim, cfg.hidden_size]).toEqual([['Qwen3ForCausalLM'], 'qwen3', 16, 48]);
    expect(pageErrors).toEqual([]);
  }, 600_000);
});
