// The launch helper of every kernel family (src/gpu/launch.ts) without a GPU: dimension, binding and grid checks
// name the kernel, the shape and what is wrong; the read_write variant is chosen exactly when a buffer is bound both
// read-only and writable; overlapping writable bindings are refused before anything is compiled.
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/gpu/dispatch.ts';
import { checkInteger, Launch, needsReadWrite, storageAccess } from '../../src/gpu/launch.ts';

/** Just what the checks read: the limits (small binding limit, WebGPU's default alignment and grid limit). */
const device = {
  limits: { maxStorageBufferBindingSize: 4096, minStorageBufferOffsetAlignment: 256, maxComputeWorkgroupsPerDimension: 65535 },
} as unknown as GPUDevice;
/** A stand-in GPUBuffer: `mapState` marks a whole buffer as a Binding; `size` is all the checks read. */
const buffer = (size: number): GPUBuffer => ({ size, mapState: 'unmapped' }) as unknown as GPUBuffer;

const CODE = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage,read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;`;

describe('Launch', () => {
  it('rejects a dimension that is not a positive integer, naming the kernel, the shape and the dimension', () => {
    expect(() => new Launch(device, 'rmsnorm_forward', { N: 1.5, C: 2 })).toThrow(/^rmsnorm_forward N=1.5 C=2: N must be a positive integer, got 1.5$/);
    expect(() => new Launch(device, 'rmsnorm_forward', { N: 3, C: 0 })).toThrow(/^rmsnorm_forward N=3 C=0: C must be a positive integer, got 0$/);
    expect(() => new Launch(device, 'matmul', { M: NaN }, { shape: 'NaN×1×1' })).toThrow(/^matmul NaN×1×1: M must be a positive integer, got NaN$/);
    expect(() => checkInteger('zero [32, 36)', 'offset', -1, 0)).toThrow(/^zero \[32, 36\): offset must be an integer ≥ 0, got -1$/);
    expect(new Launch(device, 'silu_forward', { N: 5 }).what).toBe('silu_forward N=5');
  });

  it('rejects a binding too small for its elements, at a misaligned offset, or over the binding limit', () => {
    const k = new Launch(device, 'silu_forward', { N: 5 });
    expect(() => k.bind('x', buffer(16), 5)).toThrow(/^silu_forward N=5: x has 16 bytes, needs 20$/);
    expect(() => k.bind('x', { buffer: buffer(1024), offset: 4 }, 5)).toThrow(/^silu_forward N=5: x offset 4 is not a multiple of 256$/);
    expect(() => k.bind('x', { buffer: buffer(1024), offset: 512, size: 16 }, 5)).toThrow(/x has 16 bytes, needs 20/);
    expect(() => k.bind('x', buffer(8192), 1025)).toThrow(/^silu_forward N=5: x is 4100 bytes, over the binding limit of 4096 bytes$/);
    const small = new Launch(device, 'silu_forward', { N: 5 }, { maxBindingBytes: 16 });
    expect(small.maxBindingBytes).toBe(16);
    expect(() => small.bind('y', buffer(64), 5)).toThrow(/y is 20 bytes, over the binding limit of 16 bytes/);
    // check() is the same without the limit: for tensors the launcher splits itself.
    expect(() => small.check('y', buffer(64), 5)).not.toThrow();
    expect(() => small.check('y', { buffer: buffer(1024), offset: 100 }, 5)).toThrow(/y offset 100 is not a multiple of 256/);
  });

  it('binds the exact byte range of the elements', () => {
    const k = new Launch(device, 'silu_forward', { N: 5 });
    const buf = buffer(2048);
    expect(k.bind('x', { buffer: buf, offset: 512 }, 5)).toEqual({ buffer: buf, offset: 512, size: 20 });
    expect(k.bind('x', buf, 5)).toEqual({ buffer: buf, offset: 0, size: 20 });
  });

  it('folds a long 1-D grid into y and refuses grids over the per-dimension limit', () => {
    const k = new Launch(device, 'rope_forward', { B: 1 });
    expect(k.grid(7)).toEqual([7, 1, 1]);
    expect(k.grid(65535)).toEqual([65535, 1, 1]);
    expect(k.grid(70000)).toEqual([35000, 2, 1]);
    expect(() => k.grid(65535 * 65535 + 1)).toThrow(/^rope_forward B=1: needs 65535×65536×1 workgroups, over the limit of 65535 per dimension$/);
    expect(() => k.workgroups(1, 1, 70000)).toThrow(/needs 1×1×70000 workgroups/);
  });

  it('refuses a writable binding that overlaps another binding of its buffer, naming both', () => {
    const k = new Launch(device, 'silu_forward', { N: 5 });
    const buf = buffer(2048);
    const x = k.bind('x', { buffer: buf, offset: 0 }, 5);
    const y = k.bind('y', { buffer: buf, offset: 0 }, 5);
    const w = k.bind('w', buffer(64), 5);
    expect(() => k.dispatch({ key: 'test', code: CODE }, [x, w, y], [1, 1, 1]))
      .toThrow(/^silu_forward N=5: x and y overlap in one buffer \(bytes 0\+20 and 0\+20\), and one of them is written$/);
  });
});

describe('read_write variant', () => {
  const buf = buffer(4096), other = buffer(4096);
  const at = (b: GPUBuffer, offset: number): Binding => ({ buffer: b, offset, size: 64 });

  it('reads the access mode of every storage binding of a module', () => {
    expect([...storageAccess(CODE)]).toEqual([[0, 'read'], [1, 'read'], [2, 'read_write']]);
  });

  it('is needed exactly when one buffer is bound both read-only and writable', () => {
    const access = storageAccess(CODE);
    expect(needsReadWrite(access, [at(buf, 0), at(other, 0), at(buffer(64), 0)])).toBe(false); // separate buffers
    expect(needsReadWrite(access, [at(buf, 0), at(buf, 256), at(other, 0)])).toBe(false); // two inputs of one slab
    expect(needsReadWrite(access, [at(buf, 0), at(other, 0), at(buf, 512)])).toBe(true); // input and output of one slab
    expect(needsReadWrite(access, [buf, other, { buffer: buf, offset: 1024 }])).toBe(true);
  });
});
