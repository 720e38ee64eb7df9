// Causal grouped-query attention launcher: plans the flash-style forward (o and the row log-sum-exp) and the
// three-dispatch FlashAttention-2 backward (delta, dq, dk/dv). Pipelines are cached per device, head dim and
// block sizes; block sizes are chosen per kernel and D so workgroup memory stays within 16 KiB.
// Layout (row-major): q (B, T, H, D), k and v (B, T, Hkv, D), o and dout (B, T, H, D), lse and delta (B, H, T).
// Query head h reads kv head h / (H / Hkv). dq, dk, dv are activation gradients: assigned, not accumulated.
import type { Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan, type KernelSource } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import deltaWgsl from './attention_backward_delta.wgsl?raw';
import dkdvWgsl from './attention_backward_dkdv.wgsl?raw';
import dqWgsl from './attention_backward_dq.wgsl?raw';
import backwardTilesWgsl from './attention_backward_tiles.wgsl?raw';
import forwardWgsl from './attention_forward.wgsl?raw';
import tilesWgsl from './attention_tiles.wgsl?raw';
import type { AttentionDims } from './attention.ref.ts';

export type { AttentionDims } from './attention.ref.ts';

export const AttentionParams = uniformStruct('Params', { B: 'u32', T: 'u32', H: 'u32', Hkv: 'u32', scale: 'f32' });

/** Head dimensions the kernels are built for (a compile-time constant of each pipeline). */
export const ATTENTION_HEAD_DIMS = [8, 16, 32, 64, 128] as const;

export type AttentionKernel = 'forward' | 'dq' | 'dkdv';

/** Workgroup-memory floats of each kernel for query block BR, key block BC, head dim D (see the WGSL). */
const SHARED_FLOATS: Record<AttentionKernel, (BR: number, BC: number, D: number) => number> = {
  forward: (BR, BC, D) => BR * D + 2 * BC * D + 2 * BR * BC,
  dq: (BR, BC, D) => 2 * BR * D + 2 * BC * D + BR * BC,
  dkdv: (BR, BC, D) => 2 * BR * D + 2 * BC * D + 2 * BR * BC + 2 * BR,
};
const BLOCK_CANDIDATES: readonly (readonly [number, number])[] = [[16, 16], [16, 8], [8, 8], [8, 4], [4, 4]];
const MAX_SHARED_BYTES = 16384;

/** The largest (query block BR, key block BC) whose workgroup memory fits in 16 KiB (BR·BC ≤ 256 threads). */
export function attentionBlocks(kernel: AttentionKernel, D: number): { BR: number; BC: number } {
  for (const [BR, BC] of BLOCK_CANDIDATES) {
    if (SHARED_FLOATS[kernel](BR, BC, D) * 4 <= MAX_SHARED_BYTES) return { BR, BC };
  }
  throw new Error(`attention ${kernel}: no block size fits head dim D = ${D} in ${MAX_SHARED_BYTES} bytes of workgroup memory`);
}

export interface AttentionForwardArgs extends AttentionDims {
  q: Binding; // (B, T, H, D), read
  k: Binding; // (B, T, Hkv, D), read
  v: Binding; // (B, T, Hkv, D), read
  o: Binding; // (B, T, H, D), written
  lse: Binding; // (B, H, T), written: log Σ_j exp(S) per row, kept for backward
  /** Score scale; 1/√D when absent. */
  scale?: number;
}

export interface AttentionBackwardArgs extends AttentionDims {
  q: Binding; // (B, T, H, D), read
  k: Binding; // (B, T, Hkv, D), read
  v: Binding; // (B, T, Hkv, D), read
  o: Binding; // (B, T, H, D), read: the forward's output
  lse: Binding; // (B, H, T), read: the forward's log-sum-exp
  dout: Binding; // (B, T, H, D), read
  delta: Binding; // (B, H, T), scratch written by the first dispatch and read by the others
  dq: Binding; // (B, T, H, D), written
  dk: Binding; // (B, T, Hkv, D), written
  dv: Binding; // (B, T, Hkv, D), written
  scale?: number;
}

