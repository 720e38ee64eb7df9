// Matmul autotuning: times each lab variant on the device at hand for a given problem (shape, transposes) and
// remembers the fastest, so a trainer plans every matmul of a step with the winner for its shape. Timing uses
// timestamp queries when the device has them; every candidate's result is first checked against the 'tiled'
// variant on the same inputs, so a variant that is fast but wrong on this driver is never chosen. Variants whose
// `applies(problem, device)` is false (MATMUL_VARIANT_INFO; e.g. 'subgroup' without the feature) are skipped.
import { createStorage, readF32, submitDispatches } from '../../gpu/dispatch.ts';
import { timeDispatches } from '../../gpu/timing.ts';
import { compareArrays } from '../../util/allclose.ts';
import { packHalf } from '../../util/half.ts';
import { Rng } from '../../util/rng.ts';
import { defaultMatmulVariant, MATMUL_VARIANTS, matmulVariantApplies, planMatmul, type MatmulProblem, type MatmulVariant } from './matmul.ts';

export type { MatmulProblem } from './matmul.ts';

export interface TuneResult {
  winner: MatmulVariant;
  /** ms per run of each variant tried (NaN where it disagreed with 'tiled'). */
  ms: Partial<Record<MatmulVariant, number>>;
  /** Candidates not tried because they do not apply to the problem on this device. */
  skipped: MatmulVariant[];
}

const cache = new WeakMap<GPUDevice, Map<string, TuneResult>>();
// B's format is part of the key: a 16-bit B runs other pipelines (and fewer variants) than an f32 one.
const keyOf = (p: MatmulProblem) => `${p.M}x${p.N}x${p.K}${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}${p.bFormat ?? 'f32'}`;

/** The variant to use without measuring for problems with every dimension over 16 (defaultMatmulVariant). */
export const DEFAULT_MATMUL_VARIANT: MatmulVariant = 'tiled';

/** Whether autotuneMatmul has measured this problem on this device. */
export const isTuned = (device: GPUDevice, p: MatmulProblem): boolean => !!cache.get(device)?.has(keyOf(p));

export function tunedVariant(device: GPUDevice, p: MatmulProblem): MatmulVariant {
  return cache.get(device)?.get(keyOf(p))?.winner ?? defaultMatmulVariant(p);
}

export async function autotuneMatmul(device: GPUDevice, p: MatmulProblem, opts: { iters?: number; variants?: readonly MatmulVariant[] } = {}): Promise<TuneResult> {
  let byKey = cache.get(device);
  if (!byKey) cache.set(device, (byKey = new Map()));
  const hit = byKey.get(keyOf(p));
  if (hit) return hit;
  const { M, N, K } = p;
  // The naive kernel only competes on tiny problems, and where it is the default (a dimension of at most 16).
  const candidates = opts.variants ?? MATMUL_VARIANTS.filter((v) => v !== 'naive' || M * N * K <= 64 ** 3 || defaultMatmulVariant(p) === 'naive');
  const variants = candidates.filter((v) => matmulVariantApplies(v, p, device));
  const skipped = candidates.filter((v) => !variants.includes(v));
  const rng = new Rng(M + N + K);
  const a = createStorage(device, rng.uniformArray(M * K));
  const bValues = rng.uniformArray(K * N), bFormat = p.bFormat ?? 'f32';
  const b = createStorage(device, bFormat === 'f32' ? bValues : packHalf(bValues, bFormat));
  const c = createStorage(device, M * N);
  const ref = createStorage(device, M * N);
  try {
    submitDispatches(device, planMatmul(device, { ...p, a, b, c: ref, variant: 'tiled' }).dispatches);
    const expected = await readF32(device, ref, M * N);
    const ms: TuneResult['ms'] = {};
    let winner: MatmulVariant = defaultMatmulVariant(p);
    for (const variant of variants) {
      const { dispatches } = planMatmul(device, { ...p, a, b, c, variant });
      submitDispatches(device, dispatches);
      // Same inputs, different summation order: agree within f32 rounding of a K-term dot product.
      const agree = compareArrays(await readF32(device, c, M * N), expected, { atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 }).ok;
      ms[variant] = agree ? (await timeDispatches(device, dispatches, opts.iters ?? 5)).ms : NaN;
      if (agree && ms[variant]! < (ms[winner] ?? Infinity)) winner = variant;
    }
    const result = { winner, ms, skipped };
    byKey.set(keyOf(p), result);
    return result;
  } finally {
    for (const buf of [a, b, c, ref]) buf.destroy();
  }
}
