// Element-wise kernels (SiLU, GELU, SwiGLU, residual) against the CPU reference on Dawn in Node: the registered
// checks, saturation without NaN at ±100, accumulation, bounds and argument errors.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { activationChecks, checkSwiglu, checkUnary } from '../../src/kernels/activation/activation.check.ts';
import { planGeluBackward, planGeluForward, planResidualAccumulate, planSiluBackward, planSiluForward, planSwigluForward } from '../../src/kernels/activation/activation.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('activation checks', () => {
  it.each(activationChecks.map((c) => [`${c.kernel} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
  it('passes on other seeds and sizes (N = 3, 33; SwiGLU 7×33)', async () => {
    const { device } = gpu();
    for (const N of [3, 33]) {
      expect(failures(await checkUnary(device, 'silu', N, N))).toBe('');
      expect(failures(await checkUnary(device, 'gelu', N, N))).toBe('');
    }
    expect(failures(await checkSwiglu(device, 7, 33, 9))).toBe('');
  });
});

describe('activations', () => {
  it('saturate at ±100 without NaN: silu, gelu → (100, 0), gradients → (1, 0)', async () => {
    const { device } = gpu();
    const x = createStorage(device, new Float32Array([100, -100, 1e30, -1e30]));
    const dy = createStorage(device, new Float32Array([1, 1, 1, 1]));
    const out = Array.from({ length: 4 }, () => createStorage(device, 4));
    await withGpuErrors(device, 'saturation', () => submitDispatches(device, dispatchesOf(
      planSiluForward(device, { x, y: out[0]!, N: 4 }),
      planSiluBackward(device, { x, dy, dx: out[1]!, N: 4 }),
      planGeluForward(device, { x, y: out[2]!, N: 4 }),
      planGeluBackward(device, { x, dy, dx: out[3]!, N: 4 }),
    )));
    const [sy, sdx, gy, gdx] = await Promise.all(out.map((b) => readF32(device, b, 4)));
    for (const y of [sy!, gy!]) {
      expect(y[0]).toBe(100);
      expect(Math.abs(y[1]!)).toBe(0);
      expect(y[2]).toBe(Math.fround(1e30));
      expect(Math.abs(y[3]!)).toBe(0);
    }
    for (const dx of [sdx!, gdx!]) {
      expect(dx[0]).toBe(1);
      expect(Math.abs(dx[1]!)).toBe(0);
      expect(dx[2]).toBe(1);
      expect(Math.abs(dx[3]!)).toBe(0);
    }
  });

  it('residual accumulate adds onto the existing values, twice when submitted twice', async () => {
    const { device } = gpu();
    const x = createStorage(device, new Float32Array([1, 2, 3]));
    const y = createStorage(device, new Float32Array([10, 20, 30]));
    submitDispatches(device, planResidualAccumulate(device, { x, y, N: 3 }).dispatches, 2);
    expect([...(await readF32(device, y, 3))]).toEqual([12, 24, 36]);
  });

  it('writes only its N elements (bounds checks) on a 257-element tail', async () => {
    const { device } = gpu();
    const N = 257;
    const gate = createStorage(device, new Float32Array(N).fill(1));
    const up = createStorage(device, new Float32Array(N).fill(2));
    const h = createStorage(device, new Float32Array(N + 64).fill(-7));
    submitDispatches(device, planSwigluForward(device, { gate, up, h, N: 1, F: N }).dispatches);
    const out = await readF32(device, h, N + 64);
    expect(out[N - 1]).toBeCloseTo(2 / (1 + Math.exp(-1)), 6);
    expect([...out.subarray(N)].every((v) => v === -7)).toBe(true);
  });

  it('rejects bad sizes and short buffers with clear errors', () => {
    const { device } = gpu();
    const b = createStorage(device, 4);
    expect(() => planSiluForward(device, { x: b, y: b, N: 0 })).toThrow(/silu_forward N=0: N must be a positive integer, got 0/);
    expect(() => planGeluBackward(device, { x: b, dy: b, dx: createStorage(device, 1), N: 5 })).toThrow(/gelu_backward N=5: x has 16 bytes, needs 20/);
    expect(() => planSwigluForward(device, { gate: b, up: b, h: b, N: 2, F: 3 })).toThrow(/swiglu_forward N=2 F=3: gate has 16 bytes, needs 24/);
    expect(() => planSwigluForward(device, { gate: b, up: b, h: b, N: 1, F: 1.5 })).toThrow(/swiglu_forward N=1 F=1.5: F must be a positive integer/);
  });
});
