// The hidden-state loss kernel (src/kernels/hidden) against its CPU reference: every check of hiddenChecks, plus
// clear errors on bad input and the lossScale update.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { hiddenChecks } from '../../src/kernels/hidden/hidden.check.ts';
import { planHiddenLoss } from '../../src/kernels/hidden/hidden.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('hidden_loss kernel', () => {
  it.each(hiddenChecks.map((c) => [`${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 7);
    expect(cmps.length).toBe(2);
    expect(failures(cmps)).toBe('');
  });

  it('rejects wrong sizes, aliasing and bad kinds with errors naming the kernel and argument', () => {
    const { device } = gpu();
    const N = 3, Cs = 5;
    const b = { p: createStorage(device, N * Cs), h: createStorage(device, N * Cs), weights: createStorage(device, N), losses: createStorage(device, N), dp: createStorage(device, N * Cs) };
    try {
      const args = { N, Cs, kind: 'mse' as const, lossScale: 1, ...b };
      expect(() => planHiddenLoss(device, { ...args, Cs: 6 })).toThrow(/hidden_loss N=3 Cs=6 kind=mse: p has 64 bytes, needs 72/);
      expect(() => planHiddenLoss(device, { ...args, dp: b.p })).toThrow(/dp must be its own buffer/);
      expect(() => planHiddenLoss(device, { ...args, kind: 'kl' as never })).toThrow(/kind must be 'mse' or 'cosine'/);
      expect(() => planHiddenLoss(device, { ...args, lossScale: NaN })).toThrow(/lossScale must be a finite number/);
      expect(() => planHiddenLoss(device, { ...args, maxBindingBytes: 32 })).toThrow(/hidden_loss N=3 Cs=5 kind=mse: p is 60 bytes, over the binding limit of 32 bytes/);
    } finally {
      for (const x of Object.values(b)) x.destroy();
    }
  });

  it('mse on a hand-computed row; update() rescales dp but not the losses', async () => {
    const { device } = gpu();
    const b = {
      p: createStorage(device, Float32Array.from([1, 2, 3])), h: createStorage(device, Float32Array.from([1, 0, 0])),
      weights: createStorage(device, Float32Array.from([2])), losses: createStorage(device, 1), dp: createStorage(device, 3),
    };
    try {
      const plan = planHiddenLoss(device, { N: 1, Cs: 3, kind: 'mse', lossScale: 1, ...b });
      submitDispatches(device, plan.dispatches);
      expect((await readF32(device, b.losses, 1))[0]).toBeCloseTo((2 * 13) / 3, 5);
      expect(Array.from(await readF32(device, b.dp, 3))).toEqual([0, 8 / 3, 4].map((v) => expect.closeTo(v, 5)));
      plan.update({ lossScale: 0.5 });
      submitDispatches(device, plan.dispatches);
      expect((await readF32(device, b.losses, 1))[0]).toBeCloseTo((2 * 13) / 3, 5);
      expect(Array.from(await readF32(device, b.dp, 3))).toEqual([0, 4 / 3, 2].map((v) => expect.closeTo(v, 5)));
    } finally {
      for (const x of Object.values(b)) x.destroy();
    }
  });
});
