// The embedded default teacher (public/models/brown-teacher/) trained without a GPU: the PyTorch replica of our
// trainer (scripts/brown_kd_torch.py, the Brown study's) trains examples/default-teacher.json on CPU, and our engine
// checks it before anything is exported:
//   1. the first --check-steps training steps, re-run on our engine (WebGPU through Dawn: SwiftShader here) from the
//      same initial weights, batches and LR, give the replica's losses (|Δ| ≤ 1e-3);
//   2. our engine, on the replica-trained weights read through our HF importer, gives the replica's held-out loss on
//      the first --check-eval-batches evaluation batches (|Δ| ≤ 1e-4).
// Then the weights are exported in the transformers.js layout with training.json saying who trained them and how
// they were checked. On a GPU machine, scripts/default-teacher.sh trains the same config with our engine instead.
//   node scripts/build-node.mjs scripts/default-teacher-replica.ts && node .node-dist/default-teacher-replica.mjs \
//     [--steps N] [--out runs/default-teacher-replica] [--export public/models/brown-teacher] [--reuse-replica]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFolder, readJson, writeFiles, writeFolderAtomic } from '../src/cli/export.ts';
import { loadTexts } from '../src/cli/train.ts';
import { exportModel } from '../src/export/index.ts';
import { exportHfFolder } from '../src/export/hf-folder.ts';
import { importHfFolder } from '../src/export/import.ts';
import { jsonFile } from '../src/export/types.ts';
import { makeConfig, type ModelConfig } from '../src/model/config.ts';
import { initParams } from '../src/model/ref-model.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { trainBpe } from '../src/tokenizer/bpe.ts';
import { BatchLoader, packRows } from '../src/train/batches.ts';
import { makeTrainConfig } from '../src/train/config.ts';
import { lrAt } from '../src/train/schedule.ts';
import { Trainer } from '../src/train/trainer.ts';
import { torchPython } from '../tests/support/torch-python.ts';
import { runReplica } from './replica.ts';

export const STEP_TOL = 1e-3, EVAL_TOL = 1e-4;

export interface ReplicaTeacherResult {
  heldOut: { loss: number; ppl: number; batches: number };
  check: { steps: number; stepLossMaxAbsDiff: number; engineLoss: number[]; replicaLoss: number[]; evalBatches: number; evalLossAbsDiff: number; engineEvalLoss: number; replicaEvalLoss: number };
  exported?: string;
}

