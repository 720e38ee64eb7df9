// The reward model on the GPU (issue #24, src/model/gpu-reward.ts): (1) scores, Bradley–Terry loss and every gradient
// (trunk and score head) equal the CPU reference's (reward.ref.ts) for two families (Qwen2-shaped: q/k/v biases, tied;
// Qwen3-shaped: q/k norms, untied) with margins and right padding; (2) trained on pairs ranked by a reward we know
// (the share of a target token in the answer), it ranks held-out pairs right ≥ 90% of the time; (3) GRPO against
// that learnt reward model (not the known function) raises the known reward of held-out answers over 3 seeds, KL to
// the reference under 1 nat per token.
import { describe, expect, it } from 'vitest';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { GpuRewardModel } from '../../src/model/gpu-reward.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initHiddenProjection, initParams } from '../../src/model/ref-model.ts';
import { refRewardLossAndGrad } from '../../src/model/reward.ref.ts';
import { rlStep, type RewardFn } from '../../src/train/rl.ts';
import { CE_ONLY } from '../../src/train/step-trainer.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const OPT = { weightDecay: 0, beta1: 0.9, beta2: 0.99, eps: 1e-8, clipNorm: 1 };

/** Every parameter moves the score: weights N(0, 0.3), norm gains 1 ± 0.3, biases N(0, 0.3). */
function perturbed(config: ModelConfig, seed: number): Float32Array {
  const params = initParams(config, seed), rng = new Rng(seed + 1);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) params[e.offset + i] = 1 + 0.6 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.3 * rng.normal();
  }
  return params;
}

describe('reward model on the GPU', () => {
  for (const [family, over] of [['Qwen2-shaped (biases, tied)', { attentionBias: true }], ['Qwen3-shaped (q/k norms, untied)', { qkNorm: true, tieEmbeddings: false }]] as const) {
    it(`scores, loss and gradients = the CPU reference: ${family}, margins, padding`, async () => {
      const { device } = gpu();
      const config = makeConfig({ vocabSize: 23, hidden: 12, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 14, maxSeqLen: 16, initStd: 0.3, ...over });
      const P = 3, T = 7, rng = new Rng(11);
      const params = perturbed(config, 5);
      const w = Float32Array.from({ length: config.hidden }, () => rng.normal());
      const ids = Uint32Array.from({ length: 2 * P * T }, () => rng.int(config.vocabSize));
      const lengths = [7, 3, 5, 1, 6, 4], margin = [0.2, -0.1, 0];
      const rm = new GpuRewardModel(device, config, P, T, OPT);
      try {
        rm.gpu.uploadParams(params);
        rm.uploadHead(w);
        const r = await rm.step({ ids, lengths, margin }, { backward: true });
        const ref = refRewardLossAndGrad(config, Float64Array.from(params), Float64Array.from(w), { ids, T, P, lengths, margin });
        const tol = { atol: 1e-5, rtol: 1e-3 };
        const s = compareArrays(r.scores, ref.scores, tol);
        expect(s.ok, describeComparison(s)).toBe(true);
        expect(r.loss).toBeCloseTo(ref.loss, 5);
        expect(r.accuracy).toBe(ref.accuracy);
        const g = compareArrays(await rm.gpu.readGrads(), ref.grad, tol);
        expect(g.ok, describeComparison(g)).toBe(true);
        const gw = compareArrays(await rm.readHeadGrad(), ref.dw, tol);
        expect(gw.ok, describeComparison(gw)).toBe(true);
        // Padding past a row's length changes nothing.
        const padded = ids.slice();
        for (let b = 0; b < 2 * P; b++) for (let t = lengths[b]!; t < T; t++) padded[b * T + t] = (padded[b * T + t]! + 7) % config.vocabSize;
        const again = compareArrays(await rm.scores(padded, lengths), ref.scores, tol);
        expect(again.ok, describeComparison(again)).toBe(true);
        expect(() => rm.uploadHead(new Float32Array(3))).toThrow(/3 values, the model is 12 wide/);
        await expect(rm.scores(ids, [7, 3, 5, 0, 6, 4])).rejects.toThrow(/row 3 has length 0, expected 1..7/);
      } finally {
        rm.destroy();
      }
    }, 120_000);
  }
});

// A known reward: the share of TARGET among an answer's tokens. Prompts are 1–2 tokens, answers up to 6.
const TASK = makeConfig({ vocabSize: 12, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 10, initStd: 0.3 });
const T = 9, TARGET = 5;
const share = (c: readonly number[]) => (c.length === 0 ? 0 : c.filter((x) => x === TARGET).length / c.length);
const TRAIN_PROMPTS = [[1, 2], [3, 4], [6], [7, 8], [9], [10, 11]];
const HELD_OUT_PROMPTS = [[2, 1], [4], [8, 7], [11]];

/** A prompt and an answer whose share of TARGET is spread over 0..1. */
function sample(rng: Rng, prompts: number[][]): { prompt: number[]; answer: number[] } {
  const prompt = prompts[rng.int(prompts.length)]!, n = 1 + rng.int(6), p = rng.next();
  return { prompt, answer: Array.from({ length: n }, () => (rng.next() < p ? TARGET : 1 + rng.int(TASK.vocabSize - 1))) };
}

