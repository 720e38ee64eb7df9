// From what the Train stage asks (RunSpec) to what a run trains with: the spec checked with errors that say what
// to change, the TrainConfig each method implies (SFT = CE only; KD = a divergence mixed with CE; on-policy =
// GKD's divergence alone; DPO/IPO = the pair loss), the student's ModelConfig (a preset at the tokenizer's
// vocabulary), the teacher model read from its folder (cached: one teacher at a time), and the plan — parameter
// count, memory against the adapter's limits, what the dataset holds for the method — before anything is stored.
import { importHfFolder, type ImportedModel } from '../../export/import.ts';
import { paddedVocab, presetConfig, PRESETS, realVocab, type ModelConfig } from '../../model/config.ts';
import { countParams } from '../../model/params.ts';
import type { GpuContext } from '../../platform/gpu.ts';
import type { DatasetCounts } from '../../store/schema.ts';
import { checkTokenAlignment } from '../../tokenizer/align.ts';
import { makeTrainConfig, type TrainConfig } from '../../train/config.ts';
import { readModelFolder } from '../export.ts';
import { estimateMemory, MEMORY_BUDGET } from './estimate.ts';
import { RUN_FORMATS, RUN_METHODS, type ModelFolderSource, type RunPlan, type RunSpec } from './types.ts';

/** Head dims the attention kernels are built for. */
export const HEAD_DIMS = [8, 16, 32, 64, 128];

function fail(msg: string): never {
  throw new Error(`run settings: ${msg}`);
}

/** Checks the parts of a spec that need nothing but the spec itself. */
export function checkSpec(spec: RunSpec): void {
  if (typeof spec !== 'object' || spec === null) fail('expected an object');
  if (typeof spec.name !== 'string' || spec.name.trim() === '') fail('give the run a name');
  if (typeof spec.datasetId !== 'string' || spec.datasetId === '') fail('pick a dataset to train on');
  if (!(RUN_METHODS as readonly string[]).includes(spec.method)) fail(`method must be one of ${RUN_METHODS.join(', ')}, got ${JSON.stringify(spec.method)}`);
  if (!(RUN_FORMATS as readonly string[]).includes(spec.format)) fail(`format must be one of ${RUN_FORMATS.join(', ')}, got ${JSON.stringify(spec.format)}`);
  if (!spec.initFrom && !PRESETS[spec.preset]) fail(`unknown student preset '${spec.preset}' (have: ${Object.keys(PRESETS).join(', ')})`);
  const tk = spec.tokenizer;
  if (!spec.initFrom) {
    if (tk?.kind === 'bpe') {
      if (!Number.isInteger(tk.vocabSize) || tk.vocabSize < 260 || tk.vocabSize > 65536) fail(`the BPE vocabulary must be an integer in [260, 65536] (256 bytes + merges + the end-of-text token), got ${tk.vocabSize}`);
    } else if (tk?.kind === 'teacher') {
      if (!spec.teacher) fail("the teacher's tokenizer needs a teacher model folder: load a local teacher from a folder in step 1");
    } else fail("tokenizer must be {kind: 'bpe', vocabSize} or {kind: 'teacher'}");
  }
  if (spec.method === 'kd') {
    if (spec.kdSource !== 'store-topk' && spec.kdSource !== 'dense') fail("KD needs a teacher signal: the dataset's stored top-k ('store-topk') or the teacher model's dense logits ('dense')");
    if (spec.kdSource === 'dense' && !spec.teacher) fail('dense-logit KD runs the teacher model on this GPU: load a local teacher from a folder (an HF Llama folder) in step 1, or use the stored top-k');
  }
  if (spec.method === 'on-policy') {
    if (!spec.teacher) fail('on-policy distillation scores the student\'s samples with the teacher model on this GPU: load a local teacher from a folder in step 1');
    const o = spec.onPolicy;
    if (!o || !(o.lambda >= 0 && o.lambda <= 1)) fail('on-policy: λ (the share of steps on the student\'s own samples) must be in [0, 1]');
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) fail('on-policy: the sample length must be a positive integer');
    if (!(o.temperature >= 0 && o.temperature <= 2)) fail('on-policy: the sampling temperature must be in [0, 2]');
  }
  if ((spec.method === 'dpo' || spec.method === 'ipo') && !(typeof spec.pairBeta === 'number' && spec.pairBeta > 0)) fail(`${spec.method.toUpperCase()} needs β > 0`);
  if (!Number.isInteger(spec.sampleEvery) || spec.sampleEvery < 0) fail('sampleEvery must be an integer ≥ 0');
  if (!Array.isArray(spec.samplePrompts) || spec.samplePrompts.some((p) => typeof p !== 'string')) fail('samplePrompts must be a list of strings');
  if (!Number.isInteger(spec.heldOutEvery) || spec.heldOutEvery < 2) fail('heldOutEvery must be an integer ≥ 2 (every Nth record is held out)');
}

