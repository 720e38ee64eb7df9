// From what the Train stage asks (RunSpec) to what a run trains with, resolved once (resolveRun): the spec's shape
// checked with errors that say what to change, its METHODS entry (the TrainConfig the method implies and the checks
// of its settings), the run it starts from, the teacher model read from its folder (cached: one teacher at a
// time), the student's tokenizer source and ModelConfig (a preset at the tokenizer's vocabulary), the chat
// template, what the dataset holds for the method, token alignment with the teacher; then the plan (planOf) —
// parameter count, memory against the adapter's limits — before anything is stored. Creation builds from the
// same resolved run (runs.ts), so planning and creation cannot disagree.
import { importHfFolder, type ImportedModel } from '../../export/import.ts';
import { importHfMeta, type ImportedMeta } from '../../export/import-lazy.ts';
import { paddedVocab, presetConfig, PRESETS, realVocab, type ModelConfig } from '../../model/config.ts';
import { loraLayout } from '../../model/lora.ts';
import { countParams } from '../../model/params.ts';
import type { GpuContext } from '../../platform/gpu.ts';
import type { DatasetCounts } from '../../store/schema.ts';
import { checkTokenAlignment } from '../../tokenizer/align.ts';
import type { TextTokenizer } from '../../tokenizer/types.ts';
import type { TrainConfig } from '../../train/config.ts';
import { readModelFolder } from '../model-fetch.ts';
import { estimateMemory, fitAdvice, MEMORY_BUDGET } from './estimate.ts';
import type { CrossShare } from './cross-data.ts';
import { methodOf, type MethodEntry } from './methods.ts';
import type { StoredRun } from './run-store.ts';
import { RUN_FORMATS, type ModelFolderSource, type RunPlan, type RunSpec } from './types.ts';

/** Head dims the attention kernels are built for. */
export const HEAD_DIMS = [8, 16, 32, 64, 128];

function fail(msg: string): never {
  throw new Error(`run settings: ${msg}`);
}

/** Checks the shape of a spec (what needs nothing but the spec itself); the method's own settings are checked by
 *  its METHODS entry and reported as plan problems. */
export function checkSpec(spec: RunSpec): void {
  if (typeof spec !== 'object' || spec === null) fail('expected an object');
  if (typeof spec.name !== 'string' || spec.name.trim() === '') fail('give the run a name');
  if (typeof spec.datasetId !== 'string' || spec.datasetId === '') fail('pick a dataset to train on');
  methodOf(spec);
  if (!(RUN_FORMATS as readonly string[]).includes(spec.format)) fail(`format must be one of ${RUN_FORMATS.join(', ')}, got ${JSON.stringify(spec.format)}`);
  if (spec.pretrained && spec.initFrom) fail('a run starts from a pretrained model or from another run, not both');
  const fresh = !spec.initFrom && !spec.pretrained;
  if (fresh && !PRESETS[spec.preset]) fail(`unknown student preset '${spec.preset}' (have: ${Object.keys(PRESETS).join(', ')})`);
  const tk = spec.tokenizer;
  if (fresh) {
    if (tk?.kind === 'bpe') {
      if (!Number.isInteger(tk.vocabSize) || tk.vocabSize < 260 || tk.vocabSize > 65536) fail(`the BPE vocabulary must be an integer in [260, 65536] (256 bytes + merges + the end-of-text token), got ${tk.vocabSize}`);
    } else if (tk?.kind === 'teacher') {
      if (!spec.teacher) fail("the teacher's tokenizer comes from the teacher's model folder, and no local teacher is loaded: load the teacher in step 1 (for KD from stored top-k, the local teacher that made the dataset's top-k), or pick a new BPE");
    } else fail("tokenizer must be {kind: 'bpe', vocabSize} or {kind: 'teacher'}");
  }
  if (!Number.isInteger(spec.sampleEvery) || spec.sampleEvery < 0) fail('sampleEvery must be an integer ≥ 0');
  if (!Array.isArray(spec.samplePrompts) || spec.samplePrompts.some((p) => typeof p !== 'string')) fail('samplePrompts must be a list of strings');
  if (!Number.isInteger(spec.heldOutEvery) || spec.heldOutEvery < 2) fail('heldOutEvery must be an integer ≥ 2 (every Nth record is held out)');
}

/** The student: a preset at the tokenizer's vocabulary (a teacher's padded to the kernels' multiple: the padding is
 *  masked out of every loss and dropped on export) and a context that fits the training length. */
