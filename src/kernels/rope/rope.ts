// RoPE launcher: plans the in-place rotary embedding of a (B, T, H, D) tensor (queries or keys: H is whichever
// head count the tensor has), forward (rotate by +angle) or backward (rotate the gradient by −angle: dy → dx in
// place). One dispatch; `update(posOffset)` rewrites the first position for the submits after it (KV-cache
// generation, where it changes per call).
// The storage binding is read_write; the frequency table is a second, small uniform buffer made at plan time.
import { createUniform, type Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan } from '../../gpu/launch.ts';
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
  /** Explicit inverse frequencies inv_freq_j (D/2 of them, e.g. llama3-scaled: config.ts ropeInvFreq); overrides theta. */
  invFreq?: ArrayLike<number>;
  /** Elements from token row n to row n+1 (default H·D, packed); larger for a head slice of a fused QKV row. */
  rowStride?: number;
}

/**
 * inv_freq_j / 2π = θ^(−2j/D) / 2π for j < D/2 as 64-bit binary fractions (hi, lo): element 2j is the top 32
 * bits, 2j + 1 the next 32. Computed in f64 (53 significant bits; the rest are zero).
 */
export function ropeTurnsTable(D: number, theta: number, invFreq?: ArrayLike<number>): Uint32Array {
  const table = new Uint32Array(ROPE_MAX_D); // 64 vec4u
  for (let j = 0; j < D / 2; j++) {
    const f = invFreq ? invFreq[j]! : theta ** ((-2 * j) / D);
    const scaled = (f / (2 * Math.PI)) * 2 ** 32; // < 2^32 since the fraction is < 1
    const hi = Math.floor(scaled);
    table[2 * j] = hi;
    table[2 * j + 1] = Math.floor((scaled - hi) * 2 ** 32);
  }
  return table;
}

export function planRopeForward(device: GPUDevice, args: RopeArgs): KernelPlan<number> {
  return planRope(device, args, 1);
}

/** The inverse rotation: pass the gradient dy as `x`; it is overwritten with dx. */
export function planRopeBackward(device: GPUDevice, args: RopeArgs): KernelPlan<number> {
  return planRope(device, args, -1);
}

function planRope(device: GPUDevice, args: RopeArgs, sign: 1 | -1): KernelPlan<number> {
  const { B, T, H, D } = args;
  const k = new Launch(device, sign > 0 ? 'rope_forward' : 'rope_backward', { B, T, H, D });
  if (D % 2 !== 0 || D > ROPE_MAX_D) throw k.error(`D must be even and at most ${ROPE_MAX_D}`);
  const theta = args.theta ?? ROPE_THETA;
  if (!(theta > 1) || !Number.isFinite(theta)) throw k.error(`theta must be a number above 1, got ${theta}`);
  if (args.invFreq) {
    if (args.invFreq.length !== D / 2) throw k.error(`invFreq has ${args.invFreq.length} entries, expected D/2 = ${D / 2}`);
    for (let j = 0; j < D / 2; j++) {
      const f = args.invFreq[j]!;
      if (!(f > 0 && f < 2 * Math.PI)) throw k.error(`invFreq[${j}] = ${f} is outside (0, 2π)`);
    }
  }
  const rowStride = args.rowStride ?? H * D;
  if (!Number.isInteger(rowStride) || rowStride < H * D) throw k.error(`rowStride ${rowStride} is below H·D = ${H * D}`);
  const N = B * T;
  const elems = (N - 1) * rowStride + H * D;
  if (elems >= 2 ** 32 || N * H * (D / 2) >= 2 ** 32) throw k.error('too large for u32 indexing');
  const values = (posOffset: number) => {
    if (!Number.isInteger(posOffset) || posOffset < 0 || posOffset + T - 1 >= 2 ** 32) {
      throw k.error(`posOffset must be an integer in [0, 2^32 − T], got ${posOffset}`);
    }
    return { N, T, H, D, posOffset, rowStride, sign };
  };
  const x = k.bind('x', args.x, elems);
  const params = k.uniform(RopeParams, values(args.posOffset ?? 0));
  const turns = createUniform(device, ropeTurnsTable(D, theta, args.invFreq).buffer as ArrayBuffer, `${k.what} turns`);
  const groups = Math.ceil((N * H * (D / 2)) / 256);
  return {
    dispatches: [k.dispatch({ key: 'rope', code: RopeParams.wgsl + ropeWgsl }, [x, params.buffer, turns], k.grid(groups))],
    update: (posOffset) => params.write(values(posOffset)),
  };
}
