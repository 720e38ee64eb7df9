// Mixture KD from the page (#23 multi-teacher logits): the default teacher (the small fixture) loaded, a chat
// dataset imported, then dense token-level KD with a second teacher mixed in — a folder picked from disk holding the
// fixture with its weights perturbed (same tokenizer, a different model), weight 0.3. The run trains; the Evaluate
// stage shows KL and agreement to the mixture and to each teacher, with the weights the run had. A second teacher
// on another tokenizer (the shipped Brown teacher, V 2048) is refused by planning, naming it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFolder, writeFiles } from '../../src/cli/export.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importedExportInput, importHfFolder } from '../../src/export/import.ts';
import { Rng } from '../../src/util/rng.ts';
import { defaultTeacherAndImport, gotoStage, openApp, runLogs, SMALL_TEACHER_DIR, startRunFromForm, type AppSession } from './harness.ts';

const JSONL = Array.from({ length: 16 }, (_, i) => JSON.stringify({
  messages: [{ role: 'user', content: ['The history of the city', 'In the morning the farmers', 'The church stood on the hill', 'He told the jury'][i % 4] },
    { role: 'assistant', content: `went on as it had before, and the people of the town were glad (${i}).` }],
})).join('\n');

let s: AppSession;
const pageErrors: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  s = await openApp({ offsite, pageErrors });
  await s.page.setViewportSize({ width: 1280, height: 800 });
});
afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
});

/** The fixture teacher with every weight perturbed (same tokenizer, another model), as an HF folder on disk. */
function perturbedTeacher(): string {
  const x = importedExportInput(importHfFolder(readFolder(SMALL_TEACHER_DIR)), 'fixture-perturbed');
  const rng = new Rng(11);
  const params = Float32Array.from(x.params, (v) => v + 0.05 * (rng.next() * 2 - 1));
  const dir = join(mkdtempSync(join(tmpdir(), 'mix-')), 'second-teacher');
  writeFiles(dir, exportHfFolder({ ...x, params }));
  return dir;
}

describe('mixture KD in the page', () => {
  it('dense KD from the teacher and a picked second teacher; Evaluate reports KL to each; another tokenizer is refused', async () => {
    const { page } = s;
    expect((await defaultTeacherAndImport(page, 'lines.jsonl', JSONL)).written).toBe(16);

    await gotoStage(page, 'train');
    await page.selectOption('#train-method', 'kd');
    await page.selectOption('#train-kd-source', 'dense');
    await page.fill('#train-ce', '0');
    await page.selectOption('#train-preset', 'nano');
    await page.selectOption('#train-tokenizer', 'teacher');
    await page.waitForSelector('#train-mix-teacher', { state: 'visible' });
    await page.waitForSelector('#train-plan[data-ok]:not(:empty)', { timeout: 120_000 });
    expect(await page.isVisible('#train-mix-weight')).toBe(false); // no second teacher yet
    // Another tokenizer: refused, naming the teacher.
    await page.setInputFiles('#train-mix-files', resolve('public/models/brown-teacher'));
    await page.waitForFunction(() => (document.querySelector('#train-mix-teacher') as HTMLInputElement).value === 'picked folder: brown-teacher');
    await page.waitForSelector('#train-plan[data-ok="false"]', { timeout: 120_000 });
    expect(await page.textContent('#train-plan')).toMatch(/mixture teacher brown-teacher/);
    expect(await page.isDisabled('#train-start')).toBe(true);

    await page.setInputFiles('#train-mix-files', perturbedTeacher());
    await page.waitForFunction(() => (document.querySelector('#train-mix-teacher') as HTMLInputElement).value === 'picked folder: second-teacher');
    await page.fill('#train-mix-weight', '0.3');
    const runId = await startRunFromForm(page, { steps: 3, batch: 2, seqlen: 24, lr: 0.003, warmup: 1, evalEvery: 3, ckptEvery: 3, sampleEvery: 0, heldout: 4, name: 'mix-kd' }, async (plan) => {
      expect(plan).toMatch(/teacher model/);
      for (const w of [1280, 390]) {
        await page.setViewportSize({ width: w, height: 800 });
        await page.waitForTimeout(100);
        expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), `overflow at ${w}`).toBeLessThanOrEqual(0);
        await (await page.$('#train-form'))!.screenshot({ path: `test-results/mixture-train-${w}.png` });
      }
      await page.setViewportSize({ width: 1280, height: 800 });
    });
    await page.waitForSelector(`#run-list tr[data-run="${runId}"][data-status="done"]`, { timeout: 300_000 });
    const steps = (await runLogs(page, runId)).filter((l) => l.kind === 'step');
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3]);
    expect(steps.every((l) => Number.isFinite(l.kd) && l.kd! > 0)).toBe(true);
    const config = JSON.parse((await page.textContent('#run-config'))!) as { mixture?: { weights: number[]; teachers: { label: string }[] } };
    expect(config.mixture?.weights).toEqual([0.7, 0.3]);
    expect(config.mixture?.teachers.map((t) => t.label)).toEqual(['second-teacher']);

    await gotoStage(page, 'evaluate');
    await page.selectOption('#eval-run', runId);
    await page.click('#eval-go');
    await page.waitForSelector('#eval-status[data-done="ok"]', { timeout: 180_000 });
    const value = async (m: string) => Number(await page.getAttribute(`#eval-results tr[data-metric="${m}"] td[data-run="${runId}"]`, 'data-value'));
    const [kl, kl1, kl2] = [await value('kl'), await value('kl-teacher-1'), await value('kl-teacher-2')];
    for (const v of [kl, kl1, kl2]) expect(Number.isFinite(v) && v > 0).toBe(true);
    // KL to a mixture is at most the weighted mean of the KLs to its parts (convexity).
    expect(kl).toBeLessThanOrEqual(0.7 * kl1 + 0.3 * kl2 + 1e-6);
    expect(await page.textContent('#eval-results')).toContain('KL(second-teacher ‖ student)');
    await page.screenshot({ path: 'test-results/mixture-evaluate-1280.png', fullPage: true });
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  }, 900_000);
});
