// RoPE launcher: plans the in-place rotary embedding of a (B, T, H, D) tensor (queries or keys: H is whichever
// head count the tensor has), forward (rotate by +angle) or backward (rotate the gradient by −angle: dy → dx in
// place). Plans have `update(posOffset)` for KV-cache generation, where the first position changes per call.
// The storage binding is read_write; the frequency table is a second, small uniform buffer made at plan time.
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, offsetOf, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import ropeWgsl from './rope.wgsl?raw';

export const RopeParams = uniformStruct('Params', {
  N: 'u32', T: 'u32', H: 'u32', D: 'u32', posOffset: 'u32', rowStride: 'u32', sign: 'f32',
});

/** Llama's default base θ. */
export const ROPE_THETA = 10000;
/** Largest head dim: the frequency table is a uniform array<vec4u, 64> holding D/2 (hi, lo) pairs. */
export const ROPE_MAX_D = 256;

export interface RopeArgs {
  /** (B, T, H, D) f32, rotated in place: forward x → x', backward dy → dx. */
  x: Binding;
  B: number;
  T: number;
  H: number;
  /** Head dim, even, ≤ ROPE_MAX_D. */
  D: number;
  /** Position of t = 0 (default 0): pos = t + posOffset. */
  posOffset?: number;
  /** Base θ of inv_freq_j = θ^(−2j/D) (default 10000). */
  theta?: number;
  /** Elements from token row n to row n+1 (default H·D, packed); larger for a head slice of a fused QKV row. */
  rowStride?: number;
}

export interface RopePlan extends Dispatch {
  /** Rewrites the first position (for generation with a KV cache); takes effect for dispatches submitted after. */
  update(posOffset: number): void;
}

/**
 * inv_freq_j / 2π = θ^(−2j/D) / 2π for j < D/2 as 64-bit binary fractions (hi, lo): element 2j is the top 32
 * bits, 2j + 1 the next 32. Computed in f64 (53 significant bits; the rest are zero).
 */
export function ropeTurnsTable(D: number, theta: number): Uint32Array {
  const table = new Uint32Array(ROPE_MAX_D); // 64 vec4u
  for (let j = 0; j < D / 2; j++) {
    const scaled = (theta ** ((-2 * j) / D) / (2 * Math.PI)) * 2 ** 32; // < 2^32 since the fraction is < 1
    const hi = Math.floor(scaled);
    table[2 * j] = hi;
    table[2 * j + 1] = Math.floor((scaled - hi) * 2 ** 32);
  }
  return table;
}

export function planRopeForward(device: GPUDevice, args: RopeArgs): RopePlan {
  return planRope(device, args, 1);
}

/** The inverse rotation: pass the gradient dy as `x`; it is overwritten with dx. */
export function planRopeBackward(device: GPUDevice, args: RopeArgs): RopePlan {
  return planRope(device, args, -1);
}

function planRope(device: GPUDevice, args: RopeArgs, sign: 1 | -1): RopePlan {
  const kernel = sign > 0 ? 'rope_forward' : 'rope_backward';
  const { B, T, H, D } = args;
  for (const [name, v] of Object.entries({ B, T, H, D })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${name} must be a positive integer, got ${v}`);
  }
  const what = `${kernel} B=${B} T=${T} H=${H} D=${D}`;
  if (D % 2 !== 0 || D > ROPE_MAX_D) throw new Error(`${what}: D must be even and at most ${ROPE_MAX_D}`);
  const theta = args.theta ?? ROPE_THETA;
  if (!(theta > 1) || !Number.isFinite(theta)) throw new Error(`${what}: theta must be a number above 1, got ${theta}`);
  const rowStride = args.rowStride ?? H * D;
  if (!Number.isInteger(rowStride) || rowStride < H * D) throw new Error(`${what}: rowStride ${rowStride} is below H·D = ${H * D}`);
  const N = B * T;
  const elems = (N - 1) * rowStride + H * D;
  if (elems >= 2 ** 32 || N * H * (D / 2) >= 2 ** 32) throw new Error(`${what}: too large for u32 indexing`);
  const checkPos = (posOffset: number) => {
    if (!Number.isInteger(posOffset) || posOffset < 0 || posOffset + T - 1 >= 2 ** 32) {
      throw new Error(`${what}: posOffset must be an integer in [0, 2^32 − T], got ${posOffset}`);
    }
  };
  const posOffset = args.posOffset ?? 0;
  checkPos(posOffset);

  const buffer = bufferOf(args.x);
  const offset = offsetOf(args.x);
  const have = bindingBytes(args.x);
  if (have < elems * 4) throw new Error(`${what}: x has ${have} bytes, needs ${elems * 4} (row stride ${rowStride})`);
  const align = device.limits.minStorageBufferOffsetAlignment;
  if (offset % align !== 0) throw new Error(`${what}: x offset ${offset} is not a multiple of ${align}`);
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  if (elems * 4 > maxBinding) throw new Error(`${what}: x is ${elems * 4} bytes, over this device's maxStorageBufferBindingSize (${maxBinding})`);

  const groups = Math.ceil((N * H * (D / 2)) / 256);
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(groups / maxGroups);
  if (gy > maxGroups) throw new Error(`${what}: too many workgroups for one dispatch`);

  const pipeline = cachedPipeline(device, 'rope', RopeParams.wgsl + ropeWgsl);
  const pack = (pos: number) => RopeParams.pack({ N, T, H, D, posOffset: pos, rowStride, sign });
  const uniforms = createUniform(device, pack(posOffset), `${what} params`);
  const table = ropeTurnsTable(D, theta);
  const turns = createUniform(device, table.buffer as ArrayBuffer, `${what} turns`);
  const bindGroup = bindBuffers(device, pipeline, [{ buffer, offset, size: elems * 4 }, uniforms, turns], what);
  return {
    label: what,
    pipeline,
    bindGroup,
    workgroups: [Math.ceil(groups / gy), gy, 1],
    update(pos: number) {
      checkPos(pos);
      device.queue.writeBuffer(uniforms, 0, pack(pos));
    },
  };
}
