// The app's Export stage in Chromium: the embedded default teacher exported as a .zip download in each format,
// built in the engine worker. The downloaded archive is checked by real readers: Info-ZIP (CRC of every member),
// our importer (weights equal the shipped model.safetensors), onnxruntime-node (the ONNX runs) and the GGUF magic.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { gotoStage, openApp } from './harness.ts';

let browser: Browser;
let server: PreviewServer;
let page: Page;
const pageErrors: string[] = [];
const offsite: string[] = [];

beforeAll(async () => {
  ({ server, browser, page } = await openApp({ offsite, pageErrors, acceptDownloads: true, teacher: 'shipped' }));
  await gotoStage(page, 'export');
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function exportZip(format: string): Promise<string> {
  await page.selectOption('#export-format', format);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click('#export-zip')]);
  await page.waitForSelector('#export-status[data-done]', { timeout: 120_000 });
  expect(await page.getAttribute('#export-status', 'data-done'), await page.textContent('#export-status') ?? '').toBe('ok');
  const dir = mkdtempSync(join(tmpdir(), 'e2e-export-'));
  const zip = join(dir, download.suggestedFilename());
  await download.saveAs(zip);
  expect(execFileSync('unzip', ['-t', zip], { encoding: 'utf8' })).toMatch(/No errors detected/);
  execFileSync('unzip', ['-q', zip, '-d', dir]);
  return join(dir, download.suggestedFilename().replace(/\.zip$/, ''));
}

describe('Export stage (Chromium)', () => {
  const shipped = importHfFolder(readFolder('public/models/brown-teacher'));

  it('transformers.js zip: same weights as the shipped teacher, its ONNX runs in onnxruntime', async () => {
    const dir = await exportZip('transformers.js');
    const got = importHfFolder(readFolder(dir));
    expect(got.config).toEqual(shipped.config);
    expect(got.params).toEqual(shipped.params);
    const s = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
    expect(s.inputNames).toContain('past_key_values.0.key');
    expect(await page.textContent('#export-status')).toMatch(/Downloaded brown-teacher-transformersjs\.zip: 6 files/);
    expect(await page.$$eval('#export-list li', (lis) => lis.length)).toBe(6);
  });

  it('a picked HF folder re-exports: the default teacher folder from disk → safetensors zip with the same weights', async () => {
    await page.selectOption('#export-source', 'picked');
    await page.setInputFiles('#export-files', 'public/models/brown-teacher');
    const dir = await exportZip('safetensors');
    expect(dir).toMatch(/brown-teacher-safetensors$/);
    const got = importHfFolder(readFolder(dir));
    expect(got.params).toEqual(shipped.params);
    await page.selectOption('#export-source', 'brown-teacher');
  });

  it('gguf-f16 zip holds one GGUF file', async () => {
    const dir = await exportZip('gguf-f16');
    expect(readdirSync(dir)).toEqual(['model.gguf']);
    expect(readFileSync(join(dir, 'model.gguf')).subarray(0, 4).toString()).toBe('GGUF');
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
  });
});
