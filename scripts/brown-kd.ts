// Experiment: on the Brown corpus, train a teacher, then distil a smaller student with token-level KD (forward KL to
// the teacher's dense distribution, mixed with CE) and with plain SFT (CE on the same text) at equal steps and seeds;
// report held-out perplexity for each seed. Two backends, one protocol (same tokenizer, rows, batch order per seed,
// initial weights, LR per step, objective, optimizer):
//   --backend engine   our WebGPU engine trains everything (what a GPU machine runs);
//   --backend replica  the PyTorch replica (scripts/brown_kd_torch.py) trains, and our engine checks it: the first
//                      --check-steps steps of the first seed's SFT and KD runs, re-run on the engine from the same
//                      start, must give the same losses, and the engine's held-out loss of every replica-trained
//                      model (teacher and students, read through our HF importer) must equal the replica's on the
//                      first --check-eval-batches evaluation batches.
//   node scripts/build-node.mjs scripts/brown-kd.ts && node .node-dist/brown-kd.mjs [--backend replica] [--quick] > out.jsonl
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFolder, writeFiles } from '../src/cli/export.ts';
import { loadTexts } from '../src/cli/train.ts';
import { exportHfFolder } from '../src/export/hf-folder.ts';
import { importHfFolder } from '../src/export/import.ts';
import { makeConfig, presetConfig, type ModelConfig } from '../src/model/config.ts';
import { GpuModel } from '../src/model/gpu-model.ts';
import { initParams } from '../src/model/ref-model.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { trainBpe } from '../src/tokenizer/bpe.ts';
import { BatchLoader, packRows, type Batch } from '../src/train/batches.ts';
import { makeTrainConfig, type TrainConfig } from '../src/train/config.ts';
import { lrAt } from '../src/train/schedule.ts';
import { Trainer } from '../src/train/trainer.ts';
import { CE_ONLY, type EvalLog } from '../src/train/step-trainer.ts';
import { runReplica } from './replica.ts';

type Eval = Pick<EvalLog, 'loss' | 'ppl' | 'klToTeacher' | 'top1Agreement'>;
export interface BrownKdSummary {
  kind: 'summary';
  backend: 'engine' | 'replica';
  teacherPpl: number;
  perSeed: { seed: number; sft: number; kd: number }[];
  sft: { mean: number; sd: number };
  kd: { mean: number; sd: number };
  kdWinsEverySeed: boolean;
  results: Record<string, Eval>;
  /** Replica backend: the engine's agreement with the replica (max |Δ loss| over the checked steps and evaluations). */
  check?: { stepLossMaxAbsDiff: number; evalLossMaxAbsDiff: number };
}

