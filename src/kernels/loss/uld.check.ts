// ULD loss checks against the CPU reference at odd shapes, for the tests (and, once registered, the self-test).
// Every input set has: NaN in every padding column (one read would poison the row), a row with weight 0 full of NaN
// (never read), a row whose teacher is all zeros, a row of tied logits (integers: ties across the top-K boundary),
// a teacher row with fewer than K entries and one whose sum is below 1, and non-uniform weights.
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planUldLoss } from './uld.ts';
import { uldLossRef, uldTeacherRow, type UldLossRefArgs } from './uld.ref.ts';

export interface UldCheckConfig {
  N: number;
  V: number;
  /** Real tokens (default V): columns realVocab..V are vocabulary padding. */
  realVocab?: number;
  K: number;
  temperature: number;
  maxBindingBytes?: number;
}

/** CPU inputs of one check (what the reference reads; the GPU gets the same f32 values). */
export interface UldInputs {
  logits: Float32Array; // (N, V)
  teacher: Float32Array; // (N, K)
  weights: Float32Array; // (N)
  lossScale: number;
  weight: number;
}

/** f32 kernel vs f64 reference: losses (O(1) sums of K + 1 terms) and g (c·p_j·(…), c = scale·w/τ). */
export const ULD_LOSS_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };
export const ULD_GRAD_TOLERANCE: Tolerance = { atol: 1e-8, rtol: 1e-5 };

export function describeUldConfig(c: UldCheckConfig): string {
  const pad = c.realVocab !== undefined && c.realVocab !== c.V ? ` (${c.realVocab} real)` : '';
  return `uld N=${c.N} V=${c.V}${pad} K=${c.K} τ=${c.temperature}${c.maxBindingBytes ? ` maxBinding=${c.maxBindingBytes}` : ''}`;
}

export function makeUldInputs(c: UldCheckConfig, seed: number): UldInputs {
  const { N, V, K } = c;
  const Vr = c.realVocab ?? V;
  const rng = new Rng(seed);
  const logits = Float32Array.from({ length: N * V }, () => 2 * rng.normal());
  const teacher = new Float32Array(N * K);
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  for (let n = 0; n < N; n++) {
    logits.fill(Number.NaN, n * V + Vr, (n + 1) * V); // vocabulary padding: never read
    // The teacher's top-k logprobs (k ≤ K; k = K on row 0) of a random distribution over its own 3K tokens.
    const k = n === 0 ? K : 1 + rng.int(K);
    const zt = Array.from({ length: 3 * K }, () => 2 * rng.normal());
    const max = Math.max(...zt);
    const lse = max + Math.log(zt.reduce((a, x) => a + Math.exp(x - max), 0));
    const lp = zt.sort((a, b) => b - a).slice(0, k).map((x) => x - lse);
    teacher.set(uldTeacherRow(lp, c.temperature, K), n * K);
  }
  if (N > 1) { // no ULD term, garbage everywhere
    weights[1] = 0;
    logits.fill(Number.NaN, V, 2 * V);
    teacher.fill(Number.NaN, K, 2 * K);
  }
  if (N > 2) teacher.fill(0, 2 * K, 3 * K); // a teacher with no mass
  // Ties: integers of sd 1, so that at V = 2053 a hundred columns tie for the top-K, several in one thread's stride.
  if (N > 3) for (let j = 0; j < Vr; j++) logits[3 * V + j] = Math.round(logits[3 * V + j]! / 2);
  if (N > 4) for (let i = 0; i < K; i++) teacher[4 * K + i]! *= 0.8; // sum 0.8
  const wsum = weights.reduce((a, b) => a + b, 0);
  return { logits, teacher, weights, lossScale: 1 / wsum, weight: 0.7 };
}

export function uldRefArgs(c: UldCheckConfig, x: UldInputs): UldLossRefArgs {
  return {
    N: c.N, V: c.V, realVocab: c.realVocab, K: c.K, temperature: c.temperature, logits: x.logits, teacher: x.teacher,
    weights: x.weights, scale: x.lossScale * x.weight,
  };
}

/** Runs the kernel once on `x`; returns the losses (N) and g (N, V) read back. */
export async function runUldLoss(device: GPUDevice, c: UldCheckConfig, x: UldInputs): Promise<{ losses: Float32Array; grad: Float32Array; dispatches: number }> {
  const { N, V, K } = c;
  const bufs: Record<string, GPUBuffer> = {
    logits: createStorage(device, x.logits, 'uld check logits'),
    teacher: createStorage(device, x.teacher, 'uld check teacher'),
    weights: createStorage(device, x.weights, 'uld check weights'),
    losses: nanStorage(device, N, 'uld check losses'),
    grad: nanStorage(device, N * V, 'uld check grad'),
  };
  let dispatches = 0;
  const got = await runOnGpu(device, describeUldConfig(c), bufs, () => {
    const plan = planUldLoss(device, {
      N, V, realVocab: c.realVocab, K, temperature: c.temperature, logits: bufs.logits!, teacher: bufs.teacher!,
      weights: bufs.weights!, losses: bufs.losses!, grad: bufs.grad!, lossScale: x.lossScale, weight: x.weight,
      maxBindingBytes: c.maxBindingBytes,
    });
    dispatches = plan.dispatches.length;
    return [plan];
  }, { losses: N, grad: N * V });
  return { ...got, dispatches };
}

export async function checkUldLoss(device: GPUDevice, c: UldCheckConfig, seed: number): Promise<NamedComparison[]> {
  const x = makeUldInputs(c, seed);
  const got = await runUldLoss(device, c, x);
  const ref = uldLossRef(uldRefArgs(c, x));
  return [
    { name: 'losses', ...compareArrays(got.losses, ref.losses, ULD_LOSS_TOLERANCE) },
    { name: 'grad', ...compareArrays(got.grad, ref.grad, ULD_GRAD_TOLERANCE) },
  ];
}

/** Odd shapes with padding, τ ≠ 1, K = 1 and K = Vr (no tail), a large V, one chunked run. */
export const ULD_CHECK_CONFIGS: readonly UldCheckConfig[] = [
  { N: 7, V: 67, realVocab: 61, K: 5, temperature: 1.7 },
  { N: 5, V: 9, realVocab: 7, K: 7, temperature: 1 },
  { N: 5, V: 33, K: 1, temperature: 0.6 },
  { N: 5, V: 2053, K: 20, temperature: 2 },
  { N: 130, V: 9, realVocab: 7, K: 3, temperature: 1.3, maxBindingBytes: 64 * 9 * 4 },
];

export const uldChecks: KernelCheck[] = ULD_CHECK_CONFIGS.map((c) => ({
  kernel: 'uld_loss',
  variant: 'default',
  shape: `N=${c.N} V=${c.V}${c.realVocab !== undefined ? ` Vr=${c.realVocab}` : ''} K=${c.K} τ=${c.temperature}`,
  run: (device: GPUDevice, seed: number) => checkUldLoss(device, c, seed),
}));