export async function defaultTeacherReplica(argv: string[], opts: { device?: GPUDevice; log?: (o: object) => void } = {}): Promise<ReplicaTeacherResult> {
  const str = (k: string, d: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1]! : d; };
  const num = (k: string, d: number) => { const v = Number(str(k, String(d))); if (!Number.isFinite(v)) throw new Error(`--${k}: not a number`); return v; };
  const out = opts.log ?? ((o: object) => console.log(JSON.stringify(o)));
  const file = readJson(str('config', 'examples/default-teacher.json'), 'default-teacher-replica') as { model: Record<string, number>; train: Record<string, number> };
  const model: ModelConfig = makeConfig(file.model);
  const train = makeTrainConfig({ ...file.train, ...(argv.includes('--steps') ? { steps: num('steps', 0) } : {}) });
  const T = train.seqLen, B = train.batchSize, V = model.vocabSize;
  const checkSteps = Math.min(num('check-steps', 3), train.steps), checkEvalBatches = num('check-eval-batches', 4);
  const outDir = resolve(str('out', 'runs/default-teacher-replica'));
  const exportTo = argv.includes('--no-export') ? undefined : str('export', 'public/models/brown-teacher');
  if (V > 65536) throw new Error('default-teacher-replica: rows are written as u16; vocab must be ≤ 65536');

  // Data as `cli train` makes it: a BPE on the training text; every 10th Brown file held out; rows of T+1 tokens.
  const t0 = performance.now();
  const texts = loadTexts({ source: 'brown' });
  const tok = trainBpe(texts.train, { vocabSize: V, specialTokens: ['<|endoftext|>'] });
  const eos = tok.tokenToId('<|endoftext|>')!;
  const pack = (ps: string[]) => packRows(ps.map((p) => ({ tokens: Uint32Array.from(tok.encode(p)) })), T, eos);
  const rows = pack(texts.train), evalRows = pack(texts.heldOut);
  const evalBatches = Math.min(train.evalBatches, Math.floor(evalRows.length / B));
  const data = { kind: 'data', trainParagraphs: texts.train.length, heldOutParagraphs: texts.heldOut.length, vocab: V, trainTokens: rows.length * T, heldOutTokens: evalBatches * B * T, ms: Math.round(performance.now() - t0) };
  out(data);

  // The replica's inputs (scripts/brown_kd_torch.py's plan with a teacher and no students).
  mkdirSync(outDir, { recursive: true });
  const u16 = (rs: typeof rows) => { const a = new Uint16Array(rs.length * (T + 1)); rs.forEach((r, i) => a.set(r.tokens, i * (T + 1))); return a; };
  writeFileSync(join(outDir, 'rows.u16'), u16(rows));
  writeFileSync(join(outDir, 'eval.u16'), u16(evalRows));
  const loader = new BatchLoader(rows, B, T, train.seed);
  writeFileSync(join(outDir, 'teacher.order.u32'), new Uint32Array(Array.from({ length: train.steps }, () => loader.nextRows()).flat()));
  writeFiles(join(outDir, 'teacher.init'), exportHfFolder({ config: model, params: initParams(model, train.seed), tokenizer: tok }));
  const plan = {
    T, B, rows: join(outDir, 'rows.u16'), evalRows: join(outDir, 'eval.u16'), evalBatches, checkEvalBatches, evalEvery: train.evalEvery, logEverySteps: checkSteps,
    hp: { weightDecay: train.weightDecay, beta1: train.beta1, beta2: train.beta2, eps: train.eps, clipNorm: train.clipNorm },
    teacher: {
      name: 'teacher', init: join(outDir, 'teacher.init'), order: join(outDir, 'teacher.order.u32'), save: join(outDir, 'teacher.final'),
      lrs: Array.from({ length: train.steps }, (_, i) => lrAt(i + 1, { lr: train.lr, warmupSteps: train.warmupSteps, totalSteps: train.steps, minLrRatio: train.minLrRatio })),
      kdWeight: 0, ceWeight: 1, temperature: 1,
    },
    students: [],
  };
  const planText = JSON.stringify(plan);
  const planPath = join(outDir, 'plan.json'), logPath = join(outDir, 'replica.jsonl');

  // The replica trains (or, with --reuse-replica, its finished log and weights from the same plan are read back).
  type Line = { source?: string; kind: string; run?: string; step?: number; loss?: number; ppl?: number; ms?: number };
  let lines: Line[];
  const reusable = argv.includes('--reuse-replica') && existsSync(logPath) && existsSync(planPath) && readFileSync(planPath, 'utf8') === planText
    && existsSync(join(outDir, 'teacher.final', 'model.safetensors'));
  if (reusable) {
    lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
    if (!lines.some((l) => l.kind === 'teacher-saved')) throw new Error(`default-teacher-replica: ${logPath} has no teacher-saved line (the replica did not finish); run without --reuse-replica`);
    out({ kind: 'replica-reused', log: logPath, lines: lines.length });
  } else {
    writeFileSync(planPath, planText);
    writeFileSync(logPath, '');
    lines = [];
    await runReplica(planPath, (o) => { lines.push(o as Line); writeFileSync(logPath, JSON.stringify(o) + '\n', { flag: 'a' }); out(o); });
  }
  const stepLine = (s: number) => lines.find((l) => l.kind === 'step' && l.run === 'teacher' && l.step === s);
  const evals = lines.filter((l) => l.kind === 'eval' && l.run === 'teacher').map((l) => ({ kind: 'eval', step: l.step!, loss: l.loss!, ppl: l.ppl! }));
  const final = evals.find((e) => e.step === train.steps);
  const replicaCheck = lines.find((l) => l.kind === 'check-eval' && l.run === 'teacher');
  if (!final || !replicaCheck) throw new Error(`default-teacher-replica: the replica's log has no final evaluation at step ${train.steps}`);

  // Check 1: our engine trains the first steps from the same start and gets the replica's losses.
  const ctx = opts.device ? undefined : await acquireNodeGpu();
  const device = opts.device ?? ctx!.device;
  const adapter = ctx ? `${ctx.report.description || ctx.report.device || ctx.report.vendor} (${ctx.report.platform}, ${ctx.report.source})` : 'the caller\'s device';
  const engine = new Trainer({ device, model, train, rows, evalRows });
  const engineLoss: number[] = [];
  while (engine.step < checkSteps) {
    const t1 = performance.now();
    engineLoss.push((await engine.trainStep()).loss);
    out({ kind: 'check-step', step: engine.step, engine: engineLoss.at(-1), replica: stepLine(engine.step)?.loss, ms: Math.round(performance.now() - t1) });
  }
  engine.destroy();
  const replicaLoss = engineLoss.map((_, i) => stepLine(i + 1)?.loss ?? NaN);
  const stepDiff = Math.max(...engineLoss.map((l, i) => Math.abs(l - replicaLoss[i]!)));

  // Check 2: our engine on the replica's weights gives the replica's held-out loss on the first batches.
  const imp = importHfFolder(readFolder(plan.teacher.save), 'replica teacher');
  const judge = new Trainer({ device, model: imp.config, rows, evalRows, train: makeTrainConfig({ ...file.train, evalBatches: checkEvalBatches, steps: 1 }) });
  judge.gpu.uploadParams(imp.params);
  const t2 = performance.now();
  const engineEval = (await judge.evaluate())!;
  judge.destroy();
  ctx?.release();
  const evalDiff = Math.abs(engineEval.loss - replicaCheck.loss!);
  out({ kind: 'check-eval', batches: checkEvalBatches, engine: engineEval.loss, replica: replicaCheck.loss, ms: Math.round(performance.now() - t2) });
  const result: ReplicaTeacherResult = {
    heldOut: { loss: final.loss, ppl: final.ppl, batches: evalBatches },
    check: { steps: checkSteps, stepLossMaxAbsDiff: stepDiff, engineLoss, replicaLoss, evalBatches: checkEvalBatches, evalLossAbsDiff: evalDiff, engineEvalLoss: engineEval.loss, replicaEvalLoss: replicaCheck.loss! },
  };
  if (!(stepDiff <= STEP_TOL) || !(evalDiff <= EVAL_TOL)) {
    out({ kind: 'check-failed', ...result.check });
    throw new Error(`default-teacher-replica: the engine disagrees with the replica (step losses |Δ| ${stepDiff}, tolerance ${STEP_TOL}; held-out loss |Δ| ${evalDiff}, tolerance ${EVAL_TOL}); nothing exported`);
  }

  // Export, with the record of who trained the weights and how they were checked.
  if (exportTo) {
    const torch = execFileSync(torchPython(), ['-c', 'import torch, transformers; print(torch.__version__, transformers.__version__)'], { encoding: 'utf8' }).trim().split(' ');
    const trainMs = lines.filter((l) => l.kind === 'step' && l.run === 'teacher').at(-1)?.ms ?? 0;
    const record = {
      source: 'scripts/default-teacher-replica.ts', step: train.steps, model, train,
      trainedBy: `PyTorch replica of our trainer (scripts/brown_kd_torch.py; torch ${torch[0]}, transformers ${torch[1]}) on CPU, checked against our engine`,
      check: { ...result.check, adapter, stepTolerance: STEP_TOL, evalTolerance: EVAL_TOL },
      heldOut: { kind: 'eval', step: train.steps, loss: final.loss, ppl: final.ppl, batches: evalBatches },
      evals, data, trainSeconds: Math.round(trainMs / 1000),
    };
    writeFolderAtomic(exportTo, exportModel({ config: model, params: imp.params, tokenizer: tok }, 'transformers.js', [jsonFile('training.json', record)]), true);
    result.exported = exportTo;
  }
  out({ kind: 'summary', ...result });
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  defaultTeacherReplica(process.argv.slice(2)).then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
}
