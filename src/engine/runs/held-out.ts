// The Evaluate stage's measurement of a run's checkpoint (and what an export's training.json records): the held-out
// batches the run evaluated on while training, through the same evaluateHeldOut; against the run's teacher (or the
// one asked for) when it shares the student's tokenizer: KL, top-1 agreement and the teacher's own perplexity on
// the same tokens (a teacher mixture: against the mixture, and against each of its teachers); against stored top-k
// rows: top-1 agreement; for pair methods: held-out preference accuracy.
// Nothing is reported as a number that was not measured: without held-out tokens the loss is absent and a note
// says why.
import type { BaseSource } from '../../model/base-layout.ts';
import { GpuModel } from '../../model/gpu-model.ts';
import { evalBatches } from '../../train/batches.ts';
import { evaluateHeldOut, type EvalTeacher } from '../../train/evaluate.ts';
import { PairTrainer } from '../../train/pair-trainer.ts';
import { RewardTrainer } from '../../train/reward-trainer.ts';
import { decodeCheckpoint } from '../../train/checkpoint.ts';
import { CE_ONLY } from '../../train/step-trainer.ts';
import { teacherTopK } from './data.ts';
import { loadTeacherModel } from './plan.ts';
import { logitsCe, mixTeacherLogits } from '../../train/teacher-mixture.ts';
import { CKPT, denseSignal, modelOfRole, readReference, runData, runFolder, runTeacherModel, runTeacherModels, teacherRole, teachersLogits, type RunContext, type RunTeachers } from './runner.ts';
import type { StoredRun } from './run-store.ts';
import type { EngineTeacher, EvalReport } from './types.ts';

/** Evaluates `params` (the run's checkpoint of `step`) on the run's held-out data. */
/** A run's weights: whole, or a LoRA run's frozen base and adapters. */
export type RunWeights = { step: number } & ({ params: Float32Array } | { base: BaseSource; adapters: Float32Array });

