// Accessibility in Chromium: axe-core (npm axe-core, injected into the page) checks every stage of the built app
// against WCAG 2 A and AA — the Teacher stage with each of its two forms, Data, Train, Evaluate, Export — with the
// demo card on top and the "GPU" disclosure open, at 1280×800 and at 390 wide. Any violation fails the test, printed
// with its rule, help text, help URL and every offending element (selector, HTML, what is wrong).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gotoStage, openApp, openGpuDetails, type AppSession } from './harness.ts';

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TAGS = ['wcag2a', 'wcag2aa'];

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: unknown[]; html: string; failureSummary?: string }[];
}

const offsite: string[] = [];
const pageErrors: string[] = [];
let s: AppSession;

beforeAll(async () => {
  s = await openApp({ offsite, pageErrors });
  await injectAxe(s.page);
  await s.page.setViewportSize({ width: 1280, height: 800 });
});

afterAll(async () => {
  await s?.browser.close();
  await s?.server.close();
});

/**
 * Loads axe into the page. The page's CSP allows scripts from its own origin only (no inline script), so axe is
 * served from there: a request for /__axe/axe.min.js is answered with the npm package's file.
 */
async function injectAxe(page: Page): Promise<void> {
  await page.context().route('**/__axe/axe.min.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: readFileSync(AXE_PATH) }));
  await page.addScriptTag({ url: '/__axe/axe.min.js' });
  await page.waitForFunction(() => 'axe' in window);
}

/** The WCAG 2 A/AA violations axe finds in the page as it is shown now (hidden stages are not checked). */
async function violations(page: Page): Promise<AxeViolation[]> {
  return page.evaluate(async (tags) => {
    const axe = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, ...(n.failureSummary ? { failureSummary: n.failureSummary } : {}) })),
    }));
  }, TAGS);
}

function report(where: string, vs: AxeViolation[]): string {
  return vs.map((v) => `${where}: ${v.id} (${v.impact ?? '?'}) — ${v.help} <${v.helpUrl}>\n` +
    v.nodes.map((n) => `    ${JSON.stringify(n.target)} ${n.html}\n      ${(n.failureSummary ?? '').replace(/\n/g, '\n      ')}`).join('\n')).join('\n');
}

/** Every stage (the Teacher stage with both of its forms) with the demo card and the open GPU disclosure. */
async function checkEveryStage(page: Page, width: string): Promise<string[]> {
  const found: string[] = [];
  const check = async (where: string) => {
    const vs = await violations(page);
    if (vs.length > 0) found.push(report(`${where} at ${width}`, vs));
  };
  await openGpuDetails(page);
  await page.waitForSelector('#gpu-adapter', { timeout: 60_000 });
  await gotoStage(page, 'teacher');
  await page.check('#teacher-mode-local');
  await check('Teacher (local model)');
  await page.check('#teacher-mode-remote');
  await check('Teacher (remote API)');
  await page.check('#teacher-mode-local');
  await gotoStage(page, 'data');
  await page.waitForSelector('#data-status:not([data-state="idle"]), #data-status[data-state="idle"]:not(:empty)');
  await page.waitForSelector('#data-preview:not([data-state="pending"])');
  // An error with its Dismiss button (a drop without a file).
  await page.dispatchEvent('#data-import-drop', 'drop');
  await page.waitForSelector('#data-import-status[data-state="error"] button.dismiss');
  await check('Data');
  await page.click('#data-import-status button.dismiss');
  await gotoStage(page, 'train');
  await check('Train');
  await gotoStage(page, 'evaluate');
  await check('Evaluate');
  await gotoStage(page, 'export');
  await check('Export');
  return found;
}

describe('accessibility (axe-core, WCAG 2 A/AA)', () => {
  it('no violations on any stage, with the demo card and the GPU disclosure, at 1280×800', async () => {
    expect(await s.page.isVisible('#demo')).toBe(true);
    const found = await checkEveryStage(s.page, '1280×800');
    expect(found, `axe found violations:\n${found.join('\n')}`).toEqual([]);
  });

  it('none at 390 wide either', async () => {
    await s.page.setViewportSize({ width: 390, height: 800 });
    const found = await checkEveryStage(s.page, '390 wide');
    expect(found, `axe found violations:\n${found.join('\n')}`).toEqual([]);
  });

  it('sent nothing off 127.0.0.1 and raised no page errors', () => {
    expect(offsite).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