export function modelConfigFor(spec: RunSpec, vocabSize: number, seqLen: number): ModelConfig {
  const base = PRESETS[spec.preset]!;
  const maxSeqLen = Math.max(base.maxSeqLen ?? 256, seqLen + 1);
  const vocab = spec.tokenizer.kind === 'teacher' ? paddedVocab(vocabSize) : { vocabSize };
  return presetConfig(spec.preset, { ...(spec.modelOverrides ?? {}), ...vocab, maxSeqLen });
}

/** Problems that stop a model from running on our kernels, each saying what to change. */
export function modelProblems(c: ModelConfig, who: string): string[] {
  const out: string[] = [];
  if (!HEAD_DIMS.includes(c.headDim)) out.push(`${who}: head dim ${c.headDim} is not one the attention kernels support (${HEAD_DIMS.join(', ')}): change hidden or heads`);
  return out;
}

/** Model folders read lately (a teacher and a pretrained student at a time), by source. */
const folderCache: { key: string; model: Promise<ImportedMeta> }[] = [];
const FOLDER_CACHE = 2;

/** FNV-1a over a whole file up to 1 MiB (configs, tokenizers), else over 256 bytes every 64 KiB and the last 256
 *  (picked files of one size but other contents must not share a cache entry). */
function sampleHash(b: Uint8Array): string {
  let x = 0x811c9dc5;
  const mix = (from: number, n: number) => { for (let i = from; i < Math.min(b.length, from + n); i++) x = Math.imul(x ^ b[i]!, 0x01000193) >>> 0; };
  if (b.length <= 1 << 20) mix(0, b.length);
  else {
    for (let o = 0; o < b.length; o += 65536) mix(o, 256);
    mix(b.length - 256, 256);
  }
  return x.toString(16);
}

function sourceKey(s: ModelFolderSource): string {
  if ('url' in s) return `url:${s.url}`;
  if ('held' in s) return `held:${s.held}`;
  return `files:${Object.entries(s.files).map(([p, b]) => `${p}:${b.length}:${sampleHash(b)}`).sort().join(',')}`;
}

/** A folder's import (with or without its weights read), cached while it stays among the last two. */
function cachedFolder<T extends ImportedMeta>(key: string, make: () => Promise<T>): Promise<T> {
  const hit = folderCache.findIndex((c) => c.key === key);
  if (hit >= 0) {
    const [c] = folderCache.splice(hit, 1);
    folderCache.unshift(c!);
    return c!.model as Promise<T>;
  }
  const model = make();
  folderCache.unshift({ key, model });
  folderCache.length = Math.min(folderCache.length, FOLDER_CACHE);
  model.catch(() => { const i = folderCache.findIndex((c) => c.key === key); if (i >= 0) folderCache.splice(i, 1); });
  return model;
}

function needTokenizer<T extends ImportedMeta>(imp: T, who: string, label: string): T {
  if (!imp.textTokenizer) throw new Error(`${who} ${label}: its folder has no tokenizer.json that transformers.js's tokenizer reads (${imp.warnings.join('; ') || 'missing'})`);
  return imp;
}

/** The model of a folder, weights in f32 (`who`: 'teacher' or 'student', for messages), read once while cached. */
export function loadModelFolder(source: ModelFolderSource, label: string, who: 'teacher' | 'student', onProgress?: (m: string) => void): Promise<ImportedModel> {
  return cachedFolder(sourceKey(source), async () => {
    const files = await readModelFolder(source, onProgress);
    onProgress?.(`reading the ${who} ${label}`);
    return needTokenizer(importHfFolder(files, `${who} ${label}`), who, label);
  });
}

/** A pretrained student's folder for planning: config, tokenizer, chat template; its weights checked, not read. */
export function loadStudentMeta(source: ModelFolderSource, label: string, onProgress?: (m: string) => void): Promise<ImportedMeta> {
  return cachedFolder(`meta:${sourceKey(source)}`, async () => {
    const files = await readModelFolder(source, onProgress);
    onProgress?.(`reading the student ${label}`);
    return needTokenizer(importHfMeta(files, `student ${label}`), 'student', label);
  });
}

