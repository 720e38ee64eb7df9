// The held-out evaluation of a model on fixed batches, used during training (Trainer.evaluate) and afterwards (the
// Evaluate stage, exports' training.json): cross-entropy per target token and its perplexity; against a teacher,
// top-1 agreement (dense logits or stored top-k) and KL(teacher ‖ student) (dense logits only: a top-k row is not a
// whole distribution); the teacher's own cross-entropy on the same tokens when the caller measures it; the same
// against each teacher of a mixture when the signal brings them one by one.
import type { GpuModel } from '../model/gpu-model.ts';
import type { Batch } from './batches.ts';
import { teacherMetrics } from './metrics.ts';

/**
 * What a teacher gives for a batch: dense logits, top-k ids + logprobs, and/or hidden states; `teacherMask` (B, T)
 * marks the rows that carry a real teacher distribution (evaluation's KL and top-1 agreement count only those;
 * absent = all).
 */
export interface TeacherSignal {
  teacherLogits?: Float32Array;
  teacherIds?: Uint32Array;
  teacherLogprobs?: Float32Array;
  teacherHidden?: Float32Array;
  teacherMask?: Float32Array;
  /** Cross-tokenizer KD: the teacher's probabilities (N, k) descending for the ULD term, and its row weights (N). */
  teacherUld?: Float32Array;
  uldWeights?: Float32Array;
}

/** A held-out batch's teacher signal; `teacherCe`: the teacher's own cross-entropy on the batch (same tokens);
 *  `each`: a teacher mixture's teachers one by one (their dense logits at the student's width and their own
 *  cross-entropy), measured like the signal's teacher. */
export type EvalTeacher = (b: Batch) => Promise<TeacherSignal & { teacherCe?: number; each?: { logits: Float32Array; ce: number }[] }>;

/** Evaluation against one teacher of a mixture: KL(teacher ‖ student), top-1 agreement, the teacher's own loss. */
export interface PerTeacherResult {
  klToTeacher: number;
  top1Agreement: number;
  teacherLoss: number;
}

export interface HeldOutResult {
  /** Cross-entropy per target token and its perplexity, over `tokens` weighted target tokens. */
  loss: number;
  ppl: number;
  tokens: number;
  klToTeacher?: number;
  top1Agreement?: number;
  /** The teacher's cross-entropy on the same tokens (when the signal gave teacherCe). */
  teacherLoss?: number;
  /** When the signal gave `each`: the same against each teacher of the mixture. */
  perTeacher?: PerTeacherResult[];
}

export interface EvaluateOptions {
  /** Top-k rows per position when the teacher's signal is stored top-k. */
  topK?: number;
  teacherFor?: EvalTeacher;
  onBatch?: (index: number, count: number) => void;
}

/** Evaluates `model` (its B, T) on `batches`; undefined when they hold no target token. */
export async function evaluateHeldOut(model: GpuModel, batches: readonly Batch[], o: EvaluateOptions = {}): Promise<HeldOutResult | undefined> {
  let sum = 0, count = 0, teacherSum = 0, teacherCount = 0, kl = 0, klRows = 0, top1 = 0, rows = 0;
  // A mixture's teachers one by one: Σ KL·rows, Σ agreement·rows, rows, Σ ce·w, Σ w.
  let each: { kl: number; top1: number; rows: number; ce: number; w: number }[] | undefined;
  for (const [i, b] of batches.entries()) {
    o.onBatch?.(i, batches.length);
    const signal = o.teacherFor ? await o.teacherFor(b) : {};
    model.setBatch({ ...b, ...signal });
    const r = await model.run({ backward: false });
    const w = b.weights.reduce((s, x) => s + x, 0);
    if (!(w > 0)) continue;
    sum += r.ce * w;
    count += w;
    if (signal.teacherCe !== undefined) { teacherSum += signal.teacherCe * w; teacherCount += w; }
    if (signal.each) {
      each ??= signal.each.map(() => ({ kl: 0, top1: 0, rows: 0, ce: 0, w: 0 }));
      if (each.length !== signal.each.length) throw new Error(`held-out evaluation: batch ${i} brought ${signal.each.length} teachers, an earlier one ${each.length}`);
      for (const [j, e] of signal.each.entries()) { each[j]!.ce += e.ce * w; each[j]!.w += w; }
    }
    const teacher: { logits: Float32Array } | { ids: Uint32Array; logprobs: Float32Array; k: number } | undefined = signal.teacherLogits ? { logits: signal.teacherLogits }
      : signal.teacherIds && signal.teacherLogprobs ? { ids: signal.teacherIds, logprobs: signal.teacherLogprobs, k: o.topK ?? 0 } : undefined;
    if (!teacher) continue;
    const mask = signal.teacherMask;
    const weights = mask ? b.weights.map((x, j) => x * mask[j]!) : b.weights;
    // The metrics are means over weighted rows: per chunk of rows (host memory holds one chunk of logits), each
    // chunk's means weighted back by its rows.
    const V = model.config.vocabSize;
    await model.forEachLogitsChunk((r0, n, logits) => {
      const part = 'logits' in teacher ? { logits: teacher.logits.subarray(r0 * V, (r0 + n) * V) }
        : { ids: teacher.ids.subarray(r0 * teacher.k, (r0 + n) * teacher.k), logprobs: teacher.logprobs.subarray(r0 * teacher.k, (r0 + n) * teacher.k), k: teacher.k };
      const m = teacherMetrics(logits, weights.subarray(r0, r0 + n), V, part);
      if (m.rows === 0) return;
      top1 += m.top1 * m.rows;
      rows += m.rows;
      if ('logits' in part) { kl += m.kl * m.rows; klRows += m.rows; }
      for (const [j, e] of (signal.each ?? []).entries()) {
        const mj = teacherMetrics(logits, weights.subarray(r0, r0 + n), V, { logits: e.logits.subarray(r0 * V, (r0 + n) * V) });
        each![j]!.kl += mj.kl * mj.rows;
        each![j]!.top1 += mj.top1 * mj.rows;
        each![j]!.rows += mj.rows;
      }
    });
  }
  if (count === 0) return undefined;
  const loss = sum / count;
  return {
    loss, ppl: Math.exp(loss), tokens: count,
    ...(klRows ? { klToTeacher: kl / klRows } : {}),
    ...(rows ? { top1Agreement: top1 / rows } : {}),
    ...(teacherCount ? { teacherLoss: teacherSum / teacherCount } : {}),
    ...(each ? { perTeacher: each.map((e) => ({ klToTeacher: e.kl / e.rows, top1Agreement: e.top1 / e.rows, teacherLoss: e.ce / e.w })) } : {}),
  };
}
