// The self-test the app and the CLI run: every registered kernel check passes, with progress to the end.
import { expect, it } from 'vitest';
import { QUICK_CHECKS } from '../../src/engine/checks.ts';
import { runSelftest } from '../../src/engine/selftest.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

// Every check already runs in its family's test file: here the self-test machinery runs the quick scope (the first
// check of each kernel, as the app's quick self-test does, also in Chromium: tests/e2e/app.test.ts), with progress.
it('runs the first registered check of every kernel green, reporting progress', async () => {
  const firsts = QUICK_CHECKS;
  expect(new Set(firsts.map((c) => c.kernel)).size).toBe(firsts.length);
  expect(firsts.length).toBeGreaterThanOrEqual(10);
  const seen: number[] = [];
  const rep = await runSelftest(gpu().device, { checks: firsts, onProgress: (p) => seen.push(p.done) });
  expect(rep.ok, rep.cases.filter((c) => !c.ok).map((c) => `${c.kernel}_${c.variant} ${c.shape}: ${c.detail}`).join('\n')).toBe(true);
  expect(rep.cases).toHaveLength(firsts.length);
  expect(seen.at(-1)).toBe(firsts.length);
});

it('reports a failing check as failed, not as passed', async () => {
  const rep = await runSelftest(gpu().device, {
    checks: [{ kernel: 'broken', variant: 'x', shape: '1', run: async () => { throw new Error('kernel exploded'); } }],
  });
  expect(rep.ok).toBe(false);
  expect(rep.cases[0]?.detail).toMatch(/kernel exploded/);
});
