// The cross-tokenizer KD bench's protocol (bench/cross-kd.ts, issue #23) at toy size with its PyTorch replica: the
// teacher phase runs on the HF teacher (PyTorch) and our engine teacher-forces its first records; the replica trains
// a SeqKD and a cross student (CE + top-k KL on exact rows + ULD on misaligned ones) from our exported initial
// weights, batches, teacher signal and LR schedule; our engine then re-runs the first steps from the same start and
// evaluates every replica-trained student. They must agree, or the bench's replica figures would not be our trainer's.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossKd } from '../../bench/cross-kd.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

type StepLine = { kind?: string; run?: string; engine?: { step: number; loss: number; kd: number; uld: number }[] };

describe('cross-tokenizer KD bench: PyTorch replica vs our engine', () => {
  it('same teacher logprobs, same step losses (CE, KD, ULD) and same held-out loss of every replica-trained student', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cross-kd-'));
    const lines: StepLine[] = [];
    const r = await crossKd([
      '--backend', 'replica', '--teacher', 'torch', '--quick', '--records', '10', '--answer-tokens', '12', '--steps', '4', '--check-steps', '3',
      '--cache-dir', dir, '--out', join(dir, 'result.json'),
    ], { device: gpu().device, log: (o) => lines.push(o as StepLine) });
    // The teacher phase: PyTorch's top-20 and sampled-token logprobs are the engine's, rank by rank.
    const tc = r.teacher.check!;
    expect(tc.tokens).toBeGreaterThan(0);
    expect(tc.sampledLogprobMaxAbsDiff).toBeLessThan(1e-4);
    expect(tc.topLogprobMaxAbsDiff).toBeLessThan(1e-4);
    expect(tc.topIdMismatches).toBe(0);
    // The students: f32 everywhere, 3 steps of AdamW from identical weights on identical batches and teacher rows.
    const c = r.config.check!;
    expect(c.checkSteps).toBe(3);
    for (const k of ['loss', 'ce', 'kd', 'uld'] as const) expect(c.stepMaxAbsDiff[k], k).toBeLessThan(1e-4);
    expect(c.evalLossMaxAbsDiff).toBeLessThan(1e-5);
    const steps = lines.filter((l) => l.kind === 'check-steps');
    expect(steps.map((l) => l.run)).toEqual(['seqkd-seed1', 'cross-seed1']);
    for (const l of steps) expect(l.engine).toHaveLength(3);
    // The cross run really has its KD and ULD terms (the toy data has exact and ULD rows); SeqKD has neither.
    expect(r.data.crossTokens.exact).toBeGreaterThan(0);
    expect(r.data.crossTokens.uld).toBeGreaterThan(0);
    expect(steps[1]!.engine![0]!.kd).toBeGreaterThan(0);
    expect(steps[1]!.engine![0]!.uld).toBeGreaterThan(0);
    expect(steps[0]!.engine![0]!.kd).toBe(0);
    expect(r.perSeed).toHaveLength(1);
    for (const m of ['seqkd', 'cross'] as const) expect(Number.isFinite((r.perSeed[0]![m] as { ppl: number }).ppl)).toBe(true);
  }, 300_000);
});
