// Classifier-loss checks against the CPU reference at odd shapes, for the tests, the app's self-test and the CLI.
// Every input set has a masked row (w = 0) full of garbage (NaN logits, an out-of-range label, duplicate ids), a
// row without a label, and non-uniform weights. With vocabulary padding (realVocab < V) every padding column of the
// student and teacher logits is NaN: one read of them would poison the row.
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { NO_LABEL, type KdObjective, type TopKPolicy } from './loss.config.ts';
import { planClassifierLoss, type ClassifierLossArgs } from './loss.ts';
import { classifierLossRef, type ClassifierLossRefArgs, type TeacherRef } from './loss.ref.ts';

export interface LossCheckConfig {
  N: number;
  V: number;
  /** Real tokens (default V): columns realVocab..V are vocabulary padding. */
  realVocab?: number;
  objective: KdObjective;
  teacher: 'none' | 'dense' | 'topk';
  k?: number;
  policy?: TopKPolicy;
  temperature: number;
  beta?: number;
  lambda?: number;
  kdWeight?: number; // default 0.7
  ceWeight?: number; // default 0.3
  maxBindingBytes?: number;
}

/** CPU inputs of one check (what the reference reads; the GPU gets the same values). */
export interface LossInputs {
  logits: Float32Array; // (N, V)
  labels: Uint32Array; // (N)
  weights: Float32Array; // (N)
  teacherLogits: Float32Array; // (N, V)
  ids: Uint32Array; // (N, k)
  logprobs: Float32Array; // (N, k)
  lossScale: number;
}

/** f32 kernel vs f64 reference: losses (sums over V of O(1/V) terms) and dz (O(lossScale/V) values). */
export const LOSS_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };
export const DZ_TOLERANCE: Tolerance = { atol: 2e-8, rtol: 2e-5 };

export function describeLossConfig(c: LossCheckConfig): string {
  const t = c.teacher === 'topk' ? `topk k=${c.k} ${c.policy}` : c.teacher;
  const extra = c.objective === 'jsd' ? ` β=${c.beta}` : c.objective.startsWith('skew') ? ` λ=${c.lambda}` : '';
  const pad = c.realVocab !== undefined && c.realVocab !== c.V ? ` (${c.realVocab} real)` : '';
  return `${c.objective}${extra} ${t} N=${c.N} V=${c.V}${pad} τ=${c.temperature}${c.maxBindingBytes ? ` maxBinding=${c.maxBindingBytes}` : ''}`;
}

export function makeLossInputs(c: LossCheckConfig, seed: number): LossInputs {
  const { N, V } = c;
  const Vr = c.realVocab ?? V;
  const k = c.k ?? 0;
  const rng = new Rng(seed);
  const normal = (n: number, sd: number) => Float32Array.from({ length: n }, () => sd * rng.normal());
  const logits = normal(N * V, 2);
  const teacherLogits = normal(N * V, 2);
  const labels = Uint32Array.from({ length: N }, () => rng.int(Vr));
  const weights = Float32Array.from({ length: N }, () => 0.5 + rng.next());
  const ids = new Uint32Array(N * k);
  const logprobs = new Float32Array(N * k);
  for (let n = 0; n < N; n++) {
    logits.fill(Number.NaN, n * V + Vr, (n + 1) * V); // vocabulary padding: never read
    teacherLogits.fill(Number.NaN, n * V + Vr, (n + 1) * V);
    // The teacher's true top-k of log_softmax(zt) over the real tokens, in a shuffled order.
    const row = teacherLogits.subarray(n * V, n * V + Vr);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    const top = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
    for (let r = k - 1; r > 0; r--) {
      const j = rng.int(r + 1);
      [top[r], top[j]] = [top[j]!, top[r]!];
    }
    top.forEach((id, r) => {
      ids[n * k + r] = id;
      logprobs[n * k + r] = row[id]! - lse;
    });
  }
  if (N > 1) {
    // Row 1 masked, with garbage the kernel must never read.
    weights[1] = 0;
    logits.fill(Number.NaN, V, 2 * V);
    labels[1] = V + 5;
    ids.fill(0, k, 2 * k);
  }
  if (N > 2) labels[2] = NO_LABEL;
  const wsum = weights.reduce((a, b) => a + b, 0);
  return { logits, labels, weights, teacherLogits, ids, logprobs, lossScale: 1 / wsum };
}

function refArgs(c: LossCheckConfig, x: LossInputs): ClassifierLossRefArgs {
  const teacher: TeacherRef | undefined =
    c.teacher === 'dense' ? { kind: 'dense', logits: x.teacherLogits }
    : c.teacher === 'topk' ? { kind: 'topk', k: c.k!, ids: x.ids, logprobs: x.logprobs, policy: c.policy! }
    : undefined;
  return {
    N: c.N, V: c.V, realVocab: c.realVocab, logits: x.logits, labels: x.labels, weights: x.weights, teacher, objective: c.objective,
    temperature: c.temperature, kdWeight: c.kdWeight ?? 0.7, ceWeight: c.ceWeight ?? 0.3, lossScale: x.lossScale,
    beta: c.beta, lambda: c.lambda,
  };
}

export function createStorageU32(device: GPUDevice, data: Uint32Array, label?: string): GPUBuffer {
  return createStorage(device, new Float32Array(data.buffer, data.byteOffset, data.length), label);
}