/** A teacher's folder for planning (a mixture's other teachers): config and tokenizer; its weights checked, not read. */
export function loadTeacherMeta(source: ModelFolderSource, label: string, onProgress?: (m: string) => void): Promise<ImportedMeta> {
  return cachedFolder(`meta:${sourceKey(source)}`, async () => {
    const files = await readModelFolder(source, onProgress);
    onProgress?.(`reading the teacher ${label}`);
    return needTokenizer(importHfMeta(files, `teacher ${label}`), 'teacher', label);
  });
}

/**
 * Whether a teacher can give token-level KD its dense logits for this student: its shape runs on our kernels, its
 * context holds the training length, and its tokens are the student's — checked on every id and on probe texts,
 * never assumed (the student's tokenizer is the teacher's, a pretrained student's, a new BPE, or a start run's).
 * `who` names the teacher in what it says ('the teacher', 'the mixture teacher X').
 */
function teacherFit(teacher: ImportedMeta, who: string, tokenizer: TokenizerSource, model: ModelConfig, seqLen: number): { problems: string[]; alignment?: { aligned: boolean; message: string } } {
  const problems = modelProblems(teacher.config, who);
  if (seqLen > teacher.config.maxSeqLen) problems.push(`${who}'s context is ${teacher.config.maxSeqLen} tokens, shorter than the sequence length ${seqLen}: lower it`);
  const tt = teacher.textTokenizer!;
  let alignment: { aligned: boolean; message: string } | undefined;
  if (tokenizer.kind === 'teacher' || tokenizer.kind === 'pretrained') {
    const a = checkTokenAlignment(tt, tokenizer.tok, { teacherWidth: realVocab(teacher.config), specialTokens: tt.specialTokens });
    alignment = { aligned: a.aligned, message: a.message };
  } else if (tokenizer.kind === 'bpe') {
    alignment = { aligned: false, message: "token-level KD is unavailable: a new BPE's tokens are not the teacher's. Use the teacher's tokenizer, or train by sequence-level KD (SeqKD: SFT on the teacher's answers)" };
  } else if (realVocab(teacher.config) < realVocab(model)) {
    alignment = { aligned: false, message: `token-level KD is unavailable: the teacher's vocabulary (${realVocab(teacher.config)}) is smaller than the student's (${realVocab(model)}). Train by sequence-level KD (SeqKD: SFT on the teacher's answers) instead` };
  }
  return { problems, ...(alignment ? { alignment } : {}) };
}

/** The teacher model of a folder, read once (cached with the student's). */
export const loadTeacherModel = (source: ModelFolderSource, label: string, onProgress?: (m: string) => void): Promise<ImportedModel> =>
  loadModelFolder(source, label, 'teacher', onProgress);

export interface PlanDeps {
  gpu: () => Promise<GpuContext>;
  counts: (datasetId: string) => Promise<DatasetCounts>;
  /** initFrom: the stored run this one starts from. */
  getRun: (runId: string) => Promise<StoredRun>;
  /** KD across tokenizers: how the dataset's first answers pair with this student tokenizer (cross-data.ts). */
  crossShare?: (datasetId: string, tok: TextTokenizer) => Promise<CrossShare>;
}

/** How the student's tokenizer comes about: the start run's, the teacher's own, or a new BPE trained at creation. */
export type TokenizerSource =
  | { kind: 'run'; run: StoredRun }
  | { kind: 'teacher' | 'pretrained'; tok: TextTokenizer; eosToken?: string | null }
  | { kind: 'bpe'; vocabSize: number };

/** A spec resolved once — method, configs, teacher, start run, tokenizer, template — for planning and creation. */
export interface ResolvedRun {
  spec: RunSpec;
  method: MethodEntry;
  train: TrainConfig;
  model: ModelConfig;
  /** The teacher's folder, read when the run puts it on the GPU or takes its tokenizer or chat template from it. */
  teacher?: ImportedModel;
  /** A teacher mixture's other teachers (spec.mixture.teachers, read without their weights): their configs. */
  mixture?: { label: string; config: ModelConfig }[];
  /** The pretrained student's folder (spec.pretrained): its architecture, weights, tokenizer and chat template. */
  pretrained?: ImportedMeta;
  initRun?: StoredRun;
  tokenizer: TokenizerSource;
  /** format 'template': the chat template the run renders with (given, else the start run's or the teacher's). */
  chatTemplate?: string;
  counts: DatasetCounts;
  /** RL: the reward model's config (its memory joins the estimate). */
  rewardModel?: ModelConfig;
  /** Records (or pairs, for a pair method) that every-Nth holding out sets aside. */
  heldOut: number;
  problems: string[];
  warnings: string[];
  alignment?: { aligned: boolean; message: string };
  /** Stored top-k KD with a new BPE: the same rows across tokenizers are offered. */
  offerCross?: boolean;
  /** KD across tokenizers with a tokenizer known before creation: how the first answers pair. */
  crossShare?: CrossShare;
}

