// RMSNorm and LayerNorm kernels against the CPU reference on Dawn in Node: the registered checks plus
// hand values, accumulation of parameter gradients, slab sub-ranges, large rows and argument errors.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { checkLayerNorm, checkRmsNorm, normChecks } from '../../src/kernels/norm/norm.check.ts';
import { planLayerNormBackward, planRmsNormBackward, planRmsNormForward } from '../../src/kernels/norm/norm.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('norm checks', () => {
  it.each(normChecks.map((c) => [`${c.kernel} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
  it('passes at a row wider than 4 workgroup strides and a different seed (N=5 C=1031)', async () => {
    expect(failures(await checkRmsNorm(gpu().device, 5, 1031, 7))).toBe('');
    expect(failures(await checkLayerNorm(gpu().device, 5, 1031, 7))).toBe('');
  });
});

describe('rmsnorm', () => {
  it('normalises [3, 4] with weight 1 to [3, 4]/sqrt(12.5 + eps)', async () => {
    const { device } = gpu();
    const x = createStorage(device, new Float32Array([3, 4]));
    const w = createStorage(device, new Float32Array([1, 1]));
    const y = createStorage(device, 2);
    const rstd = createStorage(device, 1);
    submitDispatches(device, planRmsNormForward(device, { x, weight: w, y, rstd, N: 1, C: 2, eps: 1e-5 }).dispatches);
    const r = 1 / Math.sqrt(12.5 + 1e-5);
    const got = await readF32(device, y, 2);
    expect(got[0]).toBeCloseTo(3 * r, 6);
    expect(got[1]).toBeCloseTo(4 * r, 6);
    expect((await readF32(device, rstd, 1))[0]).toBeCloseTo(r, 6);
  });

  it('accumulates dweight: running backward twice adds the gradient twice', async () => {
    const { device } = gpu();
    const [N, C] = [3, 5];
    const ones = (n: number) => new Float32Array(n).fill(1);
    const x = createStorage(device, ones(N * C));
    const dy = createStorage(device, ones(N * C));
    const w = createStorage(device, ones(C));
    const rstd = createStorage(device, new Float32Array(N).fill(0.5));
    const dx = createStorage(device, N * C);
    const dweight = createStorage(device, new Float32Array(C).fill(10));
    const plan = planRmsNormBackward(device, { dy, x, weight: w, rstd, dx, dweight, N, C });
    submitDispatches(device, plan.dispatches, 2);
    // each pass adds Σ_n dy·x·rstd = 3 · 0.5 = 1.5
    expect([...(await readF32(device, dweight, C))]).toEqual(new Array(C).fill(13));
  });

  it('works on 256-aligned sub-ranges of one slab and leaves the rest untouched', async () => {
    const { device } = gpu();
    const [N, C] = [2, 3];
    const slab = createStorage(device, new Float32Array(256).fill(-7)); // 1 KiB: x at 0, weight at 256, y at 512, rstd at 768
    device.queue.writeBuffer(slab, 0, new Float32Array([3, 4, 0, 1, 1, 1]));
    device.queue.writeBuffer(slab, 256, new Float32Array([1, 2, 3]));
    await withGpuErrors(device, "slab rmsnorm", () => submitDispatches(device, planRmsNormForward(device, {
      x: { buffer: slab, offset: 0 }, weight: { buffer: slab, offset: 256 }, y: { buffer: slab, offset: 512 }, rstd: { buffer: slab, offset: 768 }, N, C, eps: 1e-12,
    }).dispatches));
    const out = await readF32(device, slab, 256);
    const r0 = 1 / Math.sqrt(25 / 3);
    expect(out[128]).toBeCloseTo(3 * r0, 6);
    expect(out[129]).toBeCloseTo(8 * r0, 6);
    expect(out[130]).toBe(0);
    [1, 2, 3].forEach((v, i) => expect(out[131 + i]).toBeCloseTo(v, 6)); // row [1, 1, 1]: rstd 1
    expect([...out.subarray(134, 192)].every((v) => v === -7)).toBe(true);
    expect([...out.subarray(67, 128)].every((v) => v === -7)).toBe(true);
    expect(out[192]).toBeCloseTo(r0, 6);
    expect(out[193]).toBeCloseTo(1, 6);
    expect([...out.subarray(194)].every((v) => v === -7)).toBe(true);
  });

  it('rejects bad shapes, short buffers, unaligned offsets and bad eps with clear errors', () => {
    const { device } = gpu();
    const b = createStorage(device, 8);
    expect(() => planRmsNormForward(device, { x: b, weight: b, y: b, rstd: b, N: 0, C: 1 })).toThrow(/rmsnorm_forward N=0 C=1: N must be a positive integer, got 0/);
    expect(() => planRmsNormForward(device, { x: b, weight: b, y: b, rstd: b, N: 3, C: 7 })).toThrow(/rmsnorm_forward N=3 C=7: x has 32 bytes, needs 84/);
    expect(() => planRmsNormForward(device, { x: { buffer: b, offset: 4 }, weight: b, y: b, rstd: b, N: 1, C: 1 })).toThrow(/x offset 4 is not a multiple of 256/);
    expect(() => planRmsNormForward(device, { x: b, weight: b, y: b, rstd: b, N: 1, C: 1, eps: -1 })).toThrow(/eps must be a positive number/);
    expect(() => planLayerNormBackward(device, { dy: b, x: b, weight: b, mean: b, rstd: b, dx: b, dweight: b, dbias: createStorage(device, 1), N: 1, C: 8 }))
      .toThrow(/layernorm_backward N=1 C=8: dbias has 16 bytes, needs 32/);
  });
});
