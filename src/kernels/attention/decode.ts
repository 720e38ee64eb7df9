// KV-cache decode attention launcher (generation): plans the cache append and the attention of a step's S new
// queries against a layer's cache (attention_decode.wgsl). A plan is built once per (layer, S) and encoded every
// step; the step's position pos is a uniform set by update(pos) before the step is submitted (one uniform buffer
// per plan: submit each step before updating for the next one).
// Layout (row-major): q and o (B, S, H, D); k and v (B, S, Hkv, D); kcache and vcache (B, Tmax, Hkv, D). A step
// encodes planKvAppend (writes positions pos .. pos + S − 1 of the caches) then planAttentionDecode (query s sees
// positions 0 .. pos + s). S = 1 is the decode hot path (one workgroup per (b, h)); S > 1 prefills a prompt chunk.
import type { Binding } from '../../gpu/dispatch.ts';
import { Launch, type KernelPlan, type KernelSource } from '../../gpu/launch.ts';
import { uniformStruct } from '../../gpu/uniforms.ts';
import { ATTENTION_HEAD_DIMS } from './attention.ts';
import decodeWgsl from './attention_decode.wgsl?raw';
import { checkDecodeDims, checkDecodePos, type DecodeDims } from './decode.ref.ts';

export type { DecodeDims } from './decode.ref.ts';

export const DecodeParams = uniformStruct('Params', {
  B: 'u32', S: 'u32', Tmax: 'u32', H: 'u32', Hkv: 'u32', pos: 'u32', scale: 'f32',
});

/** Threads per attention workgroup: keys per block, and WG / D key groups in the P·V sum. */
export const DECODE_WG = 128;
const APPEND_WG = 256; // attention_decode.wgsl kv_append

export interface KvAppendArgs extends Omit<DecodeDims, 'H'> {
  k: Binding; // (B, S, Hkv, D), read
  v: Binding; // (B, S, Hkv, D), read (bound read_write: it shares binding 3 with o of attention_decode)
  kcache: Binding; // (B, Tmax, Hkv, D), positions pos .. pos + S − 1 written
  vcache: Binding; // (B, Tmax, Hkv, D), positions pos .. pos + S − 1 written
  /** Initial position (default 0); change it with update(pos). */
  pos?: number;
}

export interface AttentionDecodeArgs extends DecodeDims {
  q: Binding; // (B, S, H, D), read
  kcache: Binding; // (B, Tmax, Hkv, D), read: positions 0 .. pos + S − 1
  vcache: Binding; // (B, Tmax, Hkv, D), read: positions 0 .. pos + S − 1
  o: Binding; // (B, S, H, D), written
  /** Score scale; 1/√D when absent. */
  scale?: number;
  /** Initial position (default 0); change it with update(pos). */
  pos?: number;
}

/** The launch of either plan: dimensions, grouping, S ≤ Tmax and head dim checked. */
function launch(device: GPUDevice, kernel: string, dims: DecodeDims, withH = true): Launch {
  const { B, S, Tmax, H, Hkv, D } = dims;
  const k = new Launch(device, kernel, withH ? { B, S, Tmax, H, Hkv, D } : { B, S, Tmax, Hkv, D });
  checkDecodeDims(kernel, dims, withH);
  if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(D)) {
    throw k.error(`head dim D = ${D} is not supported (supported: ${ATTENTION_HEAD_DIMS.join(', ')})`);
  }
  return k;
}

function source(entryPoint: 'kv_append' | 'main', D: number): KernelSource {
  const consts = `const D: u32 = ${D}u;\nconst WG: u32 = ${DECODE_WG}u;\nconst G: u32 = ${DECODE_WG / D}u;\n`;
  return { key: `attention_decode_${entryPoint}_D${D}_WG${DECODE_WG}`, code: DecodeParams.wgsl + consts + decodeWgsl, entryPoint };
}

/** The plan of one dispatch over `bindings` + Params, with update(pos) and its range check. */
function planWithPos(k: Launch, dims: DecodeDims, scale: number, pos0: number, entryPoint: 'kv_append' | 'main', bindings: Binding[],
  workgroups: [number, number, number]): KernelPlan<number> {
  const values = (pos: number) => {
    checkDecodePos(k.what, dims, pos);
    return { B: dims.B, S: dims.S, Tmax: dims.Tmax, H: dims.H, Hkv: dims.Hkv, pos, scale };
  };
  const params = k.uniform(DecodeParams, values(pos0));
  return {
    dispatches: [k.dispatch(source(entryPoint, dims.D), [...bindings, params.buffer], workgroups)],
    update: (pos) => params.write(values(pos)),
  };
}

/** Appends the step's k and v to the caches at positions pos .. pos + S − 1. One dispatch. */
export function planKvAppend(device: GPUDevice, args: KvAppendArgs): KernelPlan<number> {
  const dims: DecodeDims = { B: args.B, S: args.S, Tmax: args.Tmax, H: args.Hkv, Hkv: args.Hkv, D: args.D };
  const { B, S, Tmax, Hkv, D } = dims;
  const k = launch(device, 'kv_append', dims, false);
  const newSize = B * S * Hkv * D, cacheSize = B * Tmax * Hkv * D;
  const t = k.bindAll({ kcache: [args.kcache, cacheSize], vcache: [args.vcache, cacheSize], k: [args.k, newSize], v: [args.v, newSize] });
  return planWithPos(k, dims, 0, args.pos ?? 0, 'kv_append', [t.kcache, t.vcache, t.k, t.v], k.grid(Math.ceil(newSize / APPEND_WG)));
}

/** o = causal attention of the step's S queries against cache positions 0 .. pos + s. One dispatch. */
export function planAttentionDecode(device: GPUDevice, args: AttentionDecodeArgs): KernelPlan<number> {
  const { B, S, Tmax, H, Hkv, D } = args;
  const dims: DecodeDims = { B, S, Tmax, H, Hkv, D };
  const k = launch(device, 'attention_decode', dims);
  const qSize = B * S * H * D, cacheSize = B * Tmax * Hkv * D;
  const t = k.bindAll({ kcache: [args.kcache, cacheSize], vcache: [args.vcache, cacheSize], q: [args.q, qSize], o: [args.o, qSize] });
  const scale = args.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw k.error(`scale must be finite, got ${scale}`);
  return planWithPos(k, dims, scale, args.pos ?? 0, 'main', [t.kcache, t.vcache, t.q, t.o], k.workgroups(S, H, B));
}
