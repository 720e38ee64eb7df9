// KV-cache decode attention launcher (generation): plans the cache append and the attention of a step's S new
// queries against a layer's cache (attention_decode.wgsl). A plan is built once per (layer, S) and encoded every
// step; the step's position pos is a uniform set by update(pos) before the step is submitted (one uniform buffer
// per plan: submit each step before updating for the next one).
// Layout (row-major): q and o (B, S, H, D); k and v (B, S, Hkv, D); kcache and vcache (B, Tmax, Hkv, D). A step
// encodes planKvAppend (writes positions pos .. pos + S − 1 of the caches) then planAttentionDecode (query s sees
// positions 0 .. pos + s). S = 1 is the decode hot path (one workgroup per (b, h)); S > 1 prefills a prompt chunk.
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, offsetOf, readWriteAll, sharesBuffer, type Binding, type Dispatch } from '../../gpu/dispatch.ts';
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
const MAX_GROUPS_X = 65535;

/** A planned dispatch whose step position is a uniform. */
export interface DecodePlan extends Dispatch {
  /** Sets the position of the step's first new token for the next submits; throws if pos + S > Tmax. */
  update(pos: number): void;
}

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

function validate(device: GPUDevice, kernel: string, dims: DecodeDims, buffers: Record<string, [Binding, number]>, withH = true): string {
  const shape = checkDecodeDims(kernel, dims, withH);
  if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(dims.D)) {
    throw new Error(`${kernel} ${shape}: head dim D = ${dims.D} is not supported (supported: ${ATTENTION_HEAD_DIMS.join(', ')})`);
  }
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  const entries = Object.entries(buffers);
  for (const [name, [binding, elems]] of entries) {
    const bytes = bindingBytes(binding);
    if (bytes < elems * 4) throw new Error(`${kernel} ${shape}: buffer ${name} has ${bytes} bytes, needs ${elems * 4}`);
    if (bytes > maxBinding) {
      throw new Error(`${kernel} ${shape}: ${name} is ${bytes} bytes, over this device's maxStorageBufferBindingSize (${maxBinding})`);
    }
  }
  // Writable bindings must not overlap (WebGPU aliasing rule); every binding is writable when they share a buffer.
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [na, [a]] = entries[i]!;
      const [nb, [b]] = entries[j]!;
      if (bufferOf(a) !== bufferOf(b)) continue;
      const [a0, b0] = [offsetOf(a), offsetOf(b)];
      if (a0 < b0 + bindingBytes(b) && b0 < a0 + bindingBytes(a)) {
        throw new Error(`${kernel} ${shape}: ${na} and ${nb} overlap in one buffer (bytes ${a0}+${bindingBytes(a)} and ${b0}+${bindingBytes(b)})`);
      }
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

function pipelineFor(device: GPUDevice, entry: 'kv_append' | 'main', D: number, aliased: boolean): GPUComputePipeline {
  const consts = `const D: u32 = ${D}u;\nconst WG: u32 = ${DECODE_WG}u;\nconst G: u32 = ${DECODE_WG / D}u;\n`;
  const code = DecodeParams.wgsl + consts + decodeWgsl;
  const key = `attention_decode_${entry}_D${D}_WG${DECODE_WG}${aliased ? '_rw' : ''}`;
  return cachedPipeline(device, key, aliased ? readWriteAll(code) : code, entry);
}

/** Shared by both plans: uniform buffer + update(pos) with the range check. */
function planWithPos(
  device: GPUDevice, kernel: string, shape: string, dims: DecodeDims, scale: number, pos0: number,
  make: (uniforms: GPUBuffer) => Dispatch,
): DecodePlan {
  const what = `${kernel} ${shape}`;
  const pack = (pos: number): ArrayBuffer => {
    checkDecodePos(what, dims, pos);
    return DecodeParams.pack({ B: dims.B, S: dims.S, Tmax: dims.Tmax, H: dims.H, Hkv: dims.Hkv, pos, scale });
  };
  const uniforms = createUniform(device, pack(pos0), `${what} params`);
  return { ...make(uniforms), update(pos: number) { device.queue.writeBuffer(uniforms, 0, pack(pos)); } };
}

/** Appends the step's k and v to the caches at positions pos .. pos + S − 1. One dispatch. */
export function planKvAppend(device: GPUDevice, args: KvAppendArgs): DecodePlan {
  const kernel = 'kv_append';
  const dims: DecodeDims = { B: args.B, S: args.S, Tmax: args.Tmax, H: args.Hkv, Hkv: args.Hkv, D: args.D };
  const { B, S, Tmax, Hkv, D } = dims;
  const newSize = B * S * Hkv * D;
  const cacheSize = B * Tmax * Hkv * D;
  const bindings = { kcache: args.kcache, vcache: args.vcache, k: args.k, v: args.v };
  const shape = validate(device, kernel, dims, {
    kcache: [args.kcache, cacheSize], vcache: [args.vcache, cacheSize], k: [args.k, newSize], v: [args.v, newSize],
  }, false);
  const pipeline = pipelineFor(device, 'kv_append', D, sharesBuffer(Object.values(bindings)));
  const groups = Math.ceil(newSize / APPEND_WG);
  return planWithPos(device, kernel, shape, dims, 0, args.pos ?? 0, (uniforms) => ({
    label: `${kernel} ${shape}`,
    pipeline,
    bindGroup: bindBuffers(device, pipeline, [args.kcache, args.vcache, args.k, args.v, uniforms], `${kernel} ${shape}`),
    workgroups: checkGroups(device, `${kernel} ${shape}`, [Math.min(groups, MAX_GROUPS_X), Math.ceil(groups / MAX_GROUPS_X), 1]),
  }));
}

/** o = causal attention of the step's S queries against cache positions 0 .. pos + s. One dispatch. */
export function planAttentionDecode(device: GPUDevice, args: AttentionDecodeArgs): DecodePlan {
  const kernel = 'attention_decode';
  const { B, S, Tmax, H, Hkv, D } = args;
  const dims: DecodeDims = { B, S, Tmax, H, Hkv, D };
  const qSize = B * S * H * D;
  const cacheSize = B * Tmax * Hkv * D;
  const shape = validate(device, kernel, dims, {
    kcache: [args.kcache, cacheSize], vcache: [args.vcache, cacheSize], q: [args.q, qSize], o: [args.o, qSize],
  });
  const scale = args.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new Error(`${kernel} ${shape}: scale must be finite, got ${scale}`);
  const pipeline = pipelineFor(device, 'main', D, sharesBuffer([args.kcache, args.vcache, args.q, args.o]));
  return planWithPos(device, kernel, shape, dims, scale, args.pos ?? 0, (uniforms) => ({
    label: `${kernel} ${shape}`,
    pipeline,
    bindGroup: bindBuffers(device, pipeline, [args.kcache, args.vcache, args.q, args.o, uniforms], `${kernel} ${shape}`),
    workgroups: checkGroups(device, `${kernel} ${shape}`, [S, H, B]),
  }));
}