/** Resolves a spec: throws only when the spec itself is malformed; what stops the run is listed in `problems`. */
export async function resolveRun(spec: RunSpec, deps: Pick<PlanDeps, 'counts' | 'getRun' | 'crossShare'>, onProgress?: (m: string) => void): Promise<ResolvedRun> {
  checkSpec(spec);
  const method = methodOf(spec);
  const problems = method.check(spec), warnings: string[] = [];
  const train = method.trainConfig(spec);
  const initRun = spec.initFrom ? await deps.getRun(spec.initFrom) : undefined;
  const pretrained = spec.pretrained ? await loadStudentMeta(spec.pretrained.source, spec.pretrained.label, onProgress) : undefined;
  const fresh = !initRun && !pretrained;
  const needsTemplate = spec.format === 'template' && !spec.chatTemplate && !initRun && !pretrained?.special.chatTemplate;
  const wantsTeacher = method.runsTeacher(spec) || (fresh && spec.tokenizer.kind === 'teacher') || needsTemplate;
  const teacher = spec.teacher && wantsTeacher ? await loadTeacherModel(spec.teacher.source, spec.teacher.label, onProgress) : undefined;
  let tokenizer: TokenizerSource, model: ModelConfig;
  if (initRun) {
    tokenizer = { kind: 'run', run: initRun };
    model = initRun.model;
  } else if (pretrained) {
    tokenizer = { kind: 'pretrained', tok: pretrained.textTokenizer!, eosToken: pretrained.special.eosToken };
    model = pretrained.config;
  } else if (spec.tokenizer.kind === 'teacher') {
    tokenizer = { kind: 'teacher', tok: teacher!.textTokenizer!, eosToken: teacher!.special.eosToken };
    model = modelConfigFor(spec, tokenizer.tok.vocabSize, train.seqLen);
  } else {
    tokenizer = { kind: 'bpe', vocabSize: spec.tokenizer.vocabSize };
    model = modelConfigFor(spec, spec.tokenizer.vocabSize, train.seqLen);
  }
  if (train.seqLen + 1 > model.maxSeqLen) problems.push(`the sequence length ${train.seqLen} does not fit the model's context of ${model.maxSeqLen} tokens: lower it`);
  problems.push(...modelProblems(model, 'the student'));
  if (train.lora && !pretrained) problems.push(initRun ? 'LoRA adapts a pretrained model picked as the student: to adapt this run’s weights, export it (safetensors) and pick that folder as the pretrained student, or train every weight (full)'
    : 'LoRA trains small adapters on a model that already knows something: pick a pretrained student, or train every weight (full)');
  if (initRun && !methodOf(initRun.spec).generates) problems.push(`run ${initRun.name} is a reward model (it scores answers): a run starts from a language model; pick another run or a pretrained model`);
  if (initRun?.train.lora) problems.push(`run ${initRun.name} trained LoRA adapters: to start from it, export its merged model (safetensors) and pick that folder as a pretrained student`);

  const counts = await deps.counts(spec.datasetId);
  const pairs = method.data === 'pairs';
  const M = spec.method.toUpperCase();
  if (pairs && counts.pairs < 2) problems.push(`${M} trains on preference pairs and this dataset has ${counts.pairs}: make some with the feedback strategy in step 2, or import a DPO dataset`);
  if (!pairs && counts.records < 2) problems.push(`this dataset has ${counts.records} record(s): make or import more in step 2`);
  if (method.teacherInput(spec) === 'topk' && counts.topk === 0) problems.push("this dataset has no teacher top-k rows: make them with the feature strategy in step 2 (its teacher must return log-probabilities), or use the teacher's dense logits");
  let rewardModel: ModelConfig | undefined;
  if (method.trainer === 'pairs' && fresh) warnings.push(`${M} usually starts from a trained student (pick one under "start from"): from scratch the frozen reference is a random model`);
  if (spec.method === 'rl') {
    if (fresh) warnings.push('RL improves a student that can already answer: from random weights its answers are noise. Pick a pretrained student or a trained run under "start from"');
    const rr = spec.rewardRun ? await deps.getRun(spec.rewardRun).catch(() => undefined) : undefined;
    if (rr?.spec.method === 'reward') rewardModel = rr.model;
    if (spec.rewardRun && !rr) problems.push(`the reward model run ${spec.rewardRun} is gone (deleted?): pick another, or train one with the method "Reward model"`);
    else if (rr && rr.spec.method !== 'reward') problems.push(`run ${rr.name} is not a reward model (${rr.spec.method}): pick a run of the method "Reward model"`);
    else if (rr && !rr.checkpointStep) problems.push(`the reward model ${rr.name} has not been trained yet (no checkpoint): train it first`);
  }
  const heldOut = Math.floor((pairs ? counts.pairs : counts.records) / spec.heldOutEvery);
  // DPO/IPO evaluate whole batches of held-out pairs; a reward model scores any number of them.
  const wholeBatches = method.trainer === 'pairs';
  if (wholeBatches ? heldOut < train.batchSize : heldOut === 0) {
    warnings.push(`holding out every ${spec.heldOutEvery}th ${pairs ? 'pair' : 'record'} of ${pairs ? counts.pairs : counts.records} leaves ${heldOut}${wholeBatches ? `, fewer than a batch of ${train.batchSize}` : ''}: nothing to evaluate on. Hold out a smaller N, or add data`);
  }

  let chatTemplate: string | undefined;
  if (spec.format === 'template') {
    // The student's own template first (a pretrained student's, the start run's), else the teacher's.
    chatTemplate = spec.chatTemplate || initRun?.spec.chatTemplate || pretrained?.special.chatTemplate || teacher?.special.chatTemplate;
    if (!chatTemplate) problems.push(`the "chat template" format renders records with the ${pretrained ? 'student’s or the ' : ''}teacher's chat template, and ${teacher ? `the teacher ${spec.teacher!.label} has none` : 'no teacher model is loaded'}: paste a template, or pick the plain chat format`);
    if (tokenizer.kind === 'bpe') problems.push("a model family's chat template closes turns with its own special tokens, which a new BPE does not have: use the teacher's tokenizer, or pick the plain chat format");
  }

  let alignment: ResolvedRun['alignment'];
  if (teacher && method.runsTeacher(spec)) {
    const fit = teacherFit(teacher, 'the teacher', tokenizer, model, train.seqLen);
    problems.push(...fit.problems);
    alignment = fit.alignment;
    if (alignment && !alignment.aligned) problems.push(alignment.message);
  }
  // A teacher mixture: every other teacher is checked as the first one is, each named in what it says.
  const mixture: ResolvedRun['mixture'] = [];
  if (spec.mixture && method.runsTeacher(spec) && problems.every((p) => !p.startsWith('mixture'))) {
    for (const t of spec.mixture.teachers) {
      const imp = await loadTeacherMeta(t.source, t.label, onProgress);
      const fit = teacherFit(imp, `the mixture teacher ${t.label}`, tokenizer, model, train.seqLen);
      problems.push(...fit.problems);
      if (fit.alignment && !fit.alignment.aligned) problems.push(`the mixture teacher ${t.label}: ${fit.alignment.message}`);
      mixture.push({ label: t.label, config: imp.config });
    }
  }
  // Across tokenizers: the share of exactly paired tokens, measured on the first answers when the student's tokenizer
  // is known now (a new BPE is trained at creation: the run says it then).
  let crossShare: CrossShare | undefined;
  if ('kdSource' in spec && spec.kdSource === 'cross-topk' && 'tok' in tokenizer && deps.crossShare && counts.topk > 0) {
    onProgress?.('pairing the first answers with the student’s tokens');
    try {
      crossShare = await deps.crossShare(spec.datasetId, tokenizer.tok);
    } catch (e) {
      warnings.push(`could not measure how the answers pair across tokenizers: ${(e as Error).message}`);
    }
  }
  // Stored top-k rows are in the teacher's tokens: a new BPE's are others, so same-tokenizer KD would leave every
  // record out. Across tokenizers the rows are paired with the student's tokens by text.
  let offerCross = false;
  if ('kdSource' in spec && spec.kdSource === 'store-topk' && tokenizer.kind === 'bpe') {
    problems.push("the stored top-k rows are in the teacher's tokens, and a new BPE's tokens are others: pick the stored top-k across tokenizers (exact KL where the tokens match, ULD where they differ), use the teacher's tokenizer, or train by SeqKD");
    offerCross = true;
  }
  return { spec, method, train, model, ...(rewardModel ? { rewardModel } : {}), ...(teacher ? { teacher } : {}), ...(mixture.length ? { mixture } : {}), ...(pretrained ? { pretrained } : {}), ...(initRun ? { initRun } : {}), tokenizer, ...(chatTemplate ? { chatTemplate } : {}), counts, heldOut, problems, warnings, ...(alignment ? { alignment } : {}), ...(offerCross ? { offerCross } : {}), ...(crossShare ? { crossShare } : {}) };
}