/** The TrainConfig of a spec: the method's objective and weights under the user's keys. */
export function trainConfigFor(spec: RunSpec): TrainConfig {
  const t = { ...spec.train } as Record<string, unknown>;
  const where = 'run settings';
  switch (spec.method) {
    case 'sft':
    case 'dpo':
    case 'ipo':
      return makeTrainConfig({ ...t, objective: 'none', kdWeight: 0, ceWeight: 1 }, where);
    case 'kd': {
      const objective = t.objective && t.objective !== 'none' ? t.objective : 'fkl';
      return makeTrainConfig({ kdWeight: 0.5, ceWeight: 0.5, ...t, objective, ...(spec.kdSource === 'store-topk' && !t.topkPolicy ? { topkPolicy: 'uniform' } : {}) }, where);
    }
    case 'on-policy': {
      // GKD: the divergence alone, on dataset batches (teacher logits on the data) and on the student's samples.
      const objective = t.objective && t.objective !== 'none' ? t.objective : 'jsd';
      return makeTrainConfig({ ...t, objective, kdWeight: 1, ceWeight: 0 }, where);
    }
  }
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

let teacherCache: { key: string; model: Promise<ImportedModel> } | null = null;

function sourceKey(s: ModelFolderSource): string {
  return 'url' in s ? `url:${s.url}` : `files:${Object.entries(s.files).map(([p, b]) => `${p}:${b.length}`).sort().join(',')}`;
}

/** The teacher model of a folder, read once (the last one stays cached). */
export function loadTeacherModel(source: ModelFolderSource, label: string, onProgress?: (m: string) => void): Promise<ImportedModel> {
  const key = sourceKey(source);
  if (teacherCache?.key === key) return teacherCache.model;
  const model = (async () => {
    const files = await readModelFolder(source, onProgress);
    onProgress?.(`reading the teacher ${label}`);
    const imp = importHfFolder(files, `teacher ${label}`);
    if (!imp.textTokenizer) throw new Error(`teacher ${label}: its folder has no tokenizer.json that transformers.js's tokenizer reads (${imp.warnings.join('; ') || 'missing'})`);
    return imp;
  })();
  teacherCache = { key, model };
  model.catch(() => { if (teacherCache?.key === key) teacherCache = null; });
  return model;
}

export interface PlanDeps {
  gpu: () => Promise<GpuContext>;
  counts: (datasetId: string) => Promise<DatasetCounts>;
  /** initFrom: the model config of that run. */
  runModel: (runId: string) => Promise<ModelConfig>;
}

/** What the run would be; problems listed (never thrown) unless the spec itself is malformed. */
export async function planRun(spec: RunSpec, deps: PlanDeps): Promise<RunPlan> {
  checkSpec(spec);
  const problems: string[] = [], warnings: string[] = [];
  const train = trainConfigFor(spec);
  const teacher = spec.teacher ? await loadTeacherModel(spec.teacher.source, spec.teacher.label) : undefined;
  let model: ModelConfig;
  if (spec.initFrom) model = await deps.runModel(spec.initFrom);
  else {
    const vocab = spec.tokenizer.kind === 'bpe' ? spec.tokenizer.vocabSize : teacher!.textTokenizer!.vocabSize;
    model = modelConfigFor(spec, vocab, train.seqLen);
  }
  if (train.seqLen + 1 > model.maxSeqLen) problems.push(`the sequence length ${train.seqLen} does not fit the model's context of ${model.maxSeqLen} tokens: lower it`);
  problems.push(...modelProblems(model, 'the student'));
  const dataset = await deps.counts(spec.datasetId);
  const needsPairs = spec.method === 'dpo' || spec.method === 'ipo';
  if (needsPairs && dataset.pairs < 2) problems.push(`${spec.method.toUpperCase()} trains on preference pairs and this dataset has ${dataset.pairs}: make some with the feedback strategy in step 2, or import a DPO dataset`);
  if (!needsPairs && dataset.records < 2) problems.push(`this dataset has ${dataset.records} record(s): make or import more in step 2`);
  if (spec.method === 'kd' && spec.kdSource === 'store-topk' && dataset.topk === 0) problems.push("this dataset has no teacher top-k rows: make them with the feature strategy in step 2 (its teacher must return log-probabilities), or use the teacher's dense logits");
  if (needsPairs && !spec.initFrom) warnings.push(`${spec.method.toUpperCase()} usually starts from a trained student (pick one under "start from"): from scratch the frozen reference is a random model`);
  if (spec.format === 'template' && !spec.chatTemplate && !spec.initFrom && !teacher?.special.chatTemplate) {
    problems.push(`the "chat template" format renders records with the teacher's chat template, and ${teacher ? `the teacher ${spec.teacher!.label} has none` : 'no teacher model is loaded'}: paste a template, or pick the plain chat format`);
  }
  if (spec.format === 'template' && spec.tokenizer.kind === 'bpe' && !spec.initFrom) problems.push("a model family's chat template closes turns with its own special tokens, which a new BPE does not have: use the teacher's tokenizer, or pick the plain chat format");
  const usesTeacherModel = (spec.method === 'kd' && spec.kdSource === 'dense') || spec.method === 'on-policy';
  let alignment: RunPlan['alignment'];
  if (teacher && usesTeacherModel) {
    problems.push(...modelProblems(teacher.config, 'the teacher'));
    if (train.seqLen > teacher.config.maxSeqLen) problems.push(`the teacher's context is ${teacher.config.maxSeqLen} tokens, shorter than the sequence length ${train.seqLen}: lower it`);
    // Token-level KD puts the teacher's distribution over its ids next to the student's logits: checked on every
    // id and on probe texts, never assumed. The student's tokenizer is the teacher's or a new BPE (or a run's).
    const tt = teacher.textTokenizer!;
    const st = spec.initFrom ? undefined : spec.tokenizer.kind === 'teacher' ? tt : undefined;
    if (st) {
      const a = checkTokenAlignment(tt, st, { teacherWidth: realVocab(teacher.config), specialTokens: tt.specialTokens });
      alignment = { aligned: a.aligned, message: a.message };
      if (!a.aligned) problems.push(a.message);
    } else if (!spec.initFrom) {
      alignment = { aligned: false, message: "token-level KD is unavailable: a new BPE's tokens are not the teacher's. Use the teacher's tokenizer, or train by sequence-level KD (SeqKD: SFT on the teacher's answers)" };
      problems.push(alignment.message);
    } else if (realVocab(teacher.config) < realVocab(model)) {
      alignment = { aligned: false, message: `token-level KD is unavailable: the teacher's vocabulary (${realVocab(teacher.config)}) is smaller than the student's (${realVocab(model)}). Train by sequence-level KD (SeqKD: SFT on the teacher's answers) instead` };
      problems.push(alignment.message);
    }
  }
  const topkK = 21;
  const memory = estimateMemory({
    model, B: needsPairs ? 2 * train.batchSize : train.batchSize, T: train.seqLen,
    teacher: spec.method === 'kd' ? (spec.kdSource === 'dense' ? { kind: 'dense' } : { kind: 'topk', k: topkK }) : spec.method === 'on-policy' ? { kind: 'dense' } : { kind: 'none' },
    ...(teacher && usesTeacherModel ? { teacherModel: teacher.config } : {}),
    reference: needsPairs,
  });
  const { limits } = (await deps.gpu()).report;
  if (memory.largestBuffer > limits.maxBufferSize) {
    problems.push(`its largest GPU buffer (${(memory.largestBuffer / 1048576).toFixed(0)} MiB) is over this GPU's maximum buffer size (${(limits.maxBufferSize / 1048576).toFixed(0)} MiB): lower the batch size or sequence length, or pick a smaller preset`);
  }
  if (memory.bytes > MEMORY_BUDGET) warnings.push(`it needs about ${(memory.bytes / 1024 ** 3).toFixed(1)} GiB of GPU memory: more than many laptop GPUs give a tab; lower the batch size or pick a smaller preset if it fails`);
  if (train.steps > 0 && train.evalEvery > train.steps) warnings.push('the held-out evaluation runs only at the end (evalEvery > steps)');
  return {
    model, train, params: countParams(model), memory,
    limits: { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize },
    ok: problems.length === 0, problems, warnings,
    dataset: { records: dataset.records, pairs: dataset.pairs, topk: dataset.topk, topkTokens: dataset.topkTokens },
    ...(alignment ? { alignment } : {}),
    ...(alignment && !alignment.aligned ? { offerSeqKd: true } : {}),
  };
}
