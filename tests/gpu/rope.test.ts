// RoPE kernel against the CPU reference on Dawn in Node: the registered checks, position offsets (also via
// update()), a head slice of a fused row (rowStride), forward∘backward = identity, and argument errors.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { ROPE_TOLERANCE, ropeChecks, ropePairScale } from '../../src/kernels/rope/rope.check.ts';
import { planRopeBackward, planRopeForward } from '../../src/kernels/rope/rope.ts';
import { ropeForwardRef } from '../../src/kernels/rope/rope.ref.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

async function rotate(data: Float32Array, plan: (buf: GPUBuffer) => ReturnType<typeof planRopeForward>[]): Promise<Float32Array> {
  const { device } = gpu();
  const buf = createStorage(device, data);
  await withGpuErrors(device, 'rope test', () => submitDispatches(device, dispatchesOf(...plan(buf))));
  return readF32(device, buf, data.length);
}

describe('rope checks', () => {
  it.each(ropeChecks.map((c) => [`${c.kernel} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
});

describe('rope', () => {
  const [B, T, H, D] = [2, 10, 3, 8];
  const x = new Rng(5).uniformArray(B * T * H * D);

  it('with posOffset > 0 equals the same positions computed without an offset', async () => {
    const { device } = gpu();
    const full = await rotate(x, (buf) => [planRopeForward(device, { x: buf, B: 1, T, H, D })]);
    const rows = x.subarray(6 * H * D, T * H * D); // t = 6..9 of batch 0
    const tail = await rotate(rows, (buf) => [planRopeForward(device, { x: buf, B: 1, T: 4, H, D, posOffset: 6 })]);
    expect([...tail]).toEqual([...full.subarray(6 * H * D, T * H * D)]);
  });

  it('update(posOffset) changes the positions of later submissions', async () => {
    const { device } = gpu();
    const buf = createStorage(device, x.subarray(0, H * D));
    const plan = planRopeForward(device, { x: buf, B: 1, T: 1, H, D, posOffset: 0 });
    plan.update(4000);
    submitDispatches(device, plan.dispatches);
    const got = await readF32(device, buf, H * D);
    const want = ropeForwardRef(x.subarray(0, H * D), 1, 1, H, D, { posOffset: 4000 });
    expect(failures([{ name: 'y', ...compareArrays(got, want, ROPE_TOLERANCE, ropePairScale(x.subarray(0, H * D), D)) }])).toBe('');
    expect(() => plan.update(-1)).toThrow(/posOffset must be an integer/);
  });

  it('rotates a head slice of a fused row (rowStride) and leaves the rest of each row untouched', async () => {
    const { device } = gpu();
    const stride = 3 * H * D + 5; // e.g. a (q, k, v) row with padding; rotate the first H·D of each row
    const rows = B * T;
    const fused = new Rng(6).uniformArray(rows * stride);
    const got = await rotate(fused, (buf) => [planRopeForward(device, { x: buf, B, T, H, D, rowStride: stride })]);
    const packed = new Float32Array(rows * H * D);
    for (let n = 0; n < rows; n++) packed.set(fused.subarray(n * stride, n * stride + H * D), n * H * D);
    const want = ropeForwardRef(packed, B, T, H, D);
    for (let n = 0; n < rows; n++) {
      const row = got.subarray(n * stride, (n + 1) * stride);
      const c = compareArrays(row.subarray(0, H * D), want.subarray(n * H * D, (n + 1) * H * D), ROPE_TOLERANCE, ropePairScale(packed.subarray(n * H * D, (n + 1) * H * D), D));
      expect(failures([{ name: `row ${n}`, ...c }])).toBe('');
      expect([...row.subarray(H * D)]).toEqual([...fused.subarray(n * stride + H * D, (n + 1) * stride)]);
    }
  });

  it('backward undoes forward (rotation then inverse rotation is the identity to f32 precision)', async () => {
    const { device } = gpu();
    const got = await rotate(x, (buf) => [
      planRopeForward(device, { x: buf, B, T, H, D, posOffset: 123 }),
      planRopeBackward(device, { x: buf, B, T, H, D, posOffset: 123 }),
    ]);
    expect(failures([{ name: 'x', ...compareArrays(got, x, { atol: 1e-6, rtol: 1e-6 }) }])).toBe('');
  });

  it('rejects bad shapes, short buffers and bad options with clear errors', () => {
    const { device } = gpu();
    const buf = createStorage(device, 64);
    expect(() => planRopeForward(device, { x: buf, B: 1, T: 1, H: 1, D: 3 })).toThrow(/rope_forward B=1 T=1 H=1 D=3: D must be even and at most 256/);
    expect(() => planRopeForward(device, { x: buf, B: 1, T: 1, H: 1, D: 258 })).toThrow(/D must be even and at most 256/);
    expect(() => planRopeBackward(device, { x: buf, B: 2, T: 5, H: 1, D: 8 })).toThrow(/rope_backward B=2 T=5 H=1 D=8: x has 256 bytes, needs 320/);
    expect(() => planRopeForward(device, { x: buf, B: 1, T: 1, H: 2, D: 8, rowStride: 8 })).toThrow(/rowStride 8 is below H·D = 16/);
    expect(() => planRopeForward(device, { x: buf, B: 1, T: 1, H: 1, D: 8, posOffset: 1.5 })).toThrow(/posOffset must be an integer/);
    expect(() => planRopeForward(device, { x: buf, B: 0, T: 1, H: 1, D: 8 })).toThrow(/rope_forward B=0 T=1 H=1 D=8: B must be a positive integer, got 0/);
  });
});
