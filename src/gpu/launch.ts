// One launch helper and one plan shape for every kernel family (src/kernels/<family>/<family>.ts). A launcher opens a
// Launch with its kernel name and dimensions, and through it:
//   - checks every dimension is a positive integer (errors name the kernel, the shape and what is wrong);
//   - binds each tensor: enough bytes for its elements, an offset that is a multiple of
//     minStorageBufferOffsetAlignment, and (unless the launcher splits the tensor itself: check() instead of bind())
//     at most maxStorageBufferBindingSize, or a smaller test limit; bind() returns the exact byte range;
//   - lays out workgroups within maxComputeWorkgroupsPerDimension (grid() folds a 1-D count into y: kernels index
//     wid.y·nwg.x + wid.x, or take the x width as a uniform);
//   - makes uniform buffers (uniform(): a struct from uniforms.ts, rewritable for plans with update()) and
//     dispatches (dispatch(): the pipeline cached per device and key, the bind group).
// Aliasing, one rule for every kernel: the WGSL declares inputs `var<storage, read>` and outputs `read_write`.
// WebGPU rejects a buffer bound both read-only and writable in one dispatch, even through disjoint ranges, so when
// a dispatch binds a buffer both ways (ranges of one slab), dispatch() compiles the kernel with every storage
// binding read_write (pipeline key + '_rw'); otherwise (the fast path) inputs stay read-only. A writable binding
// must not overlap another binding of its buffer either (WebGPU rejects that too): dispatch() throws, naming both.
// Every launcher returns a KernelPlan.
import { bindBuffers, bindingBytes, bufferOf, cachedPipeline, createUniform, DUMMY_SLOTS, isDummyStorage, offsetOf, type Binding, type Dispatch } from './dispatch.ts';
import type { ScalarType, UniformStruct, UniformValues } from './uniforms.ts';

/**
 * What every launcher returns: its dispatches, to be encoded in this order (any number of times), and — for
 * kernels with per-call uniforms, `KernelPlan<U>` — `update(u)`, which rewrites them for the submits after it
 * (a position, a loss scale, lr and step, a batch's token buckets). A plan never allocates after it is made.
 */
export type KernelPlan<U = void> = { readonly dispatches: readonly Dispatch[] } & ([U] extends [void] ? unknown : { update(u: U): void });

/** The dispatches of several plans, in order: one step's list. */
export const dispatchesOf = (...plans: readonly { readonly dispatches: readonly Dispatch[] }[]): Dispatch[] => plans.flatMap((p) => p.dispatches);