/** P pairs ranked by the known reward (ties skipped): chosen rows then rejected rows. */
function pairBatch(rng: Rng, P: number, prompts: number[][]): { ids: Uint32Array; lengths: number[] } {
  const rows: number[][] = [], rejected: number[][] = [];
  while (rows.length < P) {
    const a = sample(rng, prompts), b = sample(rng, prompts);
    const ra = share(a.answer), rb = share(b.answer);
    if (ra === rb) continue;
    const [c, r] = ra > rb ? [a, b] : [b, a];
    rows.push([...c.prompt, ...c.answer]);
    rejected.push([...r.prompt, ...r.answer]);
  }
  const all = [...rows, ...rejected], ids = new Uint32Array(all.length * T);
  all.forEach((s, i) => ids.set(s, i * T));
  return { ids, lengths: all.map((s) => s.length) };
}

/** A reward model trained on known-reward pairs (P 8, `steps` steps, lr 0.01). */
async function trainRewardModel(device: GPUDevice, seed: number, steps: number): Promise<GpuRewardModel> {
  const rm = new GpuRewardModel(device, TASK, 8, T, OPT);
  rm.gpu.uploadParams(initParams(TASK, seed));
  rm.uploadHead(initHiddenProjection(TASK, 1, seed));
  const rng = new Rng(seed);
  for (let step = 1; step <= steps; step++) await rm.step(pairBatch(rng, 8, TRAIN_PROMPTS), { update: { lr: 0.01, step } });
  return rm;
}

/** Held-out pair accuracy over `batches` batches of 8 pairs from the held-out prompts. */
async function heldOutAccuracy(rm: GpuRewardModel, batches: number): Promise<number> {
  const rng = new Rng(4242);
  let right = 0;
  for (let i = 0; i < batches; i++) right += (await rm.step(pairBatch(rng, 8, HELD_OUT_PROMPTS))).accuracy * 8;
  return right / (8 * batches);
}

describe('a reward model learns a known reward, and RL against it raises that reward', () => {
  it('held-out pair accuracy ≥ 0.9; GRPO against the learnt model raises the known reward over 3 seeds, KL < 1 nat', async () => {
    const { device } = gpu();
    const rm = await trainRewardModel(device, 1, 150);
    const G = 4, P = 2, B = P * G, STEPS = 15;
    try {
      const acc = await heldOutAccuracy(rm, 10);
      console.log(`reward model: held-out pair accuracy ${acc.toFixed(3)} (80 pairs)`);
      expect(acc).toBeGreaterThanOrEqual(0.9);
      // The reward of an RL sample is the learnt model's score of prompt + answer.
      const learnt: RewardFn = async (prompts, completions) => {
        const ids = new Uint32Array(completions.length * T);
        const lengths = completions.map((c, i) => { const s = [...prompts[i]!, ...c]; ids.set(s, i * T); return s.length; });
        return Array.from(await rm.scoreRows(ids, lengths));
      };
      const results: { before: number; after: number; kl: number }[] = [];
      for (const seed of [1, 2, 3]) {
        const start = initParams(TASK, 10 + seed);
        const policy = new GpuModel(device, TASK, B, T, CE_ONLY, OPT), reference = new GpuModel(device, TASK, B, T, CE_ONLY, OPT);
        policy.uploadParams(start);
        reference.uploadParams(start);
        const gen = new Generator(device, TASK, policy.params, T + 1);
        const knownHeldOut = async () => {
          const rng = new Rng(999);
          let s = 0, n = 0;
          for (const p of HELD_OUT_PROMPTS) for (let k = 0; k < 8; k++) { s += share(await gen.generate(p, { maxNewTokens: 6, temperature: 1, seed: rng.nextU32() })); n++; }
          return s / n;
        };
        try {
          const b = await knownHeldOut();
          const rng = new Rng(seed);
          let kl = 0;
          for (let step = 1; step <= STEPS; step++) {
            const prompts = Array.from({ length: P }, () => TRAIN_PROMPTS[rng.int(TRAIN_PROMPTS.length)]!);
            // KL of the policy to the reference per sampled token (k3), as the step measured it before its update.
            kl = (await rlStep(policy, reference, gen, prompts, learnt, { G, beta: 0.2, advantage: 'grpo', maxNewTokens: 6, temperature: 1 }, rng.nextU32(), { lr: 0.006, step })).kl;
          }
          results.push({ before: b, after: await knownHeldOut(), kl });
        } finally {
          gen.destroy(); policy.destroy(); reference.destroy();
        }
      }
      console.log(`rl against the learnt reward model: known held-out reward ${JSON.stringify(results.map((r) => ({ before: +r.before.toFixed(3), after: +r.after.toFixed(3), kl: +r.kl.toFixed(3) })))}`);
      for (const r of results) {
        expect(r.after).toBeGreaterThan(r.before + 0.05);
        expect(r.kl).toBeLessThan(1);
      }
    } finally {
      rm.destroy();
    }
  }, 900_000);
});
