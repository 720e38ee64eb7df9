// Comparing a kernel's output with its CPU reference: |actual − expected| ≤ atol + rtol·|scale| per element,
// where scale is |expected| or, for sums with cancellation, a caller-given magnitude (e.g. Σ|a·b| for matmul).

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Comparison {
  ok: boolean;
  count: number;
  /** Elements that fail the bound. */
  failures: number;
  maxAbsErr: number;
  /** max |err| / (atol + rtol·|scale|): ≤ 1 means within tolerance. */
  worstRatio: number;
  /** First worst element (index, actual, expected), or -1. */
  worstIndex: number;
  worstActual: number;
  worstExpected: number;
  /** NaN or ±Inf in actual where expected is finite. */
  nonFinite: number;
}

export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  scale: ArrayLike<number> = expected,
): Comparison {
  if (actual.length !== expected.length) {
    throw new Error(`compareArrays: actual has ${actual.length} elements, expected ${expected.length}`);
  }
  const r: Comparison = {
    ok: true, count: actual.length, failures: 0, maxAbsErr: 0, worstRatio: 0,
    worstIndex: -1, worstActual: NaN, worstExpected: NaN, nonFinite: 0,
  };
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e);
    const bound = tol.atol + tol.rtol * Math.abs(scale[i]!);
    const bad = !(err <= bound); // NaN fails
    if (!Number.isFinite(a) && Number.isFinite(e)) r.nonFinite++;
    const ratio = Number.isNaN(err) ? Infinity : err / bound;
    if (bad) r.failures++;
    if (err > r.maxAbsErr || Number.isNaN(err)) r.maxAbsErr = Number.isNaN(err) ? Infinity : Math.max(r.maxAbsErr, err);
    if (ratio > r.worstRatio || r.worstIndex < 0) {
      r.worstRatio = ratio;
      r.worstIndex = i;
      r.worstActual = a;
      r.worstExpected = e;
    }
  }
  r.ok = r.failures === 0;
  return r;
}

export function describeComparison(c: Comparison): string {
  return c.ok
    ? `ok: ${c.count} elements, max |err| ${c.maxAbsErr.toExponential(2)}, worst err/bound ${c.worstRatio.toFixed(3)}`
    : `${c.failures} of ${c.count} elements out of tolerance (${c.nonFinite} non-finite); worst at [${c.worstIndex}]: ` +
        `got ${c.worstActual}, expected ${c.worstExpected} (err/bound ${c.worstRatio.toFixed(2)})`;
}