/** Throws `${what}: ${name} must be a positive integer, got ${v}` (`an integer ≥ min` when min is not 1). */
export function checkInteger(what: string, name: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${what}: ${name} must be ${min === 1 ? 'a positive integer' : `an integer ≥ ${min}`}, got ${v}`);
}

/** A kernel's WGSL, compiled once per device under `key`. */
export interface KernelSource {
  key: string;
  code: string;
  entryPoint?: string;
}

/** A uniform buffer made from a struct of uniforms.ts, and its rewrite for plans with update(). */
export interface Uniform<F extends Record<string, ScalarType>> {
  readonly buffer: GPUBuffer;
  /** queue.writeBuffer of the packed values: takes effect for the submits after it. */
  write(values: UniformValues<F>): void;
}

export interface LaunchOptions {
  /** The shape in messages and labels (default: the dimensions, e.g. 'N=3 C=7'). */
  shape?: string;
  /** A binding limit below the device's maxStorageBufferBindingSize (tests force splitting with it). */
  maxBindingBytes?: number;
}

export class Launch<D extends Readonly<Record<string, number>> = Readonly<Record<string, number>>> {
  /** `${kernel} ${shape}`: what errors and dispatch labels name. */
  readonly what: string;
  /** The shape alone, e.g. 'N=3 C=7'. */
  readonly shape: string;
  /** Bytes one binding may span: the device's limit, or the smaller `maxBindingBytes` option. */
  readonly maxBindingBytes: number;
  /** Tensor names of the bindings made by check()/bind(), for the overlap error. */
  private readonly names = new WeakMap<object, string>();

  /** @param dims the kernel's dimensions, each checked to be a positive integer */
  constructor(readonly device: GPUDevice, readonly kernel: string, readonly dims: D, opts: LaunchOptions = {}) {
    this.shape = opts.shape ?? Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(' ');
    this.what = this.shape ? `${kernel} ${this.shape}` : kernel;
    for (const [name, v] of Object.entries(dims)) checkInteger(this.what, name, v);
    const limit = device.limits.maxStorageBufferBindingSize;
    this.maxBindingBytes = Math.min(limit, opts.maxBindingBytes ?? limit);
  }

  /** An Error whose message starts with what the launch is. */
  error(message: string): Error {
    return new Error(`${this.what}: ${message}`);
  }

  /** Checks that `b` holds `elems` 4-byte values from an aligned offset, for a tensor the launcher splits itself. */
  check(name: string, b: Binding, elems: number): Binding {
    const have = bindingBytes(b), need = elems * 4, offset = offsetOf(b);
    if (have < need) throw this.error(`${name} has ${have} bytes, needs ${need}`);
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (offset % align !== 0) throw this.error(`${name} offset ${offset} is not a multiple of ${align}`);
    if (!this.names.has(b)) this.names.set(b, name);
    return b;
  }

  /** check(), and the `elems` values within the binding limit; returns their exact byte range. */
  bind(name: string, b: Binding, elems: number): Binding {
    this.check(name, b, elems);
    const bytes = elems * 4;
    if (bytes > this.maxBindingBytes) throw this.error(`${name} is ${bytes} bytes, over the binding limit of ${this.maxBindingBytes} bytes`);
    const range = { buffer: bufferOf(b), offset: offsetOf(b), size: bytes };
    this.names.set(range, name);
    return range;
  }

  /** bind() of each tensor, in order: name → [binding, elements]. */
  bindAll<K extends string>(tensors: Readonly<Record<K, readonly [Binding, number]>>): Record<K, Binding> {
    const out = {} as Record<K, Binding>;
    for (const [name, [b, elems]] of Object.entries(tensors) as [K, readonly [Binding, number]][]) out[name] = this.bind(name, b, elems);
    return out;
  }

  /** A grid of x·y·z workgroups, each dimension within maxComputeWorkgroupsPerDimension. */
  workgroups(x: number, y = 1, z = 1): [number, number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw this.error(`needs ${x}×${y}×${z} workgroups, over the limit of ${max} per dimension`);
    return [x, y, z];
  }

  /** `groups` workgroups along x, folded into y rows of equal width past the per-dimension limit. */
  grid(groups: number): [number, number, number] {
    const y = Math.ceil(groups / this.device.limits.maxComputeWorkgroupsPerDimension);
    return this.workgroups(Math.ceil(groups / y), y);
  }

  /** A uniform buffer holding `values` packed as `struct`. */
  uniform<F extends Record<string, ScalarType>>(struct: UniformStruct<F>, values: UniformValues<F>, label = `${this.what} params`): Uniform<F> {
    const { device } = this;
    const buffer = createUniform(device, struct.pack(values), label);
    return { buffer, write: (v) => device.queue.writeBuffer(buffer, 0, struct.pack(v)) };
  }

  /**
   * One dispatch of `kernel` with bindings[i] at @binding(i), uniform buffers included; dummyStorage(device) where a
   * variant reads nothing. Compiled as written unless a buffer is bound both read-only and writable (the module
   * banner): then with every storage binding read_write, under `${key}_rw`.
   */
  dispatch(kernel: KernelSource, bindings: readonly Binding[], workgroups: [number, number, number], label = this.what): Dispatch {
    const { device } = this;
    const bound = spreadUnused(device, bindings);
    const access = storageAccess(kernel.code);
    const rw = needsReadWrite(access, bound);
    const writable = (i: number) => access.get(i) === 'read_write' || (rw && access.has(i));
    this.checkOverlaps(bound, writable);
    const pipeline = rw
      ? cachedPipeline(device, `${kernel.key}_rw`, readWriteAll(kernel.code), kernel.entryPoint)
      : cachedPipeline(device, kernel.key, kernel.code, kernel.entryPoint);
    return { label, pipeline, bindGroup: bindBuffers(device, pipeline, bound, label), workgroups };
  }

  private checkOverlaps(bound: readonly Binding[], writable: (i: number) => boolean): void {
    for (let i = 0; i < bound.length; i++) {
      for (let j = i + 1; j < bound.length; j++) {
        const a = bound[i]!, b = bound[j]!;
        if (!(writable(i) || writable(j)) || bufferOf(a) !== bufferOf(b)) continue;
        const [a0, b0, an, bn] = [offsetOf(a), offsetOf(b), bindingBytes(a), bindingBytes(b)];
        if (a0 < b0 + bn && b0 < a0 + an) {
          const name = (x: Binding, k: number) => this.names.get(x) ?? `binding ${k}`;
          throw this.error(`${name(a, i)} and ${name(b, j)} overlap in one buffer (bytes ${a0}+${an} and ${b0}+${bn}), and one of them is written`);
        }
      }
    }
  }
}

/** Each `@binding(i) var<storage, mode>` of a module: i → mode. */
export function storageAccess(code: string): Map<number, 'read' | 'read_write'> {
  const decls = code.matchAll(/@binding\((\d+)\)\s*var<storage,\s*(read_write|read)\s*>/g);
  return new Map([...decls].map((m) => [Number(m[1]), m[2] as 'read' | 'read_write']));
}

/** Whether some buffer is bound both through a read-only and through a writable storage binding. */
export function needsReadWrite(access: ReadonlyMap<number, 'read' | 'read_write'>, bindings: readonly Binding[]): boolean {
  const buffers = (mode: 'read' | 'read_write') => [...access].flatMap(([i, m]) => (m === mode && bindings[i] ? [bufferOf(bindings[i])] : []));
  const written = new Set(buffers('read_write'));
  return buffers('read').some((b) => written.has(b));
}

const readWriteAll = (wgsl: string): string => wgsl.replaceAll(/var<storage,\s*read\s*>/g, 'var<storage, read_write>');

/** Every whole-buffer use of the unused-binding buffer becomes its own 256-byte slot of it (writable bindings of the
 *  read_write variant must not overlap). */
function spreadUnused(device: GPUDevice, bindings: readonly Binding[]): Binding[] {
  let slot = 0;
  return bindings.map((b) => {
    if (!isDummyStorage(device, b)) return b;
    if (slot === DUMMY_SLOTS) throw new Error(`more than ${DUMMY_SLOTS} unused bindings in one dispatch`);
    return { buffer: bufferOf(b), offset: 256 * slot++, size: 16 };
  });
}
