// The dropout kernel (src/kernels/dropout) on Dawn against its CPU oracle (the same u32 hash): bit-exact at odd
// shapes, assigned and accumulating, active and inactive (identity); the kept fraction near 1 − p; other seeds and
// streams give other masks; update() reseeds and switches a built plan; bad arguments are refused.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { checkDropout, dropoutChecks } from '../../src/kernels/dropout/dropout.check.ts';
import { planDropout } from '../../src/kernels/dropout/dropout.ts';
import { dropoutRef } from '../../src/kernels/dropout/dropout.ref.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('dropout checks', () => {
  it.each(dropoutChecks.map((c) => [c.shape, c] as const))('%s equals the CPU oracle bit for bit', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
  it('passes on other seeds (N=37 cols=53 p=0.3)', async () => {
    for (const seed of [1, 7, 1234]) expect(failures(await checkDropout(gpu().device, 37, 53, 0.3, true, seed))).toBe('');
  });
});

describe('dropout masks', () => {
  const N = 37, cols = 53, n = N * cols;
  const ones = new Float32Array(n).fill(1);

  /** The kernel's drop(1) at (p, seed, stream): 0 where dropped, 1/(1 − p) where kept. */
  async function mask(p: number, seed: number, stream: number, active = true): Promise<Float32Array> {
    const { device } = gpu();
    const x = createStorage(device, ones), out = createStorage(device, new Float32Array(n));
    submitDispatches(device, planDropout(device, { x, out, N, cols, p, stream, active, seed }).dispatches);
    const got = await readF32(device, out, n);
    x.destroy(); out.destroy();
    return got;
  }
  const kept = (m: Float32Array) => m.reduce((k, v) => k + (v !== 0 ? 1 : 0), 0) / m.length;

  it('keeps a fraction near 1 − p, scaling kept values by 1/(1 − p)', async () => {
    for (const p of [0.1, 0.3, 0.75]) {
      const m = await mask(p, 99, 5);
      // n = 1961 Bernoulli(1 − p): 4 standard deviations.
      expect(Math.abs(kept(m) - (1 - p))).toBeLessThan(4 * Math.sqrt(p * (1 - p) / n));
      expect(new Set(m)).toEqual(new Set([0, Math.fround(1 / (1 - p))]));
    }
  });

  it('differs between seeds and between streams (about p·(1 − p)·2 of the elements), and repeats for the same pair', async () => {
    const a = await mask(0.3, 1, 0), b = await mask(0.3, 2, 0), c = await mask(0.3, 1, 1), a2 = await mask(0.3, 1, 0);
    const differ = (u: Float32Array, v: Float32Array) => u.reduce((k, x, i) => k + (x !== v[i] ? 1 : 0), 0) / n;
    expect(differ(a, a2)).toBe(0);
    for (const d of [differ(a, b), differ(a, c), differ(b, c)]) expect(Math.abs(d - 2 * 0.3 * 0.7)).toBeLessThan(0.06);
  });

  it('inactive, and at p = 0, copies x unchanged', async () => {
    expect(await mask(0.3, 1, 0, false)).toEqual(ones);
    expect(await mask(0, 1, 0, true)).toEqual(ones);
  });

  it('update() reseeds and switches a built plan', async () => {
    const { device } = gpu();
    const x = createStorage(device, ones), out = createStorage(device, new Float32Array(n));
    const plan = planDropout(device, { x, out, N, cols, p: 0.3, stream: 3 });
    submitDispatches(device, plan.dispatches);
    expect(await readF32(device, out, n)).toEqual(ones);
    plan.update({ active: true, seed: 17 });
    submitDispatches(device, plan.dispatches);
    expect(await readF32(device, out, n)).toEqual(dropoutRef(ones, { p: 0.3, seed: 17, stream: 3, active: true, accumulate: false }));
    x.destroy(); out.destroy();
  });

  it('refuses p outside [0, 1), a non-u32 seed or stream', () => {
    const { device } = gpu();
    const x = createStorage(device, ones), out = createStorage(device, new Float32Array(n));
    expect(() => planDropout(device, { x, out, N, cols, p: 1, stream: 0 })).toThrow(/p must be in \[0, 1\), got 1/);
    expect(() => planDropout(device, { x, out, N, cols, p: 0.1, stream: -1 })).toThrow(/stream must be a u32/);
    expect(() => planDropout(device, { x, out, N, cols, p: 0.1, stream: 0 }).update({ active: true, seed: 2 ** 32 })).toThrow(/seed must be a u32/);
    x.destroy(); out.destroy();
  });
});
