// One run's training loop in the engine: the data rebuilt from the run's snapshot, the teacher signal its method
// needs (stored top-k rows; the teacher model's dense logits; on-policy batches of the student's own samples
// scored by the teacher), the method's trainer (TRAINERS by METHODS[m].trainer: Trainer for token batches,
// PairTrainer for DPO/IPO, both StepTrainers) restored from the run's last checkpoint, then steps until done or paused: every step logged (IndexedDB and the page), held-out
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
import type { TeacherSignal } from '../../train/evaluate.ts';
import { isOnPolicyStep, onPolicyBatch } from '../../train/onpolicy.ts';
import { PairTrainer } from '../../train/pair-trainer.ts';
import { RewardTrainer, rewardRows } from '../../train/reward-trainer.ts';
import { RlTrainer } from '../../train/rl-trainer.ts';
import type { RewardFn } from '../../train/rl.ts';
import { judgeReward, type JudgeFn } from './judge-reward.ts';
import { GpuRewardModel } from '../../model/gpu-reward.ts';
import { CE_ONLY, type StepTrainer, type TrainLog } from '../../train/step-trainer.ts';
import { Trainer } from '../../train/trainer.ts';
import { mixTeacherLogits } from '../../train/teacher-mixture.ts';
import { alignTeacherLogits } from '../../train/vocab-align.ts';
import { Rng } from '../../util/rng.ts';
import { loadRunData, teacherTopK, type RunData } from './data.ts';
import { SAMPLE_NEW_TOKENS, sampleLength } from './estimate.ts';
import { answerText, EOS_TOKEN, promptIds, recordFormat, stopIds } from './format.ts';
import { methodOf, teachersOf, type TrainerKind } from './methods.ts';
import { loadModelFolder, loadTeacherModel } from './plan.ts';
import { baseTensorsOf, importHfMeta } from '../../export/import-lazy.ts';
import type { BaseSource } from '../../model/base-layout.ts';
import { readModelFolder } from '../model-fetch.ts';
import type { RunStore, StoredRun } from './run-store.ts';
import type { EngineModel, ModelFolderSource, RunEvent, RunInfo, RunLog, RunStepLog } from './types.ts';

/** The GPU could not allocate what the run needs. */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

/** Checkpoint blob names within a run. */
export const CKPT = 'latest';
export const REFERENCE = 'reference';
/** RL against a reward-model run: the step of that run's checkpoint the RL run started with. */
export const REWARD_STEP = 'reward-model-step';

export interface RunContext {
  device: GPUDevice;
  runs: RunStore;
  data: DistillStore;
  /** The run's teacher or pretrained student files when they were picked (stored with the run). */
  folderFiles: (run: StoredRun, role: FolderRole) => Promise<Record<string, Uint8Array> | undefined>;
}

/** A run's model folders: its teacher, its pretrained student, and teacher i ≥ 1 of its teacher mixture
 *  (spec.mixture.teachers[i − 1]). */
export type FolderRole = 'teacher' | 'student' | `teacher-${number}`;

/** The folder role of teacher i of teachersOf(spec): 'teacher' for spec.teacher, 'teacher-i' for the mixture's. */
export const teacherRole = (i: number): FolderRole => (i === 0 ? 'teacher' : `teacher-${i}`);

/** The model a folder role names in a spec, if it has one. */
export function modelOfRole(spec: StoredRun['spec'], role: FolderRole): EngineModel | undefined {
  if (role === 'teacher') return spec.teacher;
  if (role === 'student') return spec.pretrained;
  const i = Number(role.slice('teacher-'.length));
  return Number.isInteger(i) && i >= 1 ? spec.mixture?.teachers[i - 1] : undefined;
}