/** Top-k rows per position the memory estimate assumes for stored top-k (the feature strategy's 20 + the sampled). */
const TOPK_K = 21;

/** The plan of a resolved run: memory against the adapter's limits joins its problems and warnings. */
export async function planOf(r: ResolvedRun, gpu: PlanDeps['gpu']): Promise<RunPlan> {
  const { spec, method, train, model, teacher } = r;
  const problems = [...r.problems], warnings = [...r.warnings];
  const pairs = method.data === 'pairs';
  const input = method.teacherInput(spec);
  const estimate = {
    model, B: pairs ? 2 * train.batchSize : spec.method === 'rl' ? train.batchSize * spec.rl.G : train.batchSize, T: train.seqLen,
    teacher: input === 'topk' ? { kind: 'topk' as const, k: TOPK_K } : { kind: input },
    ...(teacher && method.runsTeacher(spec) ? { teacherModel: teacher.config } : {}),
    ...(r.mixture && method.runsTeacher(spec) ? { mixtureModels: r.mixture.map((m) => m.config) } : {}),
    reference: method.trainer === 'pairs' || method.trainer === 'rl',
    ...(r.rewardModel ? { rewardModel: r.rewardModel } : {}),
    ...(train.lora ? { lora: train.lora } : {}),
    ...(train.recompute ? { recompute: true } : {}),
    ...(train.uldWeight !== undefined ? { uld: true } : {}),
  };
  const memory = estimateMemory(estimate);
  const { limits } = (await gpu()).report;
  const advice = fitAdvice(estimate, limits.maxBufferSize);
  // A model that cannot fit is refused before anything is allocated; one over the laptop budget is a warning.
  if (memory.largestBuffer > limits.maxBufferSize) {
    problems.push(`its largest GPU buffer (${(memory.largestBuffer / 1048576).toFixed(0)} MiB) is over this GPU's maximum buffer size (${(limits.maxBufferSize / 1048576).toFixed(0)} MiB): ${advice ?? 'lower the batch size or sequence length'}`);
  } else if (memory.bytes > MEMORY_BUDGET) {
    warnings.push(`it needs about ${(memory.bytes / 1024 ** 3).toFixed(1)} GiB of GPU memory: more than many laptop GPUs give a tab${advice ? `; ${advice}` : ''}`);
  }
  if (train.steps > 0 && train.evalEvery > train.steps) warnings.push('the held-out evaluation runs only at the end (evalEvery > steps)');
  if (train.warmupSteps >= train.steps) warnings.push(`the warmup (${train.warmupSteps} steps) lasts the whole run of ${train.steps}: the learning rate never reaches its peak; lower the warmup`);
  const { records, pairs: pairCount, topk, topkTokens } = r.counts;
  return {
    model, train, params: countParams(model), memory,
    ...(train.lora ? { lora: { trainedParams: loraLayout(model, train.lora).count, fullMemory: estimateMemory({ ...estimate, lora: undefined }) } } : {}),
    limits: { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize },
    ok: problems.length === 0, problems, warnings,
    dataset: { records, pairs: pairCount, topk, topkTokens }, heldOut: r.heldOut,
    ...(r.alignment ? { alignment: r.alignment } : {}),
    ...(r.alignment && !r.alignment.aligned || r.offerCross ? { offerSeqKd: true } : {}),
    ...(r.offerCross ? { offerCross: true } : {}),
    ...(r.crossShare ? { crossShare: r.crossShare } : {}),
    ...(!train.lora && r.pretrained && (memory.largestBuffer > limits.maxBufferSize || memory.bytes > MEMORY_BUDGET) ? { offerLora: true } : {}),
  };
}
