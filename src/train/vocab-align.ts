// Teacher and student vocabularies that differ only by padding (e.g. a teacher's 152064-wide lm_head over a
// 151936-token tokenizer): the teacher's dense logits are re-laid to the student's width V before the loss.
// Columns past the real vocabulary are padding: dropped when the teacher is wider, filled with a very negative
// logit (probability 0) when it is narrower. Top-k teachers need no change except rejecting ids ≥ V.

const NEG = -1e30;

/** (N, Vt) teacher logits → (N, Vs); `realVocab` (≤ both widths) is the number of real tokens. */
export function alignTeacherLogits(logits: Float32Array, N: number, Vt: number, Vs: number, realVocab = Math.min(Vt, Vs)): Float32Array {
  if (logits.length !== N * Vt) throw new Error(`teacher logits: ${logits.length} values, expected N·Vt = ${N}·${Vt}`);
  if (realVocab > Vt || realVocab > Vs) throw new Error(`teacher/student vocabularies differ beyond padding: ${realVocab} real tokens, teacher width ${Vt}, student width ${Vs}`);
  if (Vt === Vs) return logits;
  const out = new Float32Array(N * Vs).fill(NEG);
  for (let n = 0; n < N; n++) out.set(logits.subarray(n * Vt, n * Vt + realVocab), n * Vs);
  return out;
}

/** Rejects top-k teacher ids outside the student's real vocabulary, naming the first offender. */
export function checkTeacherIds(ids: ArrayLike<number>, k: number, realVocab: number): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i]! >= realVocab) throw new Error(`teacher top-k id ${ids[i]} (row ${Math.floor(i / k)}, slot ${i % k}) is outside the student's vocabulary of ${realVocab}: the tokenizers differ beyond padding`);
  }
}
