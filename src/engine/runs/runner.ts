// One run's training loop in the engine: the data rebuilt from the run's snapshot, the teacher signal its method
// needs (stored top-k rows; the teacher model's dense logits; on-policy batches of the student's own samples
// scored by the teacher), the trainer (Trainer for SFT/KD/on-policy, PairTrainer for DPO/IPO) restored from the
// run's last checkpoint, then steps until done or paused: every step logged (IndexedDB and the page), held-out
// evaluation, sample generations and checkpoints every N steps, ETA. A pause saves a checkpoint at the step it
// stopped; a tab that closes mid-run resumes from its last checkpoint and logs the steps after it again.
import { Generator } from '../../model/generate.ts';
import { GpuModel, type TrainBatch } from '../../model/gpu-model.ts';
import { paramLayout } from '../../model/params.ts';
import { initParams } from '../../model/ref-model.ts';
import type { DistillStore } from '../../store/store.ts';
import { loadTokenizer } from '../../tokenizer/hf.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';
import type { Batch } from '../../train/batches.ts';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../train/checkpoint.ts';
import { isOnPolicyStep, onPolicyBatch } from '../../train/onpolicy.ts';
import { PairTrainer } from '../../train/pair-trainer.ts';
import { Trainer, type TeacherSignal, type TrainLog } from '../../train/trainer.ts';
import { alignTeacherLogits } from '../../train/vocab-align.ts';
import { Rng } from '../../util/rng.ts';
import { buildRunData, readSnapshot, storeTopK, teacherTopK, type RunData } from './data.ts';
import { answerText, EOS_TOKEN, promptIds, stopIds, type RecordFormat } from './format.ts';
import { loadTeacherModel } from './prepare.ts';
import type { RunStore, StoredRun } from './run-store.ts';
import type { RunEvent, RunInfo, RunLog, RunStepLog } from './types.ts';

/** Checkpoint blob names within a run. */
export const CKPT = 'latest';
export const REFERENCE = 'reference';

export interface RunContext {
  device: GPUDevice;
  runs: RunStore;
  data: DistillStore;
  /** The run's teacher model files when they were picked (stored with the run). */
  teacherFiles: (run: StoredRun) => Promise<Record<string, Uint8Array> | undefined>;
}

export function runTokenizer(run: StoredRun): { tok: TextTokenizer; eos: number } {
  const tok = loadTokenizer(run.tokenizer, run.tokenizerConfig, `run ${run.name}: tokenizer.json`);
  const eos = eosId(tok);
  if (eos === undefined) throw new Error(`run ${run.name}: its tokenizer has no end-of-text token ('${EOS_TOKEN}' or its tokenizer_config.json eos_token)`);
  return { tok, eos };
}

/** The token that ends a text: ours ('<|endoftext|>'), else the one tokenizer_config.json names (`preferred` first). */
export function eosId(tok: TextTokenizer, preferred?: string | null): number | undefined {
  for (const name of [preferred, EOS_TOKEN, tok.namedSpecial?.eos]) {
    const id = name ? tok.tokenToId(name) : undefined;
    if (id !== undefined) return id;
  }
  return undefined;
}

/** How a run renders records: its format, the chat template resolved at creation for 'template'. */
export function recordFormat(spec: Pick<StoredRun['spec'], 'format' | 'chatTemplate' | 'name'>): RecordFormat {
  if (spec.format !== 'template') return spec.format;
  if (!spec.chatTemplate) throw new Error(`run ${spec.name}: the 'template' format needs a chat template (the teacher's, or one given)`);
  return { kind: 'template', template: spec.chatTemplate };
}

/** The run's data as it was at creation (same records, same order, same split). */
export async function runData(ctx: RunContext, run: StoredRun): Promise<RunData> {
  const { records, pairs } = await readSnapshot(ctx.data, run.spec.datasetId, run.snapshot);
  const { tok, eos } = runTokenizer(run);
  const topk = run.spec.method === 'kd' && run.spec.kdSource === 'store-topk' ? await storeTopK(ctx.data, run.spec.datasetId) : undefined;
  return buildRunData(records, pairs, { format: recordFormat(run.spec), tok, eos, T: run.train.seqLen, heldOutEvery: run.spec.heldOutEvery, ...(topk ? { topk } : {}) });
}