export async function evaluateRun(
  ctx: RunContext, run: StoredRun, weights: RunWeights, asked: EngineTeacher | undefined,
  onProgress?: (m: string) => void,
): Promise<EvalReport> {
  const t0 = performance.now();
  onProgress?.('reading the held-out data');
  const data = await runData(ctx, run);
  const { step } = weights;
  // A LoRA run is evaluated as it trained: the frozen base with its adapters (no merged copy, no full-size model).
  const lora = 'adapters' in weights ? run.train.lora : undefined;
  const { batchSize: B, seqLen: T } = run.train;
  const notes: string[] = [];
  const report: EvalReport = { runId: run.id, step, tokens: 0, notes, ms: 0 };
  const done = () => ({ ...report, ms: performance.now() - t0 });
  if (run.spec.method === 'reward') {
    // A reward model is not a language model: its measure is held-out pair accuracy (trunk + score head of the checkpoint).
    const bytes = await ctx.runs.checkpoints(run.id).get(CKPT);
    if (!bytes) throw new Error(`run ${run.name} has no checkpoint yet: train it for a few steps first`);
    if (data.evalPairs.length === 0) notes.push('no held-out preference pair: no pair accuracy (hold out a smaller share, or add pairs)');
    else {
      onProgress?.('held-out preference pairs');
      const rt = new RewardTrainer(ctx.device, run.model, run.train, data.evalPairs.length >= B ? data.evalPairs : data.pairs, data.evalPairs, 'adapters' in weights ? weights.base : weights.params, run.spec.rewardMargin ?? 0, data.eos);
      try {
        rt.restore(decodeCheckpoint(bytes, `run ${run.name} checkpoint`));
        const e = await rt.evaluate();
        if (e) report.pairAccuracy = e.pairAccuracy;
      } finally { rt.destroy(); }
    }
    notes.push('a reward model scores answers: it has no perplexity, and is not compared with a teacher');
    return done();
  }
  if (run.spec.method === 'dpo' || run.spec.method === 'ipo') {
    // The reference: a LoRA run's frozen base (adapters off), a full run's stored start.
    const ref = data.evalPairs.length < B ? undefined : 'adapters' in weights ? weights.base : await readReference(ctx, run);
    if (ref) {
      onProgress?.('held-out preference pairs');
      // The policy holds the weights evaluated (a LoRA run's adapters on the base), the reference the start.
      const pt = new PairTrainer(ctx.device, run.model, run.train, data.evalPairs, data.evalPairs, { kind: run.spec.method, beta: run.spec.pairBeta }, ref);
      try {
        if ('adapters' in weights) pt.policy.uploadAdapters(weights.adapters);
        else pt.policy.uploadParams(weights.params);
        const e = await pt.evaluate();
        if (e) report.pairAccuracy = e.pairAccuracy;
      } finally { pt.destroy(); }
    } else notes.push(`fewer held-out preference pairs (${data.evalPairs.length}) than a batch of ${B}: no preference accuracy`);
  }
  // The batches of the evaluations during training (a last one padded with rows of weight 0).
  const batches = evalBatches(data.evalRows, B, T, run.train.evalBatches, true);
  if (batches.length === 0) {
    notes.push('no held-out record with an answer to evaluate on: no held-out loss (hold out a smaller share, or add records)');
    return done();
  }
  // The teacher to compare with: the run's (or the one asked for), when it shares the student's tokenizer; a run's
  // teacher mixture: all of its teachers, each checked the same way.
  const teacherSpec = asked ?? run.spec.teacher;
  let teacher: GpuModel | undefined, mixture: RunTeachers | undefined;
  if (!asked && run.spec.mixture) {
    mixture = await mixtureTeachers(ctx, run, B, T, notes, onProgress);
  } else if (teacherSpec) {
    const source = asked ? asked.source : (await runFolder(ctx, run, 'teacher'))!;
    const imp = await loadTeacherModel(source, teacherSpec.label, onProgress);
    if (imp.textTokenizer && JSON.stringify(imp.textTokenizer.toJSON()) === JSON.stringify(run.tokenizer)) {
      teacher = await runTeacherModel(ctx, { ...run, spec: { ...run.spec, teacher: teacherSpec } }, B, T, onProgress);
    } else notes.push(`the teacher ${teacherSpec.label} uses another tokenizer: no KL, agreement or teacher perplexity on the same tokens`);
  }
  let teacherFor: EvalTeacher | undefined;
  if (mixture) {
    // KL, agreement and loss against the mixture at τ = 1 (the teachers' own distributions mixed), and against each.
    const ts = mixture, V = run.model.vocabSize, Vr = run.tokenizerVocab;
    teacherFor = async (b) => {
      const logits = (await teachersLogits(ts, b, V, Vr, true)) as Float32Array[];
      const mixed = mixTeacherLogits({ logits, weights: ts.weights, N: b.ids.length, V, temperature: 1, realVocab: Vr });
      const ce = (z: Float32Array) => logitsCe(z, b.labels, b.weights, V, Vr) ?? Number.NaN;
      return { teacherLogits: mixed, teacherCe: ce(mixed), each: logits.map((z) => ({ logits: z, ce: ce(z) })) };
    };
  } else if (teacher) {
    const tm = teacher;
    teacherFor = async (b) => {
      const signal = await denseSignal(tm, b, run.model.vocabSize, run.tokenizerVocab);
      tm.setBatch(b);
      return { ...signal, teacherCe: (await tm.run({ backward: false })).ce };
    };
  } else if (data.topk) {
    const table = data.topk;
    teacherFor = async (b) => teacherTopK(b, data.evalRows, table, run.model.vocabSize, run.train.temperature);
  }
  const student = new GpuModel(ctx.device, run.model, B, T, CE_ONLY, undefined, lora ? { lora } : {});
  try {
    if ('adapters' in weights) {
      student.uploadBase(weights.base);
      student.uploadAdapters(weights.adapters);
    } else student.uploadParams(weights.params);
    const r = await evaluateHeldOut(student, batches, {
      ...(teacherFor ? { teacherFor } : {}), ...(data.topk ? { topK: data.topk.k } : {}),
      onBatch: (i, n) => onProgress?.(`held-out batch ${i + 1} of ${n}`),
    });
    if (!r) {
      notes.push('the held-out records have no answer tokens: no held-out loss');
      return done();
    }
    Object.assign(report, { loss: r.loss, ppl: r.ppl, tokens: r.tokens });
    if (r.klToTeacher !== undefined) report.klToTeacher = r.klToTeacher;
    if (r.top1Agreement !== undefined) report.top1Agreement = r.top1Agreement;
    if (r.teacherLoss !== undefined) report.teacher = { label: mixture ? mixtureLabel(mixture) : teacherSpec!.label, loss: r.teacherLoss, ppl: Math.exp(r.teacherLoss) };
    if (mixture && r.perTeacher) {
      notes.push(`KL, agreement and the teacher's perplexity are against the ${mixtureLabel(mixture)} (at τ = 1); each teacher's are reported too`);
      report.perTeacher = r.perTeacher.map((p, i) => ({
        label: mixture!.labels[i]!, weight: mixture!.weights[i]!, klToTeacher: p.klToTeacher, top1Agreement: p.top1Agreement, loss: p.teacherLoss, ppl: Math.exp(p.teacherLoss),
      }));
    }
    if (!teacher && data.topk && r.top1Agreement !== undefined) notes.push('agreement with the teacher’s stored top-1 token; KL needs the teacher’s full distribution');
  } finally {
    student.destroy();
    teacher?.destroy();
    for (const g of mixture?.models ?? []) g.destroy();
  }
  return done();
}

/** 'mixture of a 0.5, b 0.5': a teacher mixture in words. */
const mixtureLabel = (m: RunTeachers) => `mixture of ${m.labels.map((l, i) => `${l} ${+m.weights[i]!.toFixed(3)}`).join(', ')}`;

/** A run's teacher mixture on the GPU for evaluation, when every teacher shares the student's tokenizer (else a note
 *  names the one that does not, and there is nothing to compare with). */
async function mixtureTeachers(ctx: RunContext, run: StoredRun, B: number, T: number, notes: string[], onProgress?: (m: string) => void): Promise<RunTeachers | undefined> {
  const K = 1 + run.spec.mixture!.teachers.length;
  for (let i = 0; i < K; i++) {
    const role = teacherRole(i), label = modelOfRole(run.spec, role)!.label;
    const imp = await loadTeacherModel((await runFolder(ctx, run, role))!, label, onProgress);
    if (!imp.textTokenizer || JSON.stringify(imp.textTokenizer.toJSON()) !== JSON.stringify(run.tokenizer)) {
      notes.push(`the mixture teacher ${label} uses another tokenizer: no KL, agreement or teacher perplexity on the same tokens`);
      return undefined;
    }
  }
  return runTeacherModels(ctx, run, B, T, onProgress);
}