/** Runs the kernel once on `x`; returns the losses (N, 2) and dz (N, V) read back. */
export async function runClassifierLoss(device: GPUDevice, c: LossCheckConfig, x: LossInputs): Promise<{ losses: Float32Array; dz: Float32Array; dispatches: number }> {
  const { N, V } = c;
  const r = refArgs(c, x);
  const bufs: Record<string, GPUBuffer> = {
    logits: createStorage(device, x.logits, 'check logits'),
    losses: nanStorage(device, N * 2, 'check losses'),
    labels: createStorageU32(device, x.labels, 'check labels'),
    weights: createStorage(device, x.weights, 'check weights'),
  };
  if (c.teacher === 'dense') bufs.teacher = createStorage(device, x.teacherLogits, 'check teacher');
  if (c.teacher === 'topk') {
    bufs.ids = createStorageU32(device, x.ids, 'check ids');
    bufs.logprobs = createStorage(device, x.logprobs, 'check logprobs');
  }
  const args: ClassifierLossArgs = {
    N, V, realVocab: c.realVocab, logits: bufs.logits!, losses: bufs.losses!, labels: bufs.labels!, weights: bufs.weights!,
    teacher: c.teacher === 'dense' ? { kind: 'dense', logits: bufs.teacher! }
      : c.teacher === 'topk' ? { kind: 'topk', k: c.k!, policy: c.policy!, ids: bufs.ids!, logprobs: bufs.logprobs! } : undefined,
    objective: c.objective, temperature: r.temperature, kdWeight: r.kdWeight, ceWeight: r.ceWeight,
    lossScale: x.lossScale, beta: c.beta, lambda: c.lambda, maxBindingBytes: c.maxBindingBytes,
  };
  let dispatches = 0;
  const got = await runOnGpu(device, `classifier_loss ${describeLossConfig(c)}`, bufs, () => {
    const plan = planClassifierLoss(device, args);
    dispatches = plan.dispatches.length;
    return [plan];
  }, { losses: N * 2, logits: N * V });
  return { losses: got.losses, dz: got.logits, dispatches };
}

export async function checkClassifierLoss(device: GPUDevice, c: LossCheckConfig, seed: number): Promise<NamedComparison[]> {
  const x = makeLossInputs(c, seed);
  const got = await runClassifierLoss(device, c, x);
  const ref = classifierLossRef(refArgs(c, x));
  return [
    { name: 'losses', ...compareArrays(got.losses, ref.losses, LOSS_TOLERANCE) },
    { name: 'dz', ...compareArrays(got.dz, ref.dz, DZ_TOLERANCE) },
  ];
}

/** The registry's checks: every objective, each teacher kind and policy, τ ∈ {1, 2}, odd shapes, one chunked run. */
export const LOSS_CHECK_CONFIGS: readonly LossCheckConfig[] = [
  { N: 17, V: 130, objective: 'none', teacher: 'none', temperature: 1, kdWeight: 0, ceWeight: 1 },
  { N: 3, V: 300, objective: 'fkl', teacher: 'dense', temperature: 2 },
  { N: 17, V: 65, objective: 'jsd', beta: 0.5, teacher: 'topk', k: 5, policy: 'uniform', temperature: 1 },
  { N: 33, V: 130, objective: 'rkl', teacher: 'topk', k: 5, policy: 'tail-bucket', temperature: 2 },
  { N: 3, V: 7, objective: 'tvd', teacher: 'topk', k: 1, policy: 'renormalize', temperature: 1 },
  { N: 17, V: 65, objective: 'skew_fkl', lambda: 0.1, teacher: 'dense', temperature: 2 },
  { N: 3, V: 130, objective: 'skew_rkl', lambda: 0.1, teacher: 'topk', k: 130, policy: 'uniform', temperature: 1 },
  { N: 130, V: 7, objective: 'fkl', teacher: 'topk', k: 5, policy: 'renormalize', temperature: 2, maxBindingBytes: 64 * 7 * 4 },
  { N: 3, V: 1, objective: 'fkl', teacher: 'dense', temperature: 1 },
  // Vocabulary padding (realVocab < V, NaN in every padding column): CE alone, dense, each top-k policy, chunked.
  { N: 17, V: 130, realVocab: 97, objective: 'none', teacher: 'none', temperature: 1, kdWeight: 0, ceWeight: 1 },
  { N: 5, V: 131, realVocab: 101, objective: 'fkl', teacher: 'dense', temperature: 2 },
  { N: 9, V: 67, realVocab: 61, objective: 'jsd', beta: 0.3, teacher: 'topk', k: 5, policy: 'uniform', temperature: 1 },
  { N: 3, V: 300, realVocab: 259, objective: 'rkl', teacher: 'topk', k: 7, policy: 'tail-bucket', temperature: 2 },
  { N: 130, V: 9, realVocab: 7, objective: 'tvd', teacher: 'topk', k: 3, policy: 'renormalize', temperature: 1, maxBindingBytes: 64 * 9 * 4 },
];

export const lossChecks: KernelCheck[] = LOSS_CHECK_CONFIGS.map((c) => ({
  kernel: 'classifier_loss',
  variant: `${c.objective}_${c.teacher}${c.policy ? `_${c.policy}` : ''}`,
  shape: `N=${c.N} V=${c.V}${c.realVocab !== undefined ? ` Vr=${c.realVocab}` : ''}${c.k ? ` k=${c.k}` : ''} τ=${c.temperature}`,
  run: (device: GPUDevice, seed: number) => checkClassifierLoss(device, c, seed),
}));
