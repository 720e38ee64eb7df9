// The embedded default teacher was trained by the PyTorch replica of our trainer (no GPU lent), and
// scripts/default-teacher-replica.ts checks the replica against our engine before it exports anything. This runs
// that script end to end at toy size: the replica trains from our initial weights and batches, our engine re-runs
// the first steps and evaluates the replica's weights, and the exported folder says who trained it and how it was
// checked — so the shipped folder's claims come from a check that works.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultTeacherReplica, EVAL_TOL, STEP_TOL } from '../../scripts/default-teacher-replica.ts';
import { readFolder } from '../../src/cli/export.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('default teacher: the replica checked against our engine, then exported', () => {
  it('same first step losses and held-out loss as our engine; the folder records the trainer and the check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-replica-'));
    const config = join(dir, 'tiny.json');
    writeFileSync(config, JSON.stringify({
      model: { vocabSize: 384, hidden: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, maxSeqLen: 64 },
      train: { batchSize: 4, seqLen: 32, steps: 5, lr: 0.003, warmupSteps: 1, evalEvery: 5, evalBatches: 4, checkpointEvery: 100 },
    }));
    const lines: { kind?: string }[] = [];
    const out = join(dir, 'teacher');
    const r = await defaultTeacherReplica(['--config', config, '--out', join(dir, 'run'), '--export', out, '--check-steps', '2', '--check-eval-batches', '2'],
      { device: gpu().device, log: (o) => lines.push(o) });
    expect(r.check.engineLoss).toHaveLength(2);
    expect(r.check.stepLossMaxAbsDiff).toBeLessThan(STEP_TOL);
    expect(r.check.evalLossAbsDiff).toBeLessThan(EVAL_TOL);
    // Not a trivial agreement: the losses move from step to step, and the eval is of trained weights (below ln V).
    expect(r.check.engineLoss[0]).not.toBe(r.check.engineLoss[1]);
    expect(r.check.engineEvalLoss).toBeLessThan(Math.log(384));
    expect(lines.map((l) => l.kind)).toContain('check-eval');

    const imp = importHfFolder(readFolder(out), 'exported teacher');
    expect(imp.config.hidden).toBe(32);
    const record = JSON.parse(new TextDecoder().decode(readFolder(out).get('training.json')!));
    expect(record.trainedBy).toMatch(/^PyTorch replica of our trainer .*checked against our engine$/);
    expect(record.check.stepLossMaxAbsDiff).toBe(r.check.stepLossMaxAbsDiff);
    expect(record.heldOut.ppl).toBeCloseTo(Math.exp(record.heldOut.loss), 6);
  }, 600_000);
});
