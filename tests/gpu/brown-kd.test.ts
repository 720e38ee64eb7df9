// The Brown KD-vs-SFT study's protocol (scripts/brown-kd.ts) at toy size: the PyTorch replica trains a teacher and a
// KD and an SFT student from our exported initial weights, batch order and LR schedule; our engine then re-runs the
// first steps from the same start and evaluates every replica-trained model. They must agree, or the README's study
// figures (made by the replica where no GPU is lent) would not be our trainer's.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brownKd } from '../../scripts/brown-kd.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('Brown KD study: PyTorch replica vs our engine', () => {
  it('same step losses (SFT and KD) and same held-out loss of every replica-trained model', async () => {
    const lines: { kind?: string; run?: string; engineLoss?: number[] }[] = [];
    const s = await brownKd(['--backend', 'replica', '--quick', '--out', mkdtempSync(join(tmpdir(), 'brown-kd-'))], { device: gpu().device, log: (o) => lines.push(o) });
    expect(s.check, 'the replica backend reports its check').toBeDefined();
    // f32 everywhere; 4 steps of AdamW from identical weights on identical batches.
    expect(s.check!.stepLossMaxAbsDiff).toBeLessThan(1e-4);
    expect(s.check!.evalLossMaxAbsDiff).toBeLessThan(1e-5);
    const steps = lines.filter((l) => l.kind === 'check-steps');
    expect(steps.map((l) => l.run)).toEqual(['sft-seed1', 'kd-seed1']);
    for (const l of steps) expect(l.engineLoss).toHaveLength(4);
    // The two objectives really differ (KD's loss mixes in the KL term), and every run has its held-out numbers.
    expect(steps[0]!.engineLoss![0]).not.toBeCloseTo(steps[1]!.engineLoss![0]!, 1);
    expect(Object.keys(s.results).sort()).toEqual(['kd-seed1', 'sft-seed1', 'teacher']);
    for (const r of Object.values(s.results)) expect(Number.isFinite(r.ppl) && r.ppl > 1).toBe(true);
    expect(s.results['kd-seed1']!.klToTeacher).toBeGreaterThan(0);
  }, 300_000);
});
