// The self-test the app and the CLI run: every registered kernel check passes, with progress to the end.
import { expect, it } from 'vitest';
import { ALL_CHECKS } from '../../src/engine/checks.ts';
import { runSelftest } from '../../src/engine/selftest.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

it('runs every registered kernel check green, reporting progress', async () => {
  const seen: number[] = [];
  const rep = await runSelftest(gpu().device, { onProgress: (p) => seen.push(p.done) });
  expect(rep.ok, rep.cases.filter((c) => !c.ok).map((c) => `${c.kernel}_${c.variant} ${c.shape}: ${c.detail}`).join('\n')).toBe(true);
  expect(rep.cases).toHaveLength(ALL_CHECKS.length);
  expect(seen.at(-1)).toBe(ALL_CHECKS.length);
});

it('reports a failing check as failed, not as passed', async () => {
  const rep = await runSelftest(gpu().device, {
    checks: [{ kernel: 'broken', variant: 'x', shape: '1', run: async () => { throw new Error('kernel exploded'); } }],
  });
  expect(rep.ok).toBe(false);
  expect(rep.cases[0]?.detail).toMatch(/kernel exploded/);
});
