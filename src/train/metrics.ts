// Evaluation metrics against the teacher on held-out batches: KL(teacher ‖ student) per target token (at τ = 1)
// and top-1 agreement (the student's argmax equals the teacher's). Plain TS over logits read back at eval time.

import { logSoftmaxRow } from '../util/logsoftmax.ts';

export interface TeacherMetrics {
  /** Mean KL(p_T ‖ p_S) in nats over weighted rows (dense teachers; NaN for top-k teachers). */
  kl: number;
  /** Share of weighted rows where argmax student = argmax teacher. */
  top1: number;
  rows: number;
}

function argmaxRow(x: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let v = 1; v < n; v++) if (x[off + v]! > x[off + best]!) best = v;
  return best;
}

/** Accumulates metrics over rows with weight > 0; teacher is dense logits (N, V) or top-k ids/logprobs (N, k). */
export function teacherMetrics(
  student: ArrayLike<number>, weights: ArrayLike<number>, V: number,
  teacher: { logits: ArrayLike<number> } | { ids: ArrayLike<number>; logprobs: ArrayLike<number>; k: number },
): TeacherMetrics {
  const N = weights.length;
  const ls = new Float64Array(V), lt = new Float64Array(V);
  let kl = 0, agree = 0, rows = 0;
  for (let n = 0; n < N; n++) {
    if (!(weights[n]! > 0)) continue;
    rows++;
    const sTop = argmaxRow(student, n * V, V);
    if ('logits' in teacher) {
      logSoftmaxRow(student, n * V, V, ls);
      logSoftmaxRow(teacher.logits, n * V, V, lt);
      for (let v = 0; v < V; v++) kl += Math.exp(lt[v]!) * (lt[v]! - ls[v]!);
      if (argmaxRow(teacher.logits, n * V, V) === sTop) agree++;
    } else {
      const j = argmaxRow(teacher.logprobs, n * teacher.k, teacher.k);
      if (teacher.ids[n * teacher.k + j] === sTop) agree++;
    }
  }
  return { kl: 'logits' in teacher && rows ? kl / rows : Number.NaN, top1: rows ? agree / rows : Number.NaN, rows };
}
