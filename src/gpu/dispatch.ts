// Dispatches, pipelines and buffers. Kernels are planned once (pipeline + bind group + uniforms, through the launch
// helper of launch.ts) and then encoded as many times as needed; a training step is an array of Dispatch encoded in
// one compute pass.

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** Compiles `code` once per (device, key). */
export function cachedPipeline(device: GPUDevice, key: string, code: string, entryPoint = 'main'): GPUComputePipeline {
  let byKey = pipelineCache.get(device);
  if (!byKey) pipelineCache.set(device, (byKey = new Map()));
  let p = byKey.get(key);
  if (!p) {
    const module = device.createShaderModule({ label: key, code });
    p = device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint } });
    byKey.set(key, p);
  }
  return p;
}

/** A whole buffer, or a byte range of one (e.g. one tensor of a slab; offset a multiple of 256). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** Bytes visible through a binding. */
export function bindingBytes(b: Binding): number {
  return isBuffer(b) ? b.size : (b.size ?? b.buffer.size - (b.offset ?? 0));
}

/** Bind group 0 with `bindings[i]` at @binding(i). */
export function bindBuffers(device: GPUDevice, pipeline: GPUComputePipeline, bindings: Binding[], label?: string): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((b, binding) => ({ binding, resource: isBuffer(b) ? { buffer: b } : b })),
  });
}

function isBuffer(b: Binding): b is GPUBuffer {
  return 'mapState' in b;
}

export const bufferOf = (b: Binding): GPUBuffer => (isBuffer(b) ? b : b.buffer);

/** Byte offset of a binding in its buffer (0 for a whole buffer). */
export const offsetOf = (b: Binding): number => (isBuffer(b) ? 0 : (b.offset ?? 0));

/** The byte range [offsetBytes, offsetBytes + sizeBytes) of a binding, as a binding of the same buffer. */
export const subBinding = (b: Binding, offsetBytes: number, sizeBytes: number): Binding =>
  ({ buffer: bufferOf(b), offset: offsetOf(b) + offsetBytes, size: sizeBytes });

const dummies = new WeakMap<GPUDevice, GPUBuffer>();
/** Unused bindings one dispatch may have: Launch.dispatch gives each its own 256-byte slot of the dummy buffer. */
export const DUMMY_SLOTS = 8;
/** A storage buffer, one per device, bound where a kernel variant reads nothing (src/gpu/launch.ts). */
export function dummyStorage(device: GPUDevice): GPUBuffer {
  let d = dummies.get(device);
  if (!d) dummies.set(device, (d = device.createBuffer({ label: 'unused binding', size: 256 * DUMMY_SLOTS, usage: GPUBufferUsage.STORAGE })));
  return d;
}

/** Whether `b` is the unused-binding buffer of `device` (without making one). */
export const isDummyStorage = (device: GPUDevice, b: Binding): boolean => dummies.get(device) === b;

export function encodeDispatches(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(...d.workgroups);
  }
}

/** Encodes all dispatches into one pass of one command buffer and submits it (no wait). */
export function submitDispatches(device: GPUDevice, dispatches: readonly Dispatch[], repeat = 1): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let r = 0; r < repeat; r++) encodeDispatches(pass, dispatches);
  pass.end();
  device.queue.submit([enc.finish()]);
}

/** A storage buffer holding `data`'s bytes (f32 values, or u32 words such as packed 16-bit pairs), or `data` zero f32s. */
export function createStorage(device: GPUDevice, data: Float32Array | Uint32Array | number, label?: string): GPUBuffer {
  const bytes = typeof data === 'number' ? data * 4 : data.byteLength;
  const buffer = device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  if (typeof data !== 'number') device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

/** Writes a typed array (any backing buffer) into `buffer` at `offsetBytes` through the queue. */
export function writeArray(device: GPUDevice, buffer: GPUBuffer, data: ArrayBufferView, offsetBytes = 0): void {
  device.queue.writeBuffer(buffer, offsetBytes, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

export function createUniform(device: GPUDevice, bytes: ArrayBuffer, label?: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, bytes);
  return buffer;
}

/** Copies `count` f32 from `src` to the CPU. For tests, self-tests and checkpoints: never inside a step. */
export async function readF32(device: GPUDevice, src: GPUBuffer, count: number, offsetFloats = 0): Promise<Float32Array> {
  const bytes = Math.ceil((count * 4) / 4) * 4;
  const staging = device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offsetFloats * 4, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, count * 4));
  staging.unmap();
  staging.destroy();
  return out;
}

/**
 * Reads `out.length` floats of `src` from `offsetFloats` straight into `out` (e.g. a view of a checkpoint blob),
 * through a staging buffer of at most `chunkFloats` floats: host memory holds `out` and one chunk, never a second
 * copy of the whole tensor.
 */
export async function readF32Into(device: GPUDevice, src: GPUBuffer, out: Float32Array, offsetFloats = 0, chunkFloats = 16 << 20): Promise<void> {
  if (!(chunkFloats >= 1)) throw new Error(`readF32Into: chunk of ${chunkFloats} floats`);
  const staging = device.createBuffer({ size: Math.max(4, Math.min(out.length, chunkFloats) * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    for (let at = 0; at < out.length; at += chunkFloats) {
      const n = Math.min(chunkFloats, out.length - at);
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(src, (offsetFloats + at) * 4, staging, 0, n * 4);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ, 0, n * 4);
      out.set(new Float32Array(staging.getMappedRange(0, n * 4)), at);
      staging.unmap();
    }
  } finally {
    staging.destroy();
  }
}

/** Runs `fn` inside validation + out-of-memory error scopes and throws the first GPU error with `what` in it. */
export async function withGpuErrors<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const err = validation ?? oom;
    if (err) throw new Error(`${what}: WebGPU ${validation ? 'validation' : 'out-of-memory'} error: ${err.message}`);
  }
  return result;
}
