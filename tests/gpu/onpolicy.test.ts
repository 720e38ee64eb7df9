// On-policy distillation: batches are the student's own samples scored by the teacher; training on them moves
// the student toward the teacher on its own samples (the KD term falls).
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { isOnPolicyStep, onPolicyBatch } from '../../src/train/onpolicy.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const config = makeConfig({ vocabSize: 23, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 12, initStd: 0.4 });
const T = 10, prompts = [[1, 2], [3], [4, 5, 6]];

describe('on-policy distillation', () => {
  it('builds batches from the student samples, scored by the teacher, and reduces the KD term on them', async () => {
    const { device } = gpu();
    const student = new GpuModel(device, config, prompts.length, T,
      { objective: 'fkl', temperature: 1, kdWeight: 1, ceWeight: 0, teacher: { kind: 'dense' } }, { weightDecay: 0, clipNorm: 1 });
    const teacher = new GpuModel(device, config, prompts.length, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
    const gen = new Generator(device, config, student.params, T + 1);
    try {
      student.uploadParams(initParams(config, 1));
      teacher.uploadParams(initParams(config, 2));
      const opts = { maxNewTokens: 6, seed: 3, temperature: 1 };
      const { batch, samples } = await onPolicyBatch(gen, teacher, prompts, T, opts);
      // The batch holds exactly prompt + the student's sample, with targets on the sampled tokens only.
      samples.forEach((s, b) => {
        expect(s).toHaveLength(6);
        const seq = [...prompts[b]!, ...s];
        expect([...batch.ids.subarray(b * T, b * T + seq.length - 1)]).toEqual(seq.slice(0, -1));
        expect(batch.weights.subarray(b * T, (b + 1) * T).reduce((a, w) => a + w, 0)).toBe(6);
      });
      expect(batch.teacherLogits).toHaveLength(prompts.length * T * config.vocabSize);
      // Train on fresh on-policy batches; the KD term on a fixed on-policy batch falls.
      student.setBatch(batch);
      const before = (await student.run({ backward: false })).kd;
      for (let s = 1; s <= 12; s++) {
        const b = await onPolicyBatch(gen, teacher, prompts, T, { ...opts, seed: 100 + s });
        student.setBatch(b.batch);
        await student.run({ update: { lr: 0.03, step: s } });
      }
      student.setBatch(batch);
      const after = (await student.run({ backward: false })).kd;
      expect(after).toBeLessThan(before * 0.8);
    } finally {
      gen.destroy(); student.destroy(); teacher.destroy();
    }
  }, 120_000);

  it('mixes on-policy steps by a seeded ratio', () => {
    const steps = Array.from({ length: 2000 }, (_, i) => isOnPolicyStep(i + 1, 0.3, 7));
    const share = steps.filter(Boolean).length / steps.length;
    expect(share).toBeGreaterThan(0.25);
    expect(share).toBeLessThan(0.35);
    expect(Array.from({ length: 50 }, (_, i) => isOnPolicyStep(i + 1, 0.3, 7))).toEqual(steps.slice(0, 50));
    expect(() => isOnPolicyStep(1, 1.5, 7)).toThrow(/lambda must be in \[0, 1\]/);
  });
});
