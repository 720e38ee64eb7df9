// RoPE checks against the CPU reference at odd shapes: forward (x → x') and backward (dy → dx) in place, in one
// submission, including a large position offset (pos ≈ 4000) for angle accuracy.
import { createStorage } from '../../gpu/dispatch.ts';
import { runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planRopeBackward, planRopeForward } from './rope.ts';
import { ropeBackwardRef, ropeForwardRef } from './rope.ref.ts';
import { ropeInvFreq } from '../../model/config.ts';

export interface RopeCheckShape {
  B: number;
  T: number;
  H: number;
  D: number;
  posOffset: number;
  /** Llama-3-scaled frequencies (θ = 500000, factor 8, low/high 1/4, original length 64: every regime at D = 64). */
  llama3?: boolean;
}

/** The llama3 scaling the checks use: small original length so that low, medium and high frequencies all occur. */
export const ROPE_CHECK_LLAMA3 = { headDim: 64, ropeTheta: 500000, ropeScaling: { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } };

/** Relative to |x_j| + |x_{j+D/2}| of the pair: f32 rounding plus cos/sin error (angles are exact to ~2e-7 rad). */
export const ROPE_TOLERANCE: Tolerance = { atol: 1e-7, rtol: 5e-7 };

export const ROPE_CHECK_SHAPES: readonly RopeCheckShape[] = [
  { B: 1, T: 1, H: 1, D: 2, posOffset: 7 },
  { B: 2, T: 17, H: 3, D: 8, posOffset: 0 },
  { B: 1, T: 33, H: 1, D: 64, posOffset: 0 },
  { B: 3, T: 7, H: 3, D: 64, posOffset: 5 },
  { B: 1, T: 3, H: 3, D: 64, posOffset: 4000 },
  { B: 2, T: 3, H: 1, D: 130, posOffset: 8190 },
  { B: 2, T: 9, H: 3, D: 64, posOffset: 3, llama3: true },
];

/** |x_j| + |x_{j+D/2}| for both elements of every pair. */
export function ropePairScale(x: ArrayLike<number>, D: number): Float64Array {
  const s = new Float64Array(x.length);
  const half = D / 2;
  for (let base = 0; base < x.length; base += D) {
    for (let j = 0; j < half; j++) s[base + j] = s[base + j + half] = Math.abs(x[base + j]!) + Math.abs(x[base + j + half]!);
  }
  return s;
}

export async function checkRope(device: GPUDevice, shape: RopeCheckShape, seed: number): Promise<NamedComparison[]> {
  const { B, T, H, D, posOffset } = shape;
  const invFreq = shape.llama3 ? ropeInvFreq({ ...ROPE_CHECK_LLAMA3, headDim: D }) : undefined;
  const n = B * T * H * D;
  const rng = new Rng(seed);
  const x = rng.uniformArray(n, -2, 2);
  const dy = rng.uniformArray(n);
  const bufs = { x: createStorage(device, x, 'rope check x'), dy: createStorage(device, dy, 'rope check dy') };
  const got = await runOnGpu(device, `rope B=${B} T=${T} H=${H} D=${D}`, bufs, () => [
    planRopeForward(device, { x: bufs.x, B, T, H, D, posOffset, invFreq }),
    planRopeBackward(device, { x: bufs.dy, B, T, H, D, posOffset, invFreq }),
  ], { x: n, dy: n });
  const opts = { posOffset, invFreq };
  return [
    { name: 'y', ...compareArrays(got.x, ropeForwardRef(x, B, T, H, D, opts), ROPE_TOLERANCE, ropePairScale(x, D)) },
    { name: 'dx', ...compareArrays(got.dy, ropeBackwardRef(dy, B, T, H, D, opts), ROPE_TOLERANCE, ropePairScale(dy, D)) },
  ];
}

export const ropeChecks: KernelCheck[] = ROPE_CHECK_SHAPES.map((shape) => ({
  kernel: 'rope',
  variant: 'default',
  shape: `B=${shape.B} T=${shape.T} H=${shape.H} D=${shape.D} pos0=${shape.posOffset}${shape.llama3 ? ' llama3' : ''}`,
  run: (device: GPUDevice, seed: number) => checkRope(device, shape, seed),
}));
