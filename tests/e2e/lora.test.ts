// LoRA in the page (issue #21), as a user does it in Chromium on SwiftShader: the default teacher (the small fixture)
// loaded, a chat dataset imported, the fixture folder picked as a pretrained student, "train: LoRA adapters" chosen
// (the plan says what LoRA trains and what full fine-tuning would need), token-level KD from the local teacher mixed
// with CE, the run reloaded mid-training (it resumes its adapters on the frozen base read again from the stored
// folder), then exported twice: the adapters alone as a PEFT folder and the merged model as safetensors. PEFT loads
// our adapter onto the fixture (HF transformers) and gives the logits HF gives for our merged export, within 1e-4.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importByPicker, importResult } from './data-support.ts';
import { exportRunZip, gotoStage, openApp, runLogs, SMALL_TEACHER_DIR, type AppSession } from './harness.ts';

const JSONL = Array.from({ length: 18 }, (_, i) => JSON.stringify({
  messages: [{ role: 'user', content: ['The history of the city', 'In the morning the farmers', 'The committee said that'][i % 3] }, { role: 'assistant', content: `went on as it had before, and the people were glad (${i}).` }],
})).join('\n');

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

describe('LoRA in the page', () => {
  it('trains LoRA adapters by KD on a picked pretrained folder, resumes after a reload, exports adapters PEFT loads and the merged model', async () => {
    const { page } = s;
    await gotoStage(page, 'teacher');
    await page.click('#teacher-default');
    await page.waitForSelector('#step-teacher[data-state="done"]', { timeout: 120_000 });
    await gotoStage(page, 'data');
    await importByPicker(page, 'lora.jsonl', JSONL);
    expect((await importResult(page)).written).toBe(18);

    await gotoStage(page, 'train');
    await page.selectOption('#train-method', 'kd');
    await page.selectOption('#train-kd-source', 'dense');
    await page.fill('#train-ce', '0.5');
    await page.selectOption('#train-preset', 'pretrained');
    await page.setInputFiles('#train-pretrained-files', SMALL_TEACHER_DIR);
    await page.waitForFunction(() => (document.querySelector('#train-pretrained') as HTMLInputElement).value.startsWith('picked folder: '));
    await page.selectOption('#train-adapt', 'lora');
    await page.fill('#train-lora-rank', '4');
    await page.fill('#train-lora-alpha', '8');
    for (const [id, v] of [['steps', 6], ['batch', 2], ['seqlen', 24], ['lr', 0.01], ['warmup', 1]] as const) await page.fill(`#train-${id}`, String(v));
    await page.$eval('#train-form details', (d) => { (d as HTMLDetailsElement).open = true; });
    for (const [id, v] of [['eval-every', 2], ['ckpt-every', 2], ['sample-every', 3], ['heldout', 3]] as const) await page.fill(`#train-${id}`, String(v));
    await page.fill('#train-name', 'lora-kd');
    await page.dispatchEvent('#train-name', 'change');
    await page.waitForSelector('#train-plan[data-ok="true"]', { timeout: 120_000 });
    const planText = (await page.textContent('#train-lora-plan'))!;
    expect(planText).toMatch(/LoRA trains 0\.\d+M of them \(\d+\.\d+%\); full fine-tuning would need ≈ /);
    await page.screenshot({ path: 'test-results/train-lora-1280.png', fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: 'test-results/train-lora-390.png', fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    const before = await page.$$eval('#run-list tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
    await page.click('#train-start');
    const handle = await page.waitForFunction((b) => [...document.querySelectorAll('#run-list tr[data-run]')].map((t) => t.getAttribute('data-run')).find((r) => r && !b.includes(r)), before, { timeout: 120_000 });
    const run = (await handle.jsonValue()) as string;
    await page.waitForFunction((id) => Number(document.querySelector(`#run-list tr[data-run="${id}"]`)?.textContent?.match(/ (\d+)\/6/)?.[1] ?? 0) >= 3, run, { timeout: 300_000 });
    await page.reload();
    await page.waitForSelector(`#run-list tr[data-run="${run}"][data-status="done"]`, { timeout: 300_000 });
    const logs = await runLogs(page, run);
    expect(logs.filter((l) => l.kind === 'step').map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(logs.find((l) => l.kind === 'event' && l.code === 'resumed')?.checkpointStep, 'the reload resumes the adapters from a checkpoint').toBeGreaterThanOrEqual(2);
    expect(JSON.parse((await page.textContent('#run-config'))!).train.lora).toMatchObject({ rank: 4, alpha: 8 });

    const dir = mkdtempSync(join(tmpdir(), 'lora-export-'));
    const adapter = await exportRunZip(page, run, 'lora-peft', dir);
    const merged = await exportRunZip(page, run, 'safetensors', dir);
    // PEFT puts our adapter on the fixture; HF runs our merged export; the same ids give the same logits.
    const py = `
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, adapter, merged = sys.argv[1:4]
ids = torch.tensor([[5, 77, 300, 12, 901, 44, 3, 260]])
with torch.no_grad():
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32), adapter).eval()
    a = peft(ids).logits
    b = AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32).eval()(ids).logits
    plain = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32).eval()(ids).logits
print((a - b).abs().max().item(), (a - plain).abs().max().item())
`;
    const out = execFileSync(resolve('.venv-torch/bin/python'), ['-c', py, resolve(SMALL_TEACHER_DIR), adapter, merged], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
    const [diff, moved] = out.split(' ').map(Number);
    expect(diff, `PEFT(base + our adapter) vs HF(our merged export): ${out}`).toBeLessThan(1e-4);
    expect(moved, 'the adapters changed the model').toBeGreaterThan(1e-3);
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  }, 900_000);
});