/** The launch of a plan (dimensions, grouping, head dim and scale checked) and its Params values. */
function launch(device: GPUDevice, kernel: string, args: AttentionDims & { scale?: number }) {
  const { B, T, H, Hkv, D } = args;
  const k = new Launch(device, kernel, { B, T, H, Hkv, D });
  if (H % Hkv !== 0) throw k.error(`H = ${H} is not a multiple of Hkv = ${Hkv}`);
  if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(D)) {
    throw k.error(`head dim D = ${D} is not supported (supported: ${ATTENTION_HEAD_DIMS.join(', ')})`);
  }
  const scale = args.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw k.error(`scale must be finite, got ${scale}`);
  return { k, params: { B, T, H, Hkv, scale } };
}

/** A tiled kernel's source and its (query block BR, key block BC) for head dim D: Params, the constants,
 *  attention_tiles.wgsl (and attention_backward_tiles.wgsl for dq and dkdv), then the kernel. */
function tiled(kernel: AttentionKernel, code: string, D: number): KernelSource & { BR: number; BC: number } {
  const { BR, BC } = attentionBlocks(kernel, D);
  const consts = `const D: u32 = ${D}u;\nconst BR: u32 = ${BR}u;\nconst BC: u32 = ${BC}u;\n`;
  const tiles = kernel === 'forward' ? tilesWgsl : tilesWgsl + backwardTilesWgsl;
  return { key: `attention_${kernel}_D${D}_BR${BR}_BC${BC}`, code: AttentionParams.wgsl + consts + tiles + code, BR, BC };
}

/** Forward: o = softmax(scale·q·kᵀ, causal)·v per head, and lse. One dispatch. */
export function planAttentionForward(device: GPUDevice, args: AttentionForwardArgs): KernelPlan {
  const { B, T, H, Hkv, D } = args;
  const qSize = B * T * H * D, kvSize = B * T * Hkv * D;
  const { k, params } = launch(device, 'attention_forward', args);
  const t = k.bindAll({ q: [args.q, qSize], k: [args.k, kvSize], v: [args.v, kvSize], o: [args.o, qSize], lse: [args.lse, B * H * T] });
  const src = tiled('forward', forwardWgsl, D);
  const bindings = [t.q, t.k, t.v, t.o, t.lse, k.uniform(AttentionParams, params).buffer];
  return { dispatches: [k.dispatch(src, bindings, k.workgroups(Math.ceil(T / src.BR), H, B))] };
}

/** Backward: [delta = Σ dout·o, dq, dk and dv], to be encoded in this order. dq, dk, dv are assigned. */
export function planAttentionBackward(device: GPUDevice, args: AttentionBackwardArgs): KernelPlan {
  const { B, T, H, Hkv, D } = args;
  const qSize = B * T * H * D, kvSize = B * T * Hkv * D;
  const { k, params: values } = launch(device, 'attention_backward', args);
  const t = k.bindAll({
    q: [args.q, qSize], k: [args.k, kvSize], v: [args.v, kvSize], o: [args.o, qSize], lse: [args.lse, B * H * T],
    dout: [args.dout, qSize], delta: [args.delta, B * H * T], dq: [args.dq, qSize], dk: [args.dk, kvSize], dv: [args.dv, kvSize],
  });
  const params = k.uniform(AttentionParams, values).buffer;
  const deltaSrc = { key: `attention_delta_D${D}`, code: AttentionParams.wgsl + `const D: u32 = ${D}u;\n` + deltaWgsl };
  const dqSrc = tiled('dq', dqWgsl, D);
  const kvSrc = tiled('dkdv', dkdvWgsl, D);
  return {
    dispatches: [
      // attention_backward_delta.wgsl: 64 rows per workgroup
      k.dispatch(deltaSrc, [t.o, t.dout, t.delta, params], k.grid(Math.ceil((B * T * H) / 64)), `attention_delta ${k.shape}`),
      k.dispatch(dqSrc, [t.q, t.k, t.v, t.dout, t.lse, t.delta, t.dq, params], k.workgroups(Math.ceil(T / dqSrc.BR), H, B), `attention_dq ${k.shape}`),
      k.dispatch(kvSrc, [t.q, t.k, t.v, t.dout, t.lse, t.delta, t.dk, t.dv, params], k.workgroups(Math.ceil(T / kvSrc.BC), Hkv, B), `attention_dkdv ${k.shape}`),
    ],
  };
}

/** FLOPs of the forward (causal: about half of the T² score and P·V products), for benchmarks. */
export const attentionForwardFlops = (d: AttentionDims): number => 2 * 2 * d.B * d.H * d.D * ((d.T * (d.T + 1)) / 2);
