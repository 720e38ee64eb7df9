// Token-level KD beats SFT, trained by our engine (the README's Brown study was trained by the PyTorch replica; this
// is our own trainer on the GPU path, at a size SwiftShader affords). Teacher: the walk's fixture teacher
// (tests/fixtures/brown-teacher-small: 0.65M parameters, V = 1,024, trained on the Brown training split), its dense
// logits from our CPU reference model on the same weights (the GPU model's oracle; on SwiftShader the GPU forward of
// this teacher costs ~5 s a batch, the reference ~0.4 s). Students: a 1-layer, 32-wide Llama on the teacher's
// tokenizer, 12 steps of 4 × 32 tokens of Brown training text (100 paragraphs spread over the split), lr 1e-2, warmup
// 3, cosine to 0.1: SFT = CE on the text; KD = 0.5·KL(teacher ‖ student) + 0.5·CE, on the same batches from the same
// initial weights (the seed fixes both). Held-out loss: CE on the same 8 batches of held-out Brown text (every 13th
// paragraph of the held-out files) for both — far from converged (the teacher is at 5.497 there): this is KD's head
// start at equal steps, not the study's 2,000-step result. Measured 2026-12-06 on SwiftShader (held-out CE, nats):
//   seed 1: SFT 6.510, KD 6.209 (−0.300) · seed 2: SFT 6.480, KD 6.206 (−0.274) · seed 3: SFT 6.586, KD 6.230 (−0.356)
// (with 20 steps, warmup 5: −0.167, −0.175, −0.248; KD ahead at every 5-step evaluation of all three seeds).
// The test runs seed 1 and asserts half the smallest measured margin. 60–120 s on the shared 2-core machine (330 s
// with an e2e test beside it). With the teacher's logits lost before the loss (a uniform teacher) KD ends at 6.531,
// above SFT: the test fails. What it does not show at this size: a teacher misaligned by one position gave the same
// gain (KD 6.209) — 12 steps in, KD's head start comes from the teacher's marginal distribution over the vocabulary
// (the study's 2,000-step runs, trained by the replica, are where the per-position knowledge shows).
import { describe, expect, it } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { loadTexts } from '../../src/cli/train.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { makeConfig } from '../../src/model/config.ts';
import { refForward } from '../../src/model/ref-model.ts';
import { packRows, type Batch } from '../../src/train/batches.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
/** Held-out CE of KD must be below SFT's by this much (nats): half the smallest margin measured on seeds 1–3. */
const MARGIN = 0.14;
const B = 4, T = 32, STEPS = 12, WARMUP = 3, EVAL_BATCHES = 8, SEED = 1;

describe('token-level KD vs SFT on Brown, trained by our engine', () => {
  it(`KD's held-out loss is below SFT's by at least ${MARGIN} nats (same data, steps, seed)`, async () => {
    const { device } = gpu();
    const teacher = importHfFolder(readFolder('tests/fixtures/brown-teacher-small'), 'the fixture teacher');
    const tok = teacher.tokenizer!;
    const eos = tok.tokenToId('<|endoftext|>')!;
    const texts = loadTexts({ source: 'brown' });
    const stride = Math.floor(texts.train.length / 100);
    const pack = (ps: string[]) => packRows(ps.map((p) => ({ tokens: Uint32Array.from(tok.encode(p)) })), T, eos);
    const rows = pack(texts.train.filter((_, i) => i % stride === 0).slice(0, 100));
    const evalRows = pack(texts.heldOut.filter((_, i) => i % 13 === 0).slice(0, 60));
    expect(evalRows.length).toBeGreaterThanOrEqual(EVAL_BATCHES * B);
    const V = teacher.config.vocabSize;
    const student = makeConfig({ vocabSize: V, hidden: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 32, intermediate: 88, maxSeqLen: T });
    /** The teacher's dense logits (B, T, V) for a training batch. */
    const teacherFor = (b: Batch) => ({ teacherLogits: Float32Array.from(refForward(teacher.config, teacher.params, b.ids, B, T).logits) });
    const common = { batchSize: B, seqLen: T, evalBatches: EVAL_BATCHES };
    // One judge evaluates both students on the same held-out batches (CE only).
    const judge = new Trainer({ device, model: student, rows, evalRows, train: makeTrainConfig({ ...common, steps: 1 }) });
    const result: Record<string, number> = {};
    const t0 = performance.now();
    try {
      for (const mode of ['sft', 'kd'] as const) {
        const train = makeTrainConfig({
          ...common, steps: STEPS, lr: 0.01, warmupSteps: WARMUP, evalEvery: 0, seed: SEED,
          ...(mode === 'kd' ? { objective: 'fkl', kdWeight: 0.5, ceWeight: 0.5, temperature: 1 } : {}),
        });
        const t = new Trainer({ device, model: student, train, rows, ...(mode === 'kd' ? { teacherFor } : {}) });
        try {
          while (t.step < STEPS) {
            const s = await t.trainStep();
            expect(s.skipped).toBe(false);
            if (mode === 'kd') expect(s.kd).toBeGreaterThan(0); // the KL term is really there
          }
          judge.gpu.uploadParams(await t.gpu.readParams());
          result[mode] = (await judge.evaluate())!.loss;
        } finally {
          t.destroy();
        }
      }
    } finally {
      judge.destroy();
    }
    console.log(`[kd-vs-sft] seed ${SEED}: held-out CE SFT ${result.sft!.toFixed(4)}, KD ${result.kd!.toFixed(4)}, ` +
      `KD − SFT ${(result.kd! - result.sft!).toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    expect(result.sft! - result.kd!).toBeGreaterThan(MARGIN);
  }, 600_000);
});
