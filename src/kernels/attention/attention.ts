// Causal grouped-query attention launcher: plans the flash-style forward (o and the row log-sum-exp) and the
// three-dispatch FlashAttention-2 backward (delta, dq, dk/dv). Pipelines are cached per device, head dim and
// block sizes; block sizes are chosen per kernel and D so workgroup memory stays within 16 KiB.
// Layout (row-major): q (B, T, H, D), k and v (B, T, Hkv, D), o and dout (B, T, H, D), lse and delta (B, H, T).
// Query head h reads kv head h / (H / Hkv). dq, dk, dv are activation gradients: assigned, not accumulated.
import { bindBuffers, bindingBytes, cachedPipeline, createUniform, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import deltaWgsl from './attention_backward_delta.wgsl?raw';
import dkdvWgsl from './attention_backward_dkdv.wgsl?raw';
import dqWgsl from './attention_backward_dq.wgsl?raw';
import forwardWgsl from './attention_forward.wgsl?raw';
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

function validate(device: GPUDevice, kernel: string, args: AttentionDims, buffers: Record<string, [Binding, number]>): string {
  const { B, T, H, Hkv, D } = args;
  for (const [name, v] of Object.entries({ B, T, H, Hkv, D })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${name} must be a positive integer, got ${v}`);
  }
  const shape = `B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D}`;
  if (H % Hkv !== 0) throw new Error(`${kernel} ${shape}: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(D)) {
    throw new Error(`${kernel} ${shape}: head dim D = ${D} is not supported (supported: ${ATTENTION_HEAD_DIMS.join(', ')})`);
  }
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  for (const [name, [binding, elems]] of Object.entries(buffers)) {
    const bytes = bindingBytes(binding);
    if (bytes < elems * 4) throw new Error(`${kernel} ${shape}: buffer ${name} has ${bytes} bytes, needs ${elems * 4}`);
    if (elems * 4 > maxBinding) {
      throw new Error(`${kernel} ${shape}: ${name} is ${elems * 4} bytes, over this device's maxStorageBufferBindingSize (${maxBinding})`);
    }
  }
  return shape;
}

function checkGroups(device: GPUDevice, label: string, workgroups: [number, number, number]): [number, number, number] {
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((n) => n > maxGroups)) {
    throw new Error(`${label}: needs ${workgroups.join('×')} workgroups, over the limit of ${maxGroups} per dimension`);
  }
  return workgroups;
}

function scaleOf(kernel: string, args: { D: number; scale?: number }): number {
  const scale = args.scale ?? 1 / Math.sqrt(args.D);
  if (!Number.isFinite(scale)) throw new Error(`${kernel}: scale must be finite, got ${scale}`);
  return scale;
}

function tiledPipeline(device: GPUDevice, kernel: AttentionKernel, code: string, D: number): { pipeline: GPUComputePipeline; BR: number; BC: number } {
  const { BR, BC } = attentionBlocks(kernel, D);
  const consts = `const D: u32 = ${D}u;\nconst BR: u32 = ${BR}u;\nconst BC: u32 = ${BC}u;\n`;
  const pipeline = cachedPipeline(device, `attention_${kernel}_D${D}_BR${BR}_BC${BC}`, AttentionParams.wgsl + consts + code);
  return { pipeline, BR, BC };
}

/** Forward: o = softmax(scale·q·kᵀ, causal)·v per head, and lse. One dispatch. */
export function planAttentionForward(device: GPUDevice, args: AttentionForwardArgs): Dispatch {
  const { B, T, H, Hkv, D } = args;
  const kernel = 'attention_forward';
  const qSize = B * T * H * D;
  const kvSize = B * T * Hkv * D;
  const shape = validate(device, kernel, args, {
    q: [args.q, qSize], k: [args.k, kvSize], v: [args.v, kvSize], o: [args.o, qSize], lse: [args.lse, B * H * T],
  });
  const scale = scaleOf(kernel, args);
  const { pipeline, BR } = tiledPipeline(device, 'forward', forwardWgsl, D);
  const uniforms = createUniform(device, AttentionParams.pack({ B, T, H, Hkv, scale }), `${kernel} ${shape} params`);
  const bindGroup = bindBuffers(device, pipeline, [args.q, args.k, args.v, args.o, args.lse, uniforms], `${kernel} ${shape}`);
  return { label: `${kernel} ${shape}`, pipeline, bindGroup, workgroups: checkGroups(device, `${kernel} ${shape}`, [Math.ceil(T / BR), H, B]) };
}

/** Backward: [delta = Σ dout·o, dq, dk and dv], to be encoded in this order. dq, dk, dv are assigned. */
export function planAttentionBackward(device: GPUDevice, args: AttentionBackwardArgs): Dispatch[] {
  const { B, T, H, Hkv, D } = args;
  const kernel = 'attention_backward';
  const qSize = B * T * H * D;
  const kvSize = B * T * Hkv * D;
  const shape = validate(device, kernel, args, {
    q: [args.q, qSize], k: [args.k, kvSize], v: [args.v, kvSize], o: [args.o, qSize], lse: [args.lse, B * H * T],
    dout: [args.dout, qSize], delta: [args.delta, B * H * T], dq: [args.dq, qSize], dk: [args.dk, kvSize], dv: [args.dv, kvSize],
  });
  const scale = scaleOf(kernel, args);
  const uniforms = createUniform(device, AttentionParams.pack({ B, T, H, Hkv, scale }), `${kernel} ${shape} params`);

  const rowGroups = Math.ceil((B * T * H) / 64); // attention_backward_delta.wgsl: WG = 64, 65535 per row of groups
  const deltaPipeline = cachedPipeline(device, `attention_delta_D${D}`, AttentionParams.wgsl + `const D: u32 = ${D}u;\n` + deltaWgsl);
  const delta: Dispatch = {
    label: `attention_delta ${shape}`,
    pipeline: deltaPipeline,
    bindGroup: bindBuffers(device, deltaPipeline, [args.o, args.dout, args.delta, uniforms], `attention_delta ${shape}`),
    workgroups: [Math.min(rowGroups, 65535), Math.ceil(rowGroups / 65535), 1],
  };

  const dqPlan = tiledPipeline(device, 'dq', dqWgsl, D);
  const dq: Dispatch = {
    label: `attention_dq ${shape}`,
    pipeline: dqPlan.pipeline,
    bindGroup: bindBuffers(device, dqPlan.pipeline, [args.q, args.k, args.v, args.dout, args.lse, args.delta, args.dq, uniforms], `attention_dq ${shape}`),
    workgroups: checkGroups(device, `attention_dq ${shape}`, [Math.ceil(T / dqPlan.BR), H, B]),
  };

  const kvPlan = tiledPipeline(device, 'dkdv', dkdvWgsl, D);
  const dkdv: Dispatch = {
    label: `attention_dkdv ${shape}`,
    pipeline: kvPlan.pipeline,
    bindGroup: bindBuffers(
      device, kvPlan.pipeline,
      [args.q, args.k, args.v, args.dout, args.lse, args.delta, args.dk, args.dv, uniforms], `attention_dkdv ${shape}`,
    ),
    workgroups: checkGroups(device, `attention_dkdv ${shape}`, [Math.ceil(T / kvPlan.BC), Hkv, B]),
  };
  return [delta, dq, dkdv];
}

/** FLOPs of the forward (causal: about half of the T² score and P·V products), for benchmarks. */
export const attentionForwardFlops = (d: AttentionDims): number => 2 * 2 * d.B * d.H * d.D * ((d.T * (d.T + 1)) / 2);