/** The teacher model of a run on the GPU, planned for B × T (forward only), or undefined when it has none. */
export async function runTeacherModel(ctx: RunContext, run: StoredRun, B: number, T: number, onProgress?: (m: string) => void): Promise<GpuModel | undefined> {
  const t = run.spec.teacher;
  if (!t) return undefined;
  const files = await ctx.teacherFiles(run);
  const imp = await loadTeacherModel(files ? { files } : t.source, t.label, onProgress);
  const g = new GpuModel(ctx.device, imp.config, B, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
  g.uploadParams(imp.params);
  return g;
}

/** Dense teacher logits for a batch, laid out at the student's vocabulary. */
export async function denseSignal(teacher: GpuModel, b: Pick<Batch, 'ids' | 'labels' | 'weights'>, V: number, realVocab: number): Promise<TeacherSignal> {
  teacher.setBatch({ ids: b.ids, labels: b.labels, weights: b.weights.some((w) => w > 0) ? b.weights : new Float32Array(b.weights.length).fill(1) });
  const logits = await teacher.logits();
  return { teacherLogits: alignTeacherLogits(logits, b.ids.length, teacher.config.vocabSize, V, realVocab) };
}

/** A step's teacher signal (dense, stored top-k, or none) for the Trainer, evaluation included. */
export function teacherFor(run: StoredRun, data: RunData, teacher: GpuModel | undefined, realVocab: number): ((b: Batch, split: 'train' | 'eval') => Promise<TeacherSignal>) | undefined {
  const V = run.model.vocabSize;
  if (run.spec.method === 'kd' && run.spec.kdSource === 'store-topk') {
    const table = data.topk!;
    // Training batches index the training rows, evaluation batches the held-out ones (both carry aux).
    return async (b, split) => teacherTopK(b, split === 'train' ? data.rows : data.evalRows, table, V);
  }
  if (teacher && (run.spec.method === 'kd' || run.spec.method === 'on-policy')) return (b) => denseSignal(teacher, b, V, realVocab);
  return undefined;
}

export interface LoopHooks {
  emit: (e: RunEvent) => void;
  /** True once the page asked the run to stop. */
  pauseRequested: () => boolean;
}

/** Sample generations of the student (its live weights) for the run's sample prompts. */
async function samples(gen: Generator, run: StoredRun, tok: TextTokenizer, eos: number, step: number): Promise<RunLog> {
  const out: { prompt: string; text: string }[] = [];
  const T = run.train.seqLen;
  const format = recordFormat(run.spec);
  const stops = stopIds(format, tok, eos);
  for (const [i, p] of run.spec.samplePrompts.slice(0, 3).entries()) {
    const ids = promptIds([{ role: 'user', content: p }], format, tok).slice(-(Math.floor(T / 2)));
    if (ids.length === 0) continue;
    const maxNewTokens = Math.max(1, Math.min(48, run.model.maxSeqLen - ids.length));
    const got = await gen.generate(ids, { maxNewTokens, temperature: 0.8, topK: 40, seed: step * 31 + i, stopTokens: stops });
    out.push({ prompt: p, text: answerText(tok.decode(got), format) });
  }
  return { kind: 'sample', step, samples: out };
}

function eta(times: number[], remaining: number): number | undefined {
  if (times.length === 0) return undefined;
  const recent = times.slice(-20);
  return (recent.reduce((s, x) => s + x, 0) / recent.length) * remaining;
}

/** Trains `run` from its checkpoint until done or paused. Returns the final status. */
export async function trainLoop(ctx: RunContext, run: StoredRun, hooks: LoopHooks): Promise<'done' | 'paused'> {
  const progress = (message: string) => hooks.emit({ kind: 'progress', message });
  progress('reading the run’s data');
  const data = await runData(ctx, run);
  const { tok, eos } = runTokenizer(run);
  const t = run.train;
  const ckpts = ctx.runs.checkpoints(run.id);
  const saved = await ckpts.get(CKPT);
  const resumeFrom = saved ? decodeCheckpoint(saved, `run ${run.name} checkpoint`) : undefined;
  // What was logged after the checkpoint (or everything, without one) is logged again as the steps are redone.
  await ctx.runs.truncateLogs(run.id, resumeFrom ? resumeFrom.step : -1);
  const log = async (e: RunLog) => {
    await ctx.runs.appendLog(run.id, e);
    hooks.emit(e);
  };
  const pairs = run.spec.method === 'dpo' || run.spec.method === 'ipo';
  const init = resumeFrom ? undefined : await initialWeights(ctx, run);
  const times: number[] = [];
  let teacher: GpuModel | undefined, trainer: Trainer | undefined, pairTrainer: PairTrainer | undefined, gen: Generator | undefined;
  try {
    if (pairs) {
      progress('building the policy and its frozen reference');
      // The reference = the weights the run started from, stored once beside the checkpoints.
      let ref = await ckpts.get(REFERENCE);
      if (!ref) {
        if (resumeFrom) throw new Error(`run ${run.name}: its frozen reference weights are missing from this browser's storage; start a new run`);
        ref = encodeCheckpoint(init ?? { ...freshStart(run), params: initParams(run.model, t.seed) });
        await ckpts.put(REFERENCE, ref);
      }
      const refParams = decodeCheckpoint(ref).params;
      pairTrainer = new PairTrainer(ctx.device, run.model, t, data.pairs, data.evalPairs, { kind: run.spec.method as 'dpo' | 'ipo', beta: run.spec.pairBeta! }, refParams);
      if (resumeFrom) pairTrainer.restore(resumeFrom);
    } else {
      const needsTeacher = (run.spec.method === 'kd' && run.spec.kdSource === 'dense') || run.spec.method === 'on-policy';
      if (needsTeacher) {
        progress('loading the teacher onto the GPU');
        teacher = await runTeacherModel(ctx, run, t.batchSize, t.seqLen, progress);
      }
      const signal = teacherFor(run, data, teacher, run.tokenizerVocab);
      let studentGen: Generator | undefined;
      const onPolicy = run.spec.method === 'on-policy' ? run.spec.onPolicy! : undefined;
      progress('building the student');
      trainer = await Trainer.create({
        device: ctx.device, model: run.model, train: t, rows: data.rows, evalRows: data.evalRows, padEval: true,
        // Repeated non-finite steps roll back to this run's last checkpoint.
        store: ckpts, checkpointName: CKPT,
        ...(signal ? { teacherFor: signal } : {}),
        ...(run.spec.kdSource === 'store-topk' ? { teacherTopK: data.topk!.k } : {}),
        ...(onPolicy && teacher ? {
          batchFor: async (step: number, micro: number): Promise<TrainBatch | null> => {
            if (!isOnPolicyStep(step * 64 + micro, onPolicy.lambda, t.seed)) return null;
            studentGen ??= new Generator(ctx.device, run.model, trainer!.gpu.params, t.seqLen + 1);
            const rng = new Rng((t.seed * 7919 + step * 131 + micro) >>> 0);
            const maxNew = Math.min(onPolicy.maxNewTokens, t.seqLen - 1);
            const prompts = Array.from({ length: t.batchSize }, () => {
              const p = data.prompts[rng.int(data.prompts.length)]!;
              return p.slice(-(t.seqLen + 1 - maxNew));
            });
            const { batch } = await onPolicyBatch(studentGen, teacher!, prompts, t.seqLen, { maxNewTokens: maxNew, temperature: onPolicy.temperature, seed: rng.nextU32(), stopTokens: [eos] });
            return { ...batch, teacherLogits: alignTeacherLogits(batch.teacherLogits!, batch.ids.length, teacher!.config.vocabSize, run.model.vocabSize, run.tokenizerVocab) };
          },
        } : {}),
        log: (e: TrainLog) => { if (e.kind === 'event') void log(e); },
      });
      if (resumeFrom) trainer.restore(resumeFrom);
      else if (init) trainer.restore(init);
      if (onPolicy && data.prompts.length === 0) throw new Error('on-policy: the training records have no prompts to sample from');
      gen = studentGen;
    }
    const step = () => (trainer ?? pairTrainer)!.step;
    const save = async () => {
      const snap = trainer ? await trainer.snapshot() : await pairTrainer!.snapshot();
      await ckpts.put(CKPT, encodeCheckpoint(snap));
      const updated = await ctx.runs.updateRun(run.id, { checkpointStep: snap.step, step: snap.step });
      hooks.emit({ kind: 'status', run: stripped(updated) });
    };
    const evaluate = async () => {
      if (trainer) {
        const e = await trainer.evaluate();
        if (e) { await log(e); await ctx.runs.updateRun(run.id, { lastEval: e }); }
      } else {
        const e = await pairTrainer!.evaluate();
        if (e) {
          const ev = { kind: 'eval' as const, step: step(), loss: e.loss, ppl: Math.exp(e.loss), pairAccuracy: e.accuracy, margin: e.margin };
          await log(ev);
          await ctx.runs.updateRun(run.id, { lastEval: ev });
        }
      }
    };
    const sampleGen = () => (gen ??= trainer ? new Generator(ctx.device, run.model, trainer.gpu.params) : new Generator(ctx.device, run.model, pairTrainer!.policy.params));
    await log({ kind: 'event', step: step(), message: resumeFrom ? `resumed from the checkpoint of step ${resumeFrom.step}` : init ? `started from run ${run.spec.initFrom}` : 'started from random weights' });
    if (!resumeFrom && run.spec.sampleEvery > 0) await log(await samples(sampleGen(), run, tok, eos, 0));
    while (step() < t.steps) {
      if (hooks.pauseRequested()) {
        await save();
        await log({ kind: 'event', step: step(), message: `paused at step ${step()} (checkpoint saved)` });
        return 'paused';
      }
      const s: RunStepLog = trainer ? await trainer.trainStep() : await pairTrainer!.trainStep();
      times.push(s.ms);
      s.etaMs = eta(times, t.steps - s.step);
      if (run.spec.method === 'on-policy') s.onPolicy = isOnPolicyStep(s.step * 64, run.spec.onPolicy!.lambda, t.seed);
      await log(s);
      if (t.evalEvery > 0 && s.step % t.evalEvery === 0) await evaluate();
      if (run.spec.sampleEvery > 0 && s.step % run.spec.sampleEvery === 0) await log(await samples(sampleGen(), run, tok, eos, s.step));
      if (t.checkpointEvery > 0 && s.step % t.checkpointEvery === 0) await save();
      else if (s.step % 10 === 0) await ctx.runs.updateRun(run.id, { step: s.step });
    }
    if (t.evalEvery === 0 || step() % t.evalEvery !== 0) await evaluate();
    await save();
    return 'done';
  } finally {
    gen?.destroy();
    trainer?.destroy();
    pairTrainer?.destroy();
    teacher?.destroy();
  }
}

/** A step-0 checkpoint of the run's config with zero AdamW moments (params filled in by the caller). */
function freshStart(run: StoredRun): Omit<Checkpoint, 'params'> {
  const P = paramLayout(run.model).slabFloats;
  return { model: run.model, train: run.train, step: 0, adamStep: 0, cursor: { epoch: 0, row: 0 }, m: new Float32Array(P), v: new Float32Array(P) };
}

/** What a new run starts from: the weights of run spec.initFrom (fresh moments), or undefined (random init). */
async function initialWeights(ctx: RunContext, run: StoredRun): Promise<Checkpoint | undefined> {
  if (!run.spec.initFrom) return undefined;
  const bytes = await ctx.runs.checkpoints(run.spec.initFrom).get(CKPT);
  if (!bytes) throw new Error(`run ${run.name} starts from run ${run.spec.initFrom}, which has no checkpoint (deleted?)`);
  const c = decodeCheckpoint(bytes);
  if (JSON.stringify(c.model) !== JSON.stringify(run.model)) throw new Error(`run ${run.name}: the run it starts from has another model config`);
  return { ...freshStart(run), params: c.params };
}

/** The page's view of a stored run (without the snapshot ids and tokenizer). */
export function stripped(r: StoredRun): RunInfo {
  const { snapshot: _s, tokenizer: _t, ...info } = r;
  return info;
}
