// On-policy distillation (GKD, survey §Distillation): the student samples continuations of prompts, the teacher
// scores every token of those samples (its full distribution), and the student is trained with a divergence to
// the teacher on its own samples; `lambda` is the share of steps that use on-policy batches instead of dataset
// batches. The sampling runs on the student's live weights (the Generator shares the trainer's parameter slab).
import { NO_LABEL } from '../kernels/loss/loss.ts';
import type { Generator } from '../model/generate.ts';
import type { GpuModel, TrainBatch } from '../model/gpu-model.ts';
import type { SamplingConfig } from '../model/sampling.ts';
import { Rng } from '../util/rng.ts';

export interface OnPolicyOptions extends Partial<SamplingConfig> {
  /** Tokens to sample after each prompt (prompt + sample must fit in T + 1). */
  maxNewTokens: number;
  seed: number;
  stopTokens?: number[];
}

/**
 * Samples one continuation per prompt with the student and returns the batch (B = prompts.length rows of T,
 * right-padded; targets only on sampled tokens) with the teacher's logits (B, T, V) for it.
 */
export async function onPolicyBatch(
  student: Generator, teacher: GpuModel, prompts: readonly ArrayLike<number>[], T: number, o: OnPolicyOptions,
): Promise<{ batch: TrainBatch; samples: number[][] }> {
  if (teacher.B !== prompts.length || teacher.T !== T) throw new Error(`on-policy: the teacher model is planned for B=${teacher.B}, T=${teacher.T}; need B=${prompts.length}, T=${T}`);
  const N = prompts.length * T;
  const ids = new Uint32Array(N), labels = new Uint32Array(N).fill(NO_LABEL), weights = new Float32Array(N);
  const samples: number[][] = [];
  const rng = new Rng(o.seed);
  for (let b = 0; b < prompts.length; b++) {
    const prompt = Array.from(prompts[b]!);
    if (prompt.length + o.maxNewTokens > T + 1) throw new Error(`on-policy: prompt ${b} (${prompt.length} tokens) + ${o.maxNewTokens} new tokens exceeds T + 1 = ${T + 1}`);
    const sample = await student.generate(prompt, { ...o, seed: rng.nextU32() });
    samples.push(sample);
    const seq = [...prompt, ...sample];
    for (let t = 0; t + 1 < seq.length; t++) {
      ids[b * T + t] = seq[t]!;
      if (t + 1 >= prompt.length) { labels[b * T + t] = seq[t + 1]!; weights[b * T + t] = 1; }
    }
  }
  if (!weights.some((w) => w > 0)) throw new Error('on-policy: the student produced no tokens for any prompt (all stopped at once)');
  teacher.setBatch({ ids, labels, weights });
  const teacherLogits = await teacher.logits();
  return { batch: { ids, labels, weights, teacherLogits }, samples };
}

/** Whether step `step` uses an on-policy batch: a seeded draw with probability lambda (GKD's λ). */
export function isOnPolicyStep(step: number, lambda: number, seed: number): boolean {
  if (!(lambda >= 0 && lambda <= 1)) throw new Error(`on-policy: lambda must be in [0, 1], got ${lambda}`);
  return new Rng((seed * 7919 + step) >>> 0).next() < lambda;
}