export async function brownKd(argv: string[], opts: { device?: GPUDevice; log?: (o: object) => void } = {}): Promise<BrownKdSummary> {
  const quick = argv.includes('--quick');
  const str = (k: string, d: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1]! : d; };
  const num = (k: string, d: number) => { const v = Number(str(k, String(d))); if (!Number.isFinite(v)) throw new Error(`--${k}: not a number`); return v; };
  const backend = str('backend', 'engine');
  if (backend !== 'engine' && backend !== 'replica') throw new Error(`--backend must be 'engine' or 'replica', got '${backend}'`);
  const V = num('vocab', quick ? 320 : 2048), T = num('seq', quick ? 16 : 64), B = num('batch', quick ? 4 : 16);
  const teacherSteps = num('teacher-steps', quick ? 12 : 3000), studentSteps = num('student-steps', quick ? 8 : 2000);
  const evalEvery = num('eval-every', quick ? 4 : 250), evalBatchCount = num('eval-batches', quick ? 4 : 64);
  const checkSteps = num('check-steps', quick ? 4 : 10), checkEvalBatches = num('check-eval-batches', quick ? 2 : 4);
  const seeds = str('seeds', quick ? '1' : '1,2,3').split(',').map(Number);
  const kdWeight = num('kd-weight', 0.5), temperature = num('temperature', 1);
  const outDir = resolve(str('out', quick ? 'runs/brown-kd-quick' : 'runs/brown-kd'));
  const out = opts.log ?? ((o: object) => console.log(JSON.stringify(o)));

  // Models: presets (config.ts) at the study's vocabulary and sequence length, or explicit width × layers.
  const shape = (who: string, preset: string): ModelConfig => {
    if (argv.includes(`--${who}-hidden`)) {
      const hidden = num(`${who}-hidden`, 0), layers = num(`${who}-layers`, 2);
      return makeConfig({ vocabSize: V, hidden, layers, heads: Math.max(1, hidden / 32), kvHeads: Math.max(1, hidden / 64), headDim: 32, intermediate: Math.round((hidden * 8) / 3), maxSeqLen: T });
    }
    return presetConfig(str(`${who}-preset`, preset), { vocabSize: V, maxSeqLen: T });
  };
  const teacherCfg = quick ? makeConfig({ vocabSize: V, hidden: 64, layers: 2, heads: 2, kvHeads: 1, headDim: 32, intermediate: 171, maxSeqLen: T }) : shape('teacher', 'small-5m');
  const studentCfg = quick ? makeConfig({ vocabSize: V, hidden: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 32, intermediate: 85, maxSeqLen: T }) : shape('student', 'tiny-1m');
  const common = { batchSize: B, seqLen: T, evalEvery, evalBatches: evalBatchCount, warmupSteps: num('warmup', quick ? 2 : 50), minLrRatio: 0.1, weightDecay: 0.1 };
  const teacherTrain = makeTrainConfig({ ...common, steps: teacherSteps, lr: num('teacher-lr', 2e-3), seed: 100 });
  const studentTrain = (seed: number, mode: 'sft' | 'kd'): TrainConfig => makeTrainConfig({
    ...common, steps: studentSteps, lr: num('student-lr', 3e-3), seed,
    ...(mode === 'kd' ? { objective: 'fkl', kdWeight, ceWeight: 1 - kdWeight, temperature } : {}),
  });

  // Data: BPE on the training text; every 10th Brown file held out.
  const texts = loadTexts({ source: 'brown' });
  const tok = trainBpe(texts.train, { vocabSize: V, specialTokens: ['<|endoftext|>'] });
  const eos = tok.tokenToId('<|endoftext|>')!;
  const pack = (ps: string[]) => packRows(ps.map((p) => ({ tokens: Uint32Array.from(tok.encode(p)) })), T, eos);
  const rows = pack(texts.train), evalRows = pack(texts.heldOut);
  out({ kind: 'data', backend, vocab: V, T, B, trainTokens: rows.length * T, heldOutTokens: Math.min(evalRows.length, evalBatchCount * B) * T, teacher: teacherCfg, student: studentCfg, teacherSteps, studentSteps, seeds, kdWeight, temperature });

  const runs = seeds.flatMap((seed) => (['sft', 'kd'] as const).map((mode) => ({ name: `${mode}-seed${seed}`, seed, mode })));
  const ctx = opts.device ? undefined : await acquireNodeGpu();
  const device = opts.device ?? ctx!.device;
  const results: Record<string, Eval> = {};
  let check: BrownKdSummary['check'];

  /** The teacher's dense logits for a batch: a forward pass of our engine. */
  const teacherSignal = (teacher: GpuModel) => async (b: Batch) => {
    teacher.setBatch(b);
    return { teacherLogits: await teacher.logits() };
  };
  /** Trains one student on the engine for `until` steps (the schedule spans the full run). */
  const engineStudent = async (run: (typeof runs)[number], until: number, teacher: GpuModel, log?: (step: number, loss: number) => void) => {
    const student = new Trainer({ device, model: studentCfg, train: studentTrain(run.seed, run.mode), rows, evalRows, ...(run.mode === 'kd' ? { teacherFor: teacherSignal(teacher) } : {}) });
    while (student.step < until) {
      const s = await student.trainStep();
      log?.(s.step, s.loss);
    }
    return student;
  };
  /** Held-out loss/perplexity of `params` by our engine (KL to the teacher and top-1 agreement when given one). */
  const engineEval = async (config: ModelConfig, params: Float32Array, batches: number, teacher?: GpuModel): Promise<Eval> => {
    const judge = new Trainer({ device, model: config, rows, evalRows, train: makeTrainConfig({ ...common, evalBatches: batches, steps: 1 }), ...(teacher ? { teacherFor: teacherSignal(teacher) } : {}) });
    judge.gpu.uploadParams(params);
    const { loss, ppl, klToTeacher, top1Agreement } = (await judge.evaluate())!;
    judge.destroy();
    return { loss, ppl, klToTeacher, top1Agreement };
  };

  mkdirSync(outDir, { recursive: true });
  if (backend === 'engine') {
    const t0 = performance.now();
    // Trainer.run() evaluates on the held-out batches at its last step: that evaluation is the teacher's result.
    let last: EvalLog | undefined;
    const teacher = new Trainer({
      device, model: teacherCfg, train: teacherTrain, rows, evalRows,
      log: (e) => { if (e.kind === 'eval') last = e; if (e.kind !== 'step' || e.step % 25 === 0) out({ run: 'teacher', ...e }); },
    });
    await teacher.run();
    results.teacher = { loss: last!.loss, ppl: last!.ppl };
    out({ kind: 'teacher-done', ...results.teacher, ms: Math.round(performance.now() - t0) });
    for (const run of runs) {
      const t1 = performance.now();
      const s = await engineStudent(run, studentSteps, teacher.gpu, (step, loss) => { if (step % 25 === 0) out({ kind: 'step', run: run.name, step, loss }); });
      results[run.name] = await engineEval(studentCfg, await s.gpu.readParams(), evalBatchCount, teacher.gpu);
      out({ kind: 'result', run: run.name, ...results[run.name], ms: Math.round(performance.now() - t1) });
      s.destroy();
    }
    teacher.destroy();
  } else {
    // The replica's inputs: rows as u16, each run's batch order (row indices from our BatchLoader), LR per step,
    // initial weights exported as HF folders.
    if (V > 65536) throw new Error('replica: rows are written as u16; vocab must be ≤ 65536');
    const u16 = (rs: typeof rows) => { const a = new Uint16Array(rs.length * (T + 1)); rs.forEach((r, i) => a.set(r.tokens, i * (T + 1))); return a; };
    writeFileSync(join(outDir, 'rows.u16'), u16(rows));
    writeFileSync(join(outDir, 'eval.u16'), u16(evalRows));
    const spec = (name: string, config: ModelConfig, train: TrainConfig) => {
      const loader = new BatchLoader(rows, B, T, train.seed);
      writeFileSync(join(outDir, `${name}.order.u32`), new Uint32Array(Array.from({ length: train.steps }, () => loader.nextRows()).flat()));
      writeFiles(join(outDir, `${name}.init`), exportHfFolder({ config, params: initParams(config, train.seed), tokenizer: tok }));
      return {
        name, init: join(outDir, `${name}.init`), order: join(outDir, `${name}.order.u32`), save: join(outDir, `${name}.final`),
        lrs: Array.from({ length: train.steps }, (_, i) => lrAt(i + 1, { lr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps, minLrRatio: train.minLrRatio })),
        kdWeight: train.kdWeight, ceWeight: train.ceWeight, temperature: train.temperature,
      };
    };
    const plan = {
      T, B, rows: join(outDir, 'rows.u16'), evalRows: join(outDir, 'eval.u16'), evalBatches: evalBatchCount, checkEvalBatches, evalEvery, logEverySteps: checkSteps,
      hp: { weightDecay: teacherTrain.weightDecay, beta1: teacherTrain.beta1, beta2: teacherTrain.beta2, eps: teacherTrain.eps, clipNorm: teacherTrain.clipNorm },
      teacher: spec('teacher', teacherCfg, teacherTrain),
      students: runs.map((r) => spec(r.name, studentCfg, studentTrain(r.seed, r.mode))),
    };
    writeFileSync(join(outDir, 'plan.json'), JSON.stringify(plan));
    const replica = await runReplica(join(outDir, 'plan.json'), out);
    Object.assign(results, replica.finalEval);

    // Check 1: our engine on the replica-trained weights gives the replica's held-out loss (first batches).
    let evalDiff = 0;
    const teacherImp = importHfFolder(readFolder(plan.teacher.save), 'replica teacher');
    const teacher = new GpuModel(device, teacherImp.config, B, T, CE_ONLY);
    teacher.uploadParams(teacherImp.params);
    for (const name of ['teacher', ...runs.map((r) => r.name)]) {
      const imp = name === 'teacher' ? teacherImp : importHfFolder(readFolder(join(outDir, `${name}.final`)), name);
      const engine = await engineEval(imp.config, imp.params, checkEvalBatches, name === 'teacher' ? undefined : teacher);
      const rep = replica.checkEval[name]!;
      evalDiff = Math.max(evalDiff, Math.abs(engine.loss - rep.loss));
      out({ kind: 'check-eval', run: name, batches: checkEvalBatches, engine, replica: rep });
    }
    // Check 2: the first steps of the first seed's runs, trained by the engine from the same start, give the same losses.
    let stepDiff = 0;
    for (const run of runs.filter((r) => r.seed === seeds[0])) {
      const engineLoss: number[] = [];
      (await engineStudent(run, Math.min(checkSteps, studentSteps), teacher, (_, loss) => engineLoss.push(loss))).destroy();
      const replicaLoss = replica.stepLoss[run.name]!.slice(0, engineLoss.length);
      const maxAbsDiff = Math.max(...engineLoss.map((l, i) => Math.abs(l - replicaLoss[i]!)));
      stepDiff = Math.max(stepDiff, maxAbsDiff);
      out({ kind: 'check-steps', run: run.name, engineLoss, replicaLoss, maxAbsDiff });
    }
    teacher.destroy();
    check = { stepLossMaxAbsDiff: stepDiff, evalLossMaxAbsDiff: evalDiff };
  }
  ctx?.release();

  // Summary: per seed, KD vs SFT held-out perplexity.
  const perSeed = seeds.map((seed) => ({ seed, sft: results[`sft-seed${seed}`]!.ppl, kd: results[`kd-seed${seed}`]!.ppl }));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));
  const summary: BrownKdSummary = {
    kind: 'summary', backend, teacherPpl: results.teacher!.ppl, perSeed,
    sft: { mean: mean(perSeed.map((r) => r.sft)), sd: sd(perSeed.map((r) => r.sft)) },
    kd: { mean: mean(perSeed.map((r) => r.kd)), sd: sd(perSeed.map((r) => r.kd)) },
    kdWinsEverySeed: perSeed.every((r) => r.kd < r.sft),
    results, ...(check ? { check } : {}),
  };
  out(summary);
  return summary;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  brownKd(process.argv.slice(2)).then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
}
