// Attention checks against the CPU reference at odd shapes (T not a multiple of any block, several blocks,
// grouped heads, every block-size regime of D), for the tests, the app's self-test and the CLI. Each check runs
// the forward, then the backward on the forward's own o and lse, and compares o, lse, dq, dk and dv.
import { createStorage } from '../../gpu/dispatch.ts';
import { nanStorage, runOnGpu, type KernelCheck, type NamedComparison } from '../check.ts';
import { compareArrays, type Tolerance } from '../../util/allclose.ts';
import { Rng } from '../../util/rng.ts';
import { planAttentionBackward, planAttentionForward, type AttentionDims } from './attention.ts';
import { attentionBackwardRef, attentionForwardRef } from './attention.ref.ts';

/** Odd shapes: T = 1, a single partial block, several blocks with a tail; MHA, GQA and MQA groupings. */
export const ATTENTION_CHECK_SHAPES: readonly AttentionDims[] = [
  { B: 1, T: 1, H: 1, Hkv: 1, D: 16 },
  { B: 1, T: 65, H: 1, Hkv: 1, D: 16 },
  { B: 2, T: 17, H: 4, Hkv: 2, D: 16 },
  { B: 1, T: 33, H: 6, Hkv: 2, D: 8 },
  { B: 1, T: 70, H: 4, Hkv: 4, D: 8 },
  { B: 2, T: 7, H: 4, Hkv: 4, D: 32 },
  { B: 1, T: 33, H: 4, Hkv: 2, D: 64 },
  { B: 1, T: 17, H: 2, Hkv: 1, D: 128 },
];

/** f32 kernels against the f64 reference; inputs of magnitude ≤ 2, outputs and gradients of order 1.
 *  SwiftShader stays under 0.15 of this bound; the rest is room for GPUs' less exact exp. */
export const ATTENTION_TOLERANCE: Tolerance = { atol: 2e-6, rtol: 2e-5 };

export interface AttentionInputs {
  q: Float32Array; // (B, T, H, D)
  k: Float32Array; // (B, T, Hkv, D)
  v: Float32Array; // (B, T, Hkv, D)
  dout: Float32Array; // (B, T, H, D)
}

export function attentionInputs(dims: AttentionDims, seed: number): AttentionInputs {
  const { B, T, H, Hkv, D } = dims;
  const rng = new Rng(seed);
  // q spans [-2, 2] so that scores spread enough for the running max to move between key blocks.
  return {
    q: rng.uniformArray(B * T * H * D, -2, 2),
    k: rng.uniformArray(B * T * Hkv * D),
    v: rng.uniformArray(B * T * Hkv * D),
    dout: rng.uniformArray(B * T * H * D),
  };
}

export interface AttentionOutputs {
  o: Float32Array; // (B, T, H, D)
  lse: Float32Array; // (B, H, T)
  dq: Float32Array; // (B, T, H, D)
  dk: Float32Array; // (B, T, Hkv, D)
  dv: Float32Array; // (B, T, Hkv, D)
}

/** Runs forward then backward on the GPU; outputs start as NaN so unwritten elements fail the comparison. */
export async function runAttention(device: GPUDevice, dims: AttentionDims, x: AttentionInputs): Promise<AttentionOutputs> {
  const { B, T, H, Hkv, D } = dims;
  const qSize = B * T * H * D;
  const kvSize = B * T * Hkv * D;
  const bufs = {
    q: createStorage(device, x.q, 'attn q'),
    k: createStorage(device, x.k, 'attn k'),
    v: createStorage(device, x.v, 'attn v'),
    dout: createStorage(device, x.dout, 'attn dout'),
    o: nanStorage(device, qSize, 'attn o'),
    lse: nanStorage(device, B * H * T, 'attn lse'),
    delta: nanStorage(device, B * H * T, 'attn delta'),
    dq: nanStorage(device, qSize, 'attn dq'),
    dk: nanStorage(device, kvSize, 'attn dk'),
    dv: nanStorage(device, kvSize, 'attn dv'),
  };
  return runOnGpu(device, `attention ${attentionShapeName(dims)}`, bufs, () => [
    planAttentionForward(device, { ...dims, ...bufs }),
    planAttentionBackward(device, { ...dims, ...bufs }),
  ], { o: qSize, lse: B * H * T, dq: qSize, dk: kvSize, dv: kvSize });
}

export async function checkAttention(device: GPUDevice, dims: AttentionDims, seed: number): Promise<NamedComparison[]> {
  const x = attentionInputs(dims, seed);
  const got = await runAttention(device, dims, x);
  const fwd = attentionForwardRef(x.q, x.k, x.v, dims);
  const bwd = attentionBackwardRef(x.q, x.k, x.v, x.dout, dims);
  return [
    { name: 'o', ...compareArrays(got.o, fwd.o, ATTENTION_TOLERANCE) },
    { name: 'lse', ...compareArrays(got.lse, fwd.lse, ATTENTION_TOLERANCE) },
    { name: 'dq', ...compareArrays(got.dq, bwd.dq, ATTENTION_TOLERANCE) },
    { name: 'dk', ...compareArrays(got.dk, bwd.dk, ATTENTION_TOLERANCE) },
    { name: 'dv', ...compareArrays(got.dv, bwd.dv, ATTENTION_TOLERANCE) },
  ];
}

export const attentionShapeName = (d: AttentionDims): string => `B=${d.B} T=${d.T} H=${d.H} Hkv=${d.Hkv} D=${d.D}`;

export const attentionChecks: KernelCheck[] = ATTENTION_CHECK_SHAPES.map((dims) => ({
  kernel: 'attention',
  variant: 'flash',
  shape: attentionShapeName(dims),
  run: (device: GPUDevice, seed: number) => checkAttention(device, dims, seed),
}));