/** A model folder of the run as the engine reads it: picked files stored with the run, else its source. */
export async function runFolder(ctx: RunContext, run: StoredRun, role: FolderRole): Promise<ModelFolderSource | undefined> {
  const m = modelOfRole(run.spec, role);
  if (!m) return undefined;
  const files = await ctx.folderFiles(run, role);
  return files ? { files } : m.source;
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

export type LoadedRunData = RunData & { tok: TextTokenizer; eos: number };

/** The run's data as it was at creation (same records, same order, same split, its own tokenizer). */
export function runData(ctx: RunContext, run: StoredRun): Promise<LoadedRunData> {
  return loadRunData(ctx.data, { spec: run.spec, snapshot: run.snapshot, T: run.train.seqLen }, () => runTokenizer(run));
}

/** The teacher model of a run on the GPU, planned for B × T (forward only), or undefined when it has none; `index`:
 *  which teacher of teachersOf(spec) (0: spec.teacher, i ≥ 1: the mixture's i-th other teacher). */
export async function runTeacherModel(ctx: RunContext, run: StoredRun, B: number, T: number, onProgress?: (m: string) => void, index = 0): Promise<GpuModel | undefined> {
  const role = teacherRole(index);
  const source = await runFolder(ctx, run, role);
  if (!source) return undefined;
  const imp = await loadTeacherModel(source, modelOfRole(run.spec, role)!.label, onProgress);
  const g = new GpuModel(ctx.device, imp.config, B, T, CE_ONLY);
  g.uploadParams(imp.params);
  return g;
}

/** A run's teachers on the GPU for token-level KD: spec.teacher alone (weight 1), or every teacher of its mixture
 *  (spec.teacher first) with its normalised weight. */
export interface RunTeachers {
  models: GpuModel[];
  labels: string[];
  weights: number[];
}

/** Every teacher of a run on the GPU (B × T, forward only), or undefined when it has none. */
export async function runTeacherModels(ctx: RunContext, run: StoredRun, B: number, T: number, onProgress?: (m: string) => void): Promise<RunTeachers | undefined> {
  const { teachers, weights } = teachersOf(run.spec);
  const models: GpuModel[] = [];
  try {
    for (const [i, t] of teachers.entries()) {
      if (teachers.length > 1) onProgress?.(`loading teacher ${i + 1} of ${teachers.length} (${t.label}) onto the GPU`);
      const g = await runTeacherModel(ctx, run, B, T, onProgress, i);
      if (!g) throw new Error(`run ${run.name}: its teacher ${t.label} has no folder to read`);
      models.push(g);
    }
  } catch (e) {
    for (const g of models) g.destroy();
    throw e;
  }
  return models.length ? { models, labels: teachers.map((t) => t.label), weights } : undefined;
}

/** Dense teacher logits for a batch, laid out at the student's vocabulary. */
export async function denseSignal(teacher: GpuModel, b: Pick<Batch, 'ids' | 'labels' | 'weights'>, V: number, realVocab: number): Promise<TeacherSignal> {
  teacher.setBatch({ ids: b.ids, labels: b.labels, weights: b.weights.some((w) => w > 0) ? b.weights : new Float32Array(b.weights.length).fill(1) });
  const logits = await teacher.logits();
  return { teacherLogits: alignTeacherLogits(logits, b.ids.length, teacher.config.vocabSize, V, realVocab) };
}

/** Each teacher's dense logits for a batch at the student's width V; a teacher of weight 0 is not run (undefined)
 *  unless `all`. */
export async function teachersLogits(t: RunTeachers, b: Pick<Batch, 'ids' | 'labels' | 'weights'>, V: number, realVocab: number, all = false): Promise<(Float32Array | undefined)[]> {
  const out: (Float32Array | undefined)[] = [];
  for (const [i, g] of t.models.entries()) out.push(all || t.weights[i]! > 0 ? (await denseSignal(g, b, V, realVocab)).teacherLogits : undefined);
  return out;
}

/** A batch's dense signal from a teacher mixture: the logits whose softmax at τ is the teachers' weighted mixture
 *  (src/train/teacher-mixture.ts); τ is the loss's temperature in training, 1 in evaluation (KL and agreement). */
export async function mixtureSignal(t: RunTeachers, b: Pick<Batch, 'ids' | 'labels' | 'weights'>, V: number, realVocab: number, temperature: number): Promise<TeacherSignal> {
  const logits = await teachersLogits(t, b, V, realVocab);
  return { teacherLogits: mixTeacherLogits({ logits, weights: t.weights, N: b.ids.length, V, temperature, realVocab }) };
}

/** A batch's teacher signal for the run's method: stored top-k rows, the teacher model's dense logits (a mixture's,
 *  mixed), or none. */
export function teacherFor(run: StoredRun, data: RunData, teachers: RunTeachers | undefined): ((b: Batch, split: 'train' | 'eval') => Promise<TeacherSignal>) | undefined {
  const V = run.model.vocabSize;
  const input = methodOf(run.spec).teacherInput(run.spec);
  if (input === 'topk') {
    const table = data.topk!;
    // Training batches index the training rows, evaluation batches the held-out ones (both carry aux).
    return async (b, split) => teacherTopK(b, split === 'train' ? data.rows : data.evalRows, table, V, run.train.temperature);
  }
  if (input === 'dense' && teachers?.models.length === 1) {
    const teacher = teachers.models[0]!;
    return (b) => denseSignal(teacher, b, V, run.tokenizerVocab);
  }
  if (input === 'dense' && teachers) return (b, split) => mixtureSignal(teachers, b, V, run.tokenizerVocab, split === 'train' ? run.train.temperature : 1);
  return undefined;
}

export interface LoopHooks {
  emit: (e: RunEvent) => void;
  /** True once the page asked the run to stop. */
  pauseRequested: () => boolean;
  /** RL judged by the teacher: the page's judge (its active teacher; the API key stays in the page). */
  judge?: JudgeFn;
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
    const maxNewTokens = Math.max(1, Math.min(SAMPLE_NEW_TOKENS, gen.maxLen - ids.length));
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

/** What a method's trainer is built from: the run, its data, where it starts, and how it reports. */
interface TrainerSetup {
  ctx: RunContext;
  run: StoredRun;
  data: LoadedRunData;
  /** The checkpoint a resume starts from, or the weights of the run it starts from (fresh moments). */
  resumeFrom?: Checkpoint;
  init?: Checkpoint;
  /** LoRA (every method): the frozen base, tensor by tensor from the pretrained folder. */
  base?: BaseSource;
  progress: (m: string) => void;
  log: (e: TrainLog) => void;
  judge?: JudgeFn;
}

interface BuiltTrainer {
  trainer: StepTrainer;
  /** GPU objects the trainer uses (a teacher model, a generator), destroyed with it. */
  owned: { destroy(): void }[];
  /** What the method adds to each step's log (on-policy: whether the step trained on the student's samples). */
  annotate?: (s: RunStepLog) => void;
}

/** Token batches (SFT, KD, on-policy): the teacher model on the GPU when the method runs it, its signal per batch,
 *  on-policy micro-batches of the student's own samples scored by the teacher. */
async function tokenTrainer({ ctx, run, data, resumeFrom, init, base, progress, log }: TrainerSetup): Promise<BuiltTrainer> {
  const t = run.train, owned: BuiltTrainer['owned'] = [];
  let teachers: RunTeachers | undefined;
  if (methodOf(run.spec).runsTeacher(run.spec)) {
    progress(run.spec.mixture ? 'loading the teachers onto the GPU' : 'loading the teacher onto the GPU');
    teachers = await runTeacherModels(ctx, run, t.batchSize, t.seqLen, progress);
    if (teachers) owned.push(...teachers.models);
  }
  // On-policy: the first teacher's scores of the samples come with the batch (onPolicyBatch); a mixture's other
  // teachers score them in batchFor.
  const teacher = teachers?.models[0];
  const signal = teacherFor(run, data, teachers);
  const onPolicy = run.spec.method === 'on-policy' ? run.spec.onPolicy : undefined;
  if (onPolicy && data.prompts.length === 0) throw new Error('on-policy: the training records have no prompts to sample from');
  let studentGen: Generator | undefined;
  progress('building the student');
  const trainer: Trainer = await Trainer.create({
    device: ctx.device, model: run.model, train: t, rows: data.rows, evalRows: data.evalRows, padEval: true,
    // Repeated non-finite steps roll back to this run's last checkpoint.
    store: ctx.runs.checkpoints(run.id), checkpointName: CKPT,
    ...(signal ? { teacherFor: signal } : {}),
    ...(data.topk ? { teacherTopK: data.topk.k } : {}),
    ...(data.topk?.uld ? { teacherUld: data.topk.k } : {}),
    ...(onPolicy && teacher ? {
      batchFor: async (step: number, micro: number): Promise<TrainBatch | null> => {
        if (!isOnPolicyStep(step * 64 + micro, onPolicy.lambda, t.seed)) return null;
        if (!studentGen) owned.push((studentGen = new Generator(ctx.device, run.model, trainer.params, t.seqLen + 1, trainer.adapters)));
        const rng = new Rng((t.seed * 7919 + step * 131 + micro) >>> 0);
        const maxNew = Math.min(onPolicy.maxNewTokens, t.seqLen - 1);
        const prompts = Array.from({ length: t.batchSize }, () => data.prompts[rng.int(data.prompts.length)]!.slice(-(t.seqLen + 1 - maxNew)));
        const { batch } = await onPolicyBatch(studentGen, teacher, prompts, t.seqLen, { maxNewTokens: maxNew, temperature: onPolicy.temperature, seed: rng.nextU32(), stopTokens: [data.eos] });
        const V = run.model.vocabSize, Vr = run.tokenizerVocab;
        const first = alignTeacherLogits(batch.teacherLogits!, batch.ids.length, teacher.config.vocabSize, V, Vr);
        if (teachers!.models.length === 1) return { ...batch, teacherLogits: first };
        // A mixture: the first teacher scored the samples already; the others score them now, and the logits mix.
        const others = await teachersLogits({ models: teachers!.models.slice(1), labels: teachers!.labels.slice(1), weights: teachers!.weights.slice(1) }, batch, V, Vr);
        const logits = [teachers!.weights[0]! > 0 ? first : undefined, ...others];
        return { ...batch, teacherLogits: mixTeacherLogits({ logits, weights: teachers!.weights, N: batch.ids.length, V, temperature: t.temperature, realVocab: Vr }) };
      },
    } : {}),
    log: (e) => { if (e.kind === 'event') log(e); },
    // LoRA: the frozen base; only a checkpoint (adapters) is restored.
    ...(t.lora ? { base: base! } : {}),
  });
  if (t.lora ? resumeFrom : resumeFrom ?? init) trainer.restore((resumeFrom ?? init)!);
  return {
    trainer, owned,
    ...(onPolicy ? { annotate: (s: RunStepLog) => { s.onPolicy = isOnPolicyStep(s.step * 64, onPolicy.lambda, t.seed); } } : {}),
  };
}

/** Preference pairs (DPO, IPO): the policy and its frozen reference. Full training: the weights the run started from,
 *  stored once beside the checkpoints (parameters only: a reference has no moments). LoRA: the reference is the
 *  frozen base with adapters off, read again from the pretrained folder like every LoRA run's base (nothing stored). */
async function pairTrainer({ ctx, run, data, resumeFrom, init, base, progress }: TrainerSetup): Promise<BuiltTrainer> {
  if (run.spec.method !== 'dpo' && run.spec.method !== 'ipo') throw new Error(`run ${run.name}: ${run.spec.method} does not train on pairs`);
  progress('building the policy and its frozen reference');
  const start = base ?? await storedReference(ctx, run, init, !!resumeFrom);
  const trainer = new PairTrainer(ctx.device, run.model, run.train, data.pairs, data.evalPairs, { kind: run.spec.method, beta: run.spec.pairBeta }, start);
  if (resumeFrom) trainer.restore(resumeFrom);
  return { trainer, owned: [] };
}

/** A full DPO/IPO/RL run's frozen reference: the stored start (written on the first start from `init`, or random
 *  weights from the run's seed), its parameters only. */
async function storedReference(ctx: RunContext, run: StoredRun, init: Checkpoint | undefined, resuming: boolean): Promise<Float32Array> {
  const have = await readReference(ctx, run);
  if (have) return have;
  if (resuming) throw new Error(`run ${run.name}: its frozen reference weights are missing from this browser's storage; start a new run`);
  const empty = new Float32Array(0);
  const ref = encodeCheckpoint({ ...freshStart(run), m: empty, v: empty, params: init?.params ?? initParams(run.model, run.train.seed) });
  await ctx.runs.checkpoints(run.id).put(REFERENCE, ref);
  return decodeCheckpoint(ref).params;
}

/** A full DPO/IPO run's stored reference weights, if stored. */
export async function readReference(ctx: RunContext, run: StoredRun): Promise<Float32Array | undefined> {
  const bytes = await ctx.runs.checkpoints(run.id).get(REFERENCE);
  return bytes && decodeCheckpoint(bytes, `run ${run.name} reference`).params;
}

/** A reward model on the run's pairs: the trunk starts from the run's start (pretrained, another run, or random; under
 *  LoRA the frozen base), the score head from the seed. */
async function rewardTrainer({ ctx, run, data, resumeFrom, init, base, progress }: TrainerSetup): Promise<BuiltTrainer> {
  if (run.spec.method !== 'reward') throw new Error(`run ${run.name}: ${run.spec.method} does not train a reward model`);
  progress('building the reward model');
  const start = base ?? init?.params ?? initParams(run.model, run.train.seed);
  const trainer = new RewardTrainer(ctx.device, run.model, run.train, data.pairs, data.evalPairs, start, run.spec.rewardMargin ?? 0, data.eos);
  try {
    if (resumeFrom) trainer.restore(resumeFrom);
  } catch (e) {
    trainer.destroy();
    throw e;
  }
  return { trainer, owned: [] };
}

/** RL against the reward model of run spec.rewardRun (its latest checkpoint, on this GPU beside the policy and its
 *  reference), or the teacher as a judge (the page's, hooks.judge; every grade stored: judge-reward.ts). Full
 *  training: the reference is the start, stored once beside the checkpoints (as DPO's). */
async function rlTrainer({ ctx, run, data, resumeFrom, init, base, progress, judge }: TrainerSetup): Promise<BuiltTrainer> {
  const spec = run.spec;
  if (spec.method !== 'rl') throw new Error(`run ${run.name}: ${spec.method} is not RL`);
  const owned: BuiltTrainer['owned'] = [];
  try {
    let reward: RewardFn;
    const format = recordFormat(spec), stops = stopIds(format, data.tok, data.eos);
    if (spec.judge) {
      if (!judge) throw new Error(`run ${run.name} is judged by the teacher ${spec.judge.label}, and this page has no judge to ask: load that teacher in step 1, then press Resume`);
      reward = judgeReward({
        judge, store: ctx.runs.checkpoints(run.id), scoreMax: spec.judge.scoreMax ?? 10, G: spec.rl.G,
        text: (p, c) => ({ prompt: data.tok.decode([...p]), response: answerText(data.tok.decode(c.filter((x) => !stops.includes(x))), format) }),
      });
    } else {
      progress('loading the reward model onto the GPU');
      const rm = await runRewardModel(ctx, run, spec.rewardRun ?? '', run.train.batchSize * spec.rl.G, progress, !resumeFrom);
      owned.push(rm);
      reward = async (prompts, completions) => {
        const { ids, lengths } = rewardRows(completions.map((c, i) => [...prompts[i]!, ...c]), rm.T, data.eos);
        return Array.from(await rm.scoreRows(ids, lengths));
      };
    }
    progress('building the policy and its frozen reference');
    const start = base ?? await storedReference(ctx, run, init, !!resumeFrom);
    const trainer = new RlTrainer({
      device: ctx.device, model: run.model, train: run.train, rl: spec.rl, prompts: data.prompts, evalPrompts: data.evalPrompts,
      evalRows: data.evalRows, init: start, reward, stops,
    });
    owned.push(trainer);
    if (resumeFrom) trainer.restore(resumeFrom);
    owned.pop();
    return { trainer, owned };
  } catch (e) {
    for (const o of owned) o.destroy();
    throw e;
  }
}

/** The reward model trained by run `id` (its latest checkpoint) on the GPU, scoring rows in batches of ~`rows`; it
 *  must read the RL run's tokens (the same tokenizer). */
export async function runRewardModel(ctx: RunContext, run: StoredRun, id: string, rows: number, progress: (m: string) => void, first = false): Promise<GpuRewardModel> {
  const rmRun = await ctx.runs.getRun(id).catch(() => undefined);
  if (!rmRun) throw new Error(`run ${run.name}: its reward model run ${id} is gone (deleted?): train a reward model and start a new RL run`);
  if (rmRun.spec.method !== 'reward') throw new Error(`run ${run.name}: run ${rmRun.name} is not a reward model (${rmRun.spec.method}): pick a run of the method "Reward model"`);
  if (JSON.stringify(rmRun.tokenizer) !== JSON.stringify(run.tokenizer)) throw new Error(`run ${run.name}: the reward model ${rmRun.name} reads another tokenizer than this run's student: train the reward model from the same student (the same pretrained model or start run)`);
  const bytes = await ctx.runs.checkpoints(rmRun.id).get(CKPT);
  if (!bytes) throw new Error(`run ${run.name}: the reward model ${rmRun.name} has no checkpoint yet: train it first`);
  const c = decodeCheckpoint(bytes, `reward model ${rmRun.name} checkpoint`);
  // The rewards must not change mid-run: the step of the reward model an RL run started with is kept beside its
  // checkpoints, and a resume against a reward model trained further since is refused.
  const pinned = await ctx.runs.checkpoints(run.id).get(REWARD_STEP);
  const was = pinned && !first ? Number(new TextDecoder().decode(pinned)) : undefined;
  if (was !== undefined && was !== c.step) throw new Error(`run ${run.name}: its reward model ${rmRun.name} was at step ${was} when this run started and is at step ${c.step} now: its rewards would change mid-run. Start a new RL run against it`);
  if (was === undefined) await ctx.runs.checkpoints(run.id).put(REWARD_STEP, new TextEncoder().encode(String(c.step)));
  if (!c.tail) throw new Error(`run ${run.name}: the checkpoint of ${rmRun.name} has no score head`);
  const t = rmRun.train, opt = { weightDecay: 0, clipNorm: 0 };
  const rm = new GpuRewardModel(ctx.device, rmRun.model, Math.max(1, Math.ceil(rows / 2)), t.seqLen, opt, t.lora ? { lora: { ...t.lora, dropout: 0 } } : {});
  try {
    if (t.lora) {
      rm.gpu.uploadBase(await loraBase(ctx, rmRun, progress));
      rm.gpu.uploadAdapters(c.params);
    } else rm.gpu.uploadParams(c.params);
    rm.uploadHead(c.tail);
    return rm;
  } catch (e) {
    rm.destroy();
    throw e;
  }
}

/** The trainer of each kind of method (METHODS[m].trainer). */
const TRAINERS: Record<TrainerKind, (s: TrainerSetup) => Promise<BuiltTrainer>> = { tokens: tokenTrainer, pairs: pairTrainer, reward: rewardTrainer, rl: rlTrainer };

/** Trains `run` from its checkpoint until done or paused. Returns the final status. */
export async function trainLoop(ctx: RunContext, run: StoredRun, hooks: LoopHooks): Promise<'done' | 'paused'> {
  const progress = (message: string) => hooks.emit({ kind: 'progress', message });
  progress('reading the run’s data');
  const data = await runData(ctx, run);
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
  // A LoRA run's checkpoints hold its adapters: the frozen base is the pretrained model it started from, read again
  // tensor by tensor (every method: DPO/IPO's reference is that base with adapters off).
  const init = resumeFrom || t.lora ? undefined : await initialWeights(ctx, run, progress);
  const base = t.lora ? await loraBase(ctx, run, progress) : undefined;
  const times: number[] = [];
  let built: BuiltTrainer | undefined, gen: Generator | undefined;
  try {
    // Allocation is where a run that does not fit fails: an out-of-memory error says so (the checkpoint is kept).
    ctx.device.pushErrorScope('out-of-memory');
    try {
      built = await TRAINERS[methodOf(run.spec).trainer]({ ctx, run, data, ...(resumeFrom ? { resumeFrom } : {}), ...(init ? { init } : {}), ...(base ? { base } : {}), ...(hooks.judge ? { judge: hooks.judge } : {}), progress, log: (e) => void log(e) });
    } finally {
      const oom = await ctx.device.popErrorScope();
      if (oom) throw new OutOfMemoryError(`the GPU ran out of memory building run ${run.name} (${oom.message}): lower the batch size or sequence length, or pick a smaller model; its last checkpoint is kept`);
    }
    const { trainer } = built;
    const save = async () => {
      const snap = await trainer.snapshot();
      await ckpts.put(CKPT, encodeCheckpoint(snap));
      const updated = await ctx.runs.updateRun(run.id, { checkpointStep: snap.step, step: snap.step });
      hooks.emit({ kind: 'status', run: stripped(updated) });
    };
    const evaluate = async () => {
      const e = await trainer.evaluate();
      if (e) { await log(e); await ctx.runs.updateRun(run.id, { lastEval: e }); }
    };
    const sample = async (step: number) => {
      gen ??= new Generator(ctx.device, run.model, trainer.params, sampleLength(run.model, t.seqLen), trainer.adapters);
      await log(await samples(gen, run, data.tok, data.eos, step));
    };
    await log(resumeFrom
      ? { kind: 'event', step: trainer.step, code: 'resumed', level: 'info', checkpointStep: resumeFrom.step, message: `resumed from the checkpoint of step ${resumeFrom.step}` }
      : { kind: 'event', step: trainer.step, code: 'started', level: 'info', message: run.spec.pretrained ? `started from the pretrained model ${run.spec.pretrained.label}` : init ? `started from run ${run.spec.initFrom}` : 'started from random weights' });
    const sampling = methodOf(run.spec).generates && run.spec.sampleEvery > 0 && run.spec.samplePrompts.length > 0;
    if (!resumeFrom && sampling) await sample(0);
    while (trainer.step < t.steps) {
      if (hooks.pauseRequested()) {
        await save();
        await log({ kind: 'event', step: trainer.step, code: 'paused', level: 'info', message: `paused at step ${trainer.step} (checkpoint saved)` });
        return 'paused';
      }
      const s: RunStepLog = await trainer.trainStep();
      times.push(s.ms);
      s.etaMs = eta(times, t.steps - s.step);
      built.annotate?.(s);
      await log(s);
      if (t.evalEvery > 0 && s.step % t.evalEvery === 0) await evaluate();
      if (sampling && s.step % run.spec.sampleEvery === 0) await sample(s.step);
      if (t.checkpointEvery > 0 && s.step % t.checkpointEvery === 0) await save();
      else if (s.step % 10 === 0) await ctx.runs.updateRun(run.id, { step: s.step });
    }
    if (t.evalEvery === 0 || trainer.step % t.evalEvery !== 0) await evaluate();
    await save();
    return 'done';
  } finally {
    gen?.destroy();
    built?.trainer.destroy();
    for (const o of built?.owned ?? []) o.destroy();
  }
}

/** A step-0 checkpoint of the run's config with zero AdamW moments (params filled in by the caller). */
function freshStart(run: StoredRun): Omit<Checkpoint, 'params'> {
  const P = paramLayout(run.model).slabFloats;
  return { model: run.model, train: run.train, step: 0, adamStep: 0, cursor: { epoch: 0, row: 0 }, m: new Float32Array(P), v: new Float32Array(P) };
}

/** What a new run starts from: a pretrained model's weights or those of run spec.initFrom (fresh moments), or
 *  undefined (random init). */
export async function initialWeights(ctx: RunContext, run: StoredRun, progress: (m: string) => void): Promise<Checkpoint | undefined> {
  const pretrained = await runFolder(ctx, run, 'student');
  if (pretrained) {
    const imp = await loadModelFolder(pretrained, run.spec.pretrained!.label, 'student', progress);
    if (JSON.stringify(imp.config) !== JSON.stringify(run.model)) throw new Error(`run ${run.name}: the pretrained model ${run.spec.pretrained!.label} is not the one the run was created with (its config.json changed); start a new run`);
    return { ...freshStart(run), params: imp.params };
  }
  if (!run.spec.initFrom) return undefined;
  const bytes = await ctx.runs.checkpoints(run.spec.initFrom).get(CKPT);
  if (!bytes) throw new Error(`run ${run.name} starts from run ${run.spec.initFrom}, which has no checkpoint (deleted?)`);
  const c = decodeCheckpoint(bytes);
  if (JSON.stringify(c.model) !== JSON.stringify(run.model)) throw new Error(`run ${run.name}: the run it starts from has another model config`);
  return { ...freshStart(run), params: c.params };
}

/**
 * The frozen base of a LoRA run: its pretrained folder (the run's stored files, or the URL/Hub source) read tensor by
 * tensor in the LoRA config's format (baseTensorsOf: 16-bit weights as their words), never the model whole in f32.
 */
export async function loraBase(ctx: RunContext, run: StoredRun, progress: (m: string) => void): Promise<BaseSource> {
  const lora = run.train.lora, src = await runFolder(ctx, run, 'student');
  if (!lora || !src) throw new Error(`run ${run.name}: LoRA adapts the pretrained model a run starts from, and this run has ${lora ? 'none' : 'no LoRA'}`);
  const label = run.spec.pretrained!.label;
  const files = await readModelFolder(src, progress);
  if (JSON.stringify(importHfMeta(files, `student ${label}`).config) !== JSON.stringify(run.model)) {
    throw new Error(`run ${run.name}: the pretrained model ${label} is not the one the run was created with (its config.json changed); start a new run`);
  }
  return () => baseTensorsOf(files, run.model, lora.base, `student ${label}`);
}

/** The page's view of a stored run (without the snapshot ids and tokenizer). */
export function stripped(r: StoredRun): RunInfo {
  const { snapshot: _s, tokenizer: _t, ...info } = r;
  return info;
}
