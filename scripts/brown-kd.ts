// Experiment: on the Brown corpus, train a teacher, then distil a smaller student with token-level KD (forward
// KL to the teacher's dense distribution, mixed with CE) and with plain SFT (CE on the same text) at equal steps
// and seeds; report held-out perplexity for each seed. Runs on whatever Dawn gives (a GPU, or SwiftShader).
//   node scripts/build-node.mjs scripts/brown-kd.ts && node .node-dist/brown-kd.mjs [--quick] > results.jsonl
import { loadTexts } from '../src/cli/train.ts';
import { makeConfig } from '../src/model/config.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { trainBpe } from '../src/tokenizer/bpe.ts';
import { packRows, type Batch } from '../src/train/batches.ts';
import { makeTrainConfig } from '../src/train/config.ts';
import { Trainer } from '../src/train/trainer.ts';

const quick = process.argv.includes('--quick');
const arg = (k: string, d: number) => { const i = process.argv.indexOf(`--${k}`); return i >= 0 ? Number(process.argv[i + 1]) : d; };
const V = arg('vocab', 512), T = arg('seq', 32), B = arg('batch', 16);
const teacherSteps = arg('teacher-steps', quick ? 20 : 400), studentSteps = arg('student-steps', quick ? 10 : 200);
const evalBatchCount = arg('eval-batches', quick ? 4 : 32);
const seeds = quick ? [1] : [1, 2, 3];
const out = (o: object) => console.log(JSON.stringify(o));

// Sizes: the defaults are what a GPU makes quick; SwiftShader (CPU) needs e.g. --vocab 256 --teacher-hidden 64
// --teacher-layers 2 --student-hidden 32 --student-layers 1 --batch 8.
const tc = arg('teacher-hidden', 128), tl = arg('teacher-layers', 4), sc = arg('student-hidden', 64), sl = arg('student-layers', 2);
const teacherCfg = makeConfig({ vocabSize: V, hidden: tc, layers: tl, heads: tc / 32, kvHeads: Math.max(1, tc / 64), headDim: 32, intermediate: Math.round((tc * 8) / 3), maxSeqLen: T });
const studentCfg = makeConfig({ vocabSize: V, hidden: sc, layers: sl, heads: sc / 32, kvHeads: Math.max(1, sc / 64), headDim: 32, intermediate: Math.round((sc * 8) / 3), maxSeqLen: T });

const texts = loadTexts({ source: 'brown' });
const tok = trainBpe(texts.train, { vocabSize: V, specialTokens: ['<|endoftext|>'] });
const eos = tok.tokenToId('<|endoftext|>')!;
const rows = packRows(texts.train.map((p) => ({ tokens: Uint32Array.from(tok.encode(p)) })), T, eos);
const evalRows = packRows(texts.heldOut.map((p) => ({ tokens: Uint32Array.from(tok.encode(p)) })), T, eos);
out({ kind: 'data', teacher: teacherCfg, student: studentCfg, vocab: V, trainTokens: rows.length * T, heldOutTokens: evalRows.length * T, teacherSteps, studentSteps, B, T });

const ctx = await acquireNodeGpu();
const common = { batchSize: B, seqLen: T, evalEvery: 0, evalBatches: evalBatchCount, warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0.1 };

const t0 = performance.now();
const teacher = new Trainer({
  device: ctx.device, model: teacherCfg, rows, evalRows,
  train: makeTrainConfig({ ...common, steps: teacherSteps, lr: 3e-3, seed: 100 }),
  log: (e) => { if (e.kind !== 'step' || e.step % 50 === 0) out({ who: 'teacher', ...e }); },
});
await teacher.run();
out({ kind: 'teacher-done', ms: Math.round(performance.now() - t0) });

// The teacher's dense distribution for a student batch: a forward pass of the teacher on the same tokens.
const teacherLogits = async (b: Batch): Promise<Float32Array> => {
  teacher.gpu.setBatch(b);
  return teacher.gpu.logits();
};

for (const seed of seeds) {
  for (const mode of ['sft', 'kd'] as const) {
    const train = makeTrainConfig({
      ...common, steps: studentSteps, lr: 3e-3, seed,
      ...(mode === 'kd' ? { objective: 'fkl', kdWeight: 0.5, ceWeight: 0.5, temperature: 1 } : {}),
    });
    // Precompute teacher logits per batch lazily (the Trainer asks synchronously, so prefetch before each step).
    let pending: Float32Array | undefined;
    const student = new Trainer({
      device: ctx.device, model: studentCfg, train, rows, evalRows,
      ...(mode === 'kd' ? { teacherFor: () => ({ teacherLogits: pending! }) } : {}),
    });
    const t1 = performance.now();
    while (student.step < train.steps) {
      if (mode === 'kd') {
        // Peek the student's next batch without consuming it: copy the cursor, fetch, restore.
        const cursor = { ...student.loader.cursor };
        const b = student.loader.next();
        student.loader.cursor = cursor;
        pending = await teacherLogits(b);
      }
      await student.trainStep();
    }
    // Held-out perplexity on the same evaluation batches for both modes (CE only; the KD student's evaluate()
    // needs teacher logits for its loss plan, so evaluate through an SFT-objective copy of the weights).
    const params = await student.gpu.readParams();
    const judge = new Trainer({ device: ctx.device, model: studentCfg, train: makeTrainConfig({ ...common, steps: 1, seed }), rows, evalRows });
    judge.gpu.uploadParams(params);
    const ev = (await judge.evaluate())!;
    out({ kind: 'result', mode, seed, steps: train.steps, heldOutLoss: ev.loss, heldOutPpl: ev.ppl, ms: Math.round(performance.now() - t1) });
    judge.destroy();
    student.destroy();
  }
}
const tev = (await teacher.evaluate())!;
out({ kind: 'teacher', heldOutLoss: tev.loss, heldOutPpl: tev.ppl });
teacher.destroy();
ctx.release();
process.exit(0);
