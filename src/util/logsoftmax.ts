// Log-sum-exp and log-softmax of one row of logits, in float64, max-shifted: shared by the trainer's teacher
// metrics, the local teacher's distributions and the tests' oracles over other runtimes' logits.

/** log Σ exp(x[off .. off+n)). */
export function logSumExp(x: ArrayLike<number>, off: number, n: number): number {
  let max = -Infinity;
  for (let v = 0; v < n; v++) max = Math.max(max, x[off + v]!);
  let sum = 0;
  for (let v = 0; v < n; v++) sum += Math.exp(x[off + v]! - max);
  return max + Math.log(sum);
}

/** out[v] = x[off + v] − logsumexp(x[off .. off+n)). */
export function logSoftmaxRow(x: ArrayLike<number>, off: number, n: number, out: { [i: number]: number; length: number }): void {
  const lse = logSumExp(x, off, n);
  for (let v = 0; v < n; v++) out[v] = x[off + v]! - lse;
}
