// Kernel self-test: every registered KernelCheck (seeded inputs, GPU vs CPU reference) with progress. The same
// code runs in vitest (Node + Dawn), in the app's engine worker (Chromium) and in `cli selftest`.
import { describeComparison } from '../util/allclose.ts';
import type { KernelCheck } from '../kernels/check.ts';
import { ALL_CHECKS } from './checks.ts';

export interface SelftestCase {
  kernel: string;
  variant: string;
  shape: string;
  ok: boolean;
  maxAbsErr: number;
  worstRatio: number;
  detail: string;
  /** Wall time of upload + dispatch + readback + reference, ms (not a benchmark). */
  ms: number;
}

export interface SelftestProgress {
  done: number;
  total: number;
  message: string;
  last?: SelftestCase;
}

export interface SelftestReport {
  ok: boolean;
  cases: SelftestCase[];
  ms: number;
}

export interface SelftestOptions {
  checks?: readonly KernelCheck[];
  seed?: number;
  onProgress?: (p: SelftestProgress) => void;
}

const now = () => globalThis.performance.now();

export async function runCheck(device: GPUDevice, check: KernelCheck, seed: number): Promise<SelftestCase> {
  const t0 = now();
  const base = { kernel: check.kernel, variant: check.variant, shape: check.shape };
  try {
    const cmps = await check.run(device, seed);
    if (cmps.length === 0) throw new Error('check compared nothing');
    const worst = cmps.reduce((w, c) => (c.worstRatio > w.worstRatio || !c.ok ? c : w));
    return {
      ...base,
      ok: cmps.every((c) => c.ok),
      maxAbsErr: Math.max(...cmps.map((c) => c.maxAbsErr)),
      worstRatio: Math.max(...cmps.map((c) => c.worstRatio)),
      detail: cmps.map((c) => `${c.name}: ${describeComparison(c)}`).join('; ') + (worst.ok ? '' : ` [worst: ${worst.name}]`),
      ms: now() - t0,
    };
  } catch (e) {
    return { ...base, ok: false, maxAbsErr: NaN, worstRatio: NaN, detail: String(e), ms: now() - t0 };
  }
}

export async function runSelftest(device: GPUDevice, opts: SelftestOptions = {}): Promise<SelftestReport> {
  const checks = opts.checks ?? ALL_CHECKS;
  const seed = opts.seed ?? 1234;
  const t0 = now();
  const cases: SelftestCase[] = [];
  for (const check of checks) {
    opts.onProgress?.({ done: cases.length, total: checks.length, message: `${check.kernel}_${check.variant} ${check.shape}` });
    const c = await runCheck(device, check, seed + cases.length);
    cases.push(c);
    opts.onProgress?.({ done: cases.length, total: checks.length, message: `${c.kernel}_${c.variant} ${c.shape}: ${c.ok ? 'ok' : 'FAILED'}`, last: c });
  }
  return { ok: cases.every((c) => c.ok), cases, ms: now() - t0 };
}
