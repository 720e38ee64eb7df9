// Hidden-loss checks against the CPU reference at odd shapes, for the tests, the app's self-test and the CLI.
// Every input set has a masked row (w = 0) full of garbage (NaN, Inf), non-uniform weights, and for the cosine
// loss an all-zero student row and an all-zero teacher row (the ε-guarded case).
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planHiddenLoss, type HiddenLossKind } from './hidden.ts';
import { HIDDEN_COS_EPS, hiddenLossRef } from './hidden.ref.ts';

/** f32 sums of C terms vs the f64 reference. */
export const HIDDEN_LOSS_TOLERANCE: Tolerance = { atol: 1e-6, rtol: 1e-5 };
/** dp: relative to the largest |dp| of its row (cosine's two terms may cancel). */
export const HIDDEN_DP_RTOL = 2e-5;

export interface HiddenInputs {
  p: Float32Array; // (N, Cs)
  h: Float32Array; // (N, Cs)
  weights: Float32Array; // (N)
  lossScale: number;
}

/** Seeded inputs with the special rows described in the banner (rows 1, 2, 3 when N is large enough). */
export function hiddenInputs(N: number, Cs: number, seed: number): HiddenInputs {
  const rng = new Rng(seed);
  const p = rng.uniformArray(N * Cs, -2, 2);
  const h = rng.uniformArray(N * Cs, -2, 2);
  // Teacher close to the student on some rows (small losses), far on others.
  for (let i = 0; i < N * Cs; i++) if ((i / Cs | 0) % 2 === 0) h[i] = p[i]! + 0.1 * h[i]!;
  const weights = Float32Array.from({ length: N }, () => 0.25 + rng.next());
  if (N > 1) { weights[1] = 0; p.fill(NaN, Cs, 2 * Cs); h.fill(Infinity, Cs, 2 * Cs); }
  if (N > 2) p.fill(0, 2 * Cs, 3 * Cs);
  if (N > 3) h.fill(0, 3 * Cs, 4 * Cs);
  return { p, h, weights, lossScale: 1 / (3 + N) };
}

export async function checkHiddenLoss(device: GPUDevice, N: number, Cs: number, kind: HiddenLossKind, seed: number): Promise<NamedComparison[]> {
  const x = hiddenInputs(N, Cs, seed);
  const bufs = {
    p: createStorage(device, x.p), h: createStorage(device, x.h), weights: createStorage(device, x.weights),
    losses: nanStorage(device, N), dp: nanStorage(device, N * Cs),
  };
  const got = await runOnGpu(device, `hidden_loss ${kind} N=${N} Cs=${Cs}`, bufs, () => {
    // Planned with a wrong lossScale, then updated: the check also covers update().
    const plan = planHiddenLoss(device, { N, Cs, kind, lossScale: 123, ...bufs });
    plan.update({ lossScale: x.lossScale });
    return [plan];
  }, { losses: N, dp: N * Cs });
  const ref = hiddenLossRef({ N, Cs, kind, ...x });
  const rowMax = dpScale(x, N, Cs, kind, ref.dp);
  return [
    { name: 'losses', ...compareArrays(got.losses, ref.losses, HIDDEN_LOSS_TOLERANCE) },
    { name: 'dp', ...compareArrays(got.dp, ref.dp, { atol: 1e-12, rtol: HIDDEN_DP_RTOL }, rowMax) },
  ];
}

/**
 * Scale of each dp element for the tolerance: the largest magnitude in its row of the terms dp is made of. Rows
 * differ by orders of magnitude (a zero student row under the cosine loss has |dp| ~ 1/ε), so a global scale would
 * hide errors in the ordinary rows; and the cosine's two terms k2·p − k1·h cancel (exactly, when Cs = 1), so the
 * scale is that of the terms, not of their difference.
 */
function dpScale(x: HiddenInputs, N: number, Cs: number, kind: HiddenLossKind, dp: Float64Array): Float64Array {
  const out = new Float64Array(N * Cs);
  for (let n = 0; n < N; n++) {
    let m = 0;
    if (kind === 'mse') {
      for (let c = 0; c < Cs; c++) m = Math.max(m, Math.abs(dp[n * Cs + c]!));
    } else if (x.weights[n] !== 0) {
      let ph = 0, pp = 0, hh = 0, pm = 0, hm = 0;
      for (let c = 0; c < Cs; c++) {
        const a = x.p[n * Cs + c]!, b = x.h[n * Cs + c]!;
        ph += a * b; pp += a * a; hh += b * b; pm = Math.max(pm, Math.abs(a)); hm = Math.max(hm, Math.abs(b));
      }
      const rp = Math.sqrt(pp), np = rp + HIDDEN_COS_EPS, nh = Math.sqrt(hh) + HIDDEN_COS_EPS, g = x.lossScale * x.weights[n]!;
      m = (g * hm) / (np * nh) + (rp > 0 ? (g * Math.abs(ph) * pm) / (np * np * nh * rp) : 0);
    }
    out.fill(m, n * Cs, (n + 1) * Cs);
  }
  return out;
}

const SHAPES: [N: number, Cs: number, kind: HiddenLossKind][] = [
  [1, 1, 'mse'],
  [7, 33, 'mse'],
  [17, 257, 'mse'],
  [5, 1, 'cosine'],
  [7, 33, 'cosine'],
  [17, 257, 'cosine'],
  [3, 650, 'cosine'],
];

export const hiddenChecks: KernelCheck[] = SHAPES.map(([N, Cs, kind]) => ({
  kernel: 'hidden_loss',
  variant: kind,
  shape: `N=${N} Cs=${Cs}`,
  run: (device, seed) => checkHiddenLoss(device, N, Cs, kind, seed),
}));
