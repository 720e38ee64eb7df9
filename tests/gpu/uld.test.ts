// The ULD loss kernel (cross-tokenizer KD: L1 between sorted distributions, gradient assigned to its own buffer)
// against the CPU reference at odd shapes, on Dawn in Node: the checks (padding, a masked row, a zero teacher, tied
// logits, K = 1 and K = Vr, V = 2053, chunking), chunked = unchunked bits, determinism, update(), errors.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import {
  checkUldLoss, describeUldConfig, ULD_GRAD_TOLERANCE, ULD_LOSS_TOLERANCE, makeUldInputs, runUldLoss, uldChecks, uldRefArgs, ULD_CHECK_CONFIGS, type UldCheckConfig,
} from '../../src/kernels/loss/uld.check.ts';
import { compareArrays } from '../../src/util/allclose.ts';
import { uldLossRef } from '../../src/kernels/loss/uld.ref.ts';
import { planUldLoss, ULD_KMAX, type UldLossArgs } from '../../src/kernels/loss/uld.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('uld loss checks', () => {
  it.each(uldChecks.map((c) => [`${c.kernel} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(failures(await check.run(gpu().device, 42))).toBe('');
  });
});

describe('uld loss kernel', () => {
  it('checks the hard rows: padding and masked row exactly 0, the tied row against the reference', async () => {
    const { device } = gpu();
    const c = ULD_CHECK_CONFIGS[0]!; // N=7 V=67 Vr=61 K=5 τ=1.7
    const x = makeUldInputs(c, 3);
    const got = await runUldLoss(device, c, x);
    const ref = uldLossRef(uldRefArgs(c, x));
    const { V } = c;
    const Vr = c.realVocab!;
    for (let n = 0; n < c.N; n++) expect([...got.grad.subarray(n * V + Vr, (n + 1) * V)].every((v) => Object.is(v, 0))).toBe(true);
    expect([...got.grad.subarray(V, 2 * V)].every((v) => Object.is(v, 0)) && got.losses[1] === 0).toBe(true);
    // The tied row (3) has ties; the zero-teacher row (2) has ULD = 1 (Σ p over the whole vocabulary).
    const row3 = x.logits.subarray(3 * V, 3 * V + Vr);
    expect(new Set(row3).size).toBeLessThan(Vr / 2);
    expect(got.losses[2]! / x.weights[2]!).toBeCloseTo(1, 5);
    const rowCmp = (n: number) => failures([{ name: `row ${n}`, ...compareRow(got.grad, ref.grad, n, V) }]);
    expect(rowCmp(3)).toBe('');
    expect(failures(await checkUldLoss(device, c, 3))).toBe('');
  });

  it('stays finite and accurate for large logits (log-sum-exp by (max, sum) pairs)', async () => {
    const { device } = gpu();
    const c: UldCheckConfig = { N: 5, V: 131, realVocab: 127, K: 6, temperature: 1.7 };
    const x = makeUldInputs(c, 4);
    for (let i = 0; i < x.logits.length; i++) x.logits[i]! *= 40; // |z| up to ~300: exp(z / τ) overflows f32
    const got = await runUldLoss(device, c, x);
    const ref = uldLossRef(uldRefArgs(c, x));
    expect(got.grad.every(Number.isFinite) && got.losses.every(Number.isFinite)).toBe(true);
    expect(failures([
      { name: 'losses', ...compareArrays(got.losses, ref.losses, ULD_LOSS_TOLERANCE) },
      { name: 'grad', ...compareArrays(got.grad, ref.grad, ULD_GRAD_TOLERANCE) },
    ])).toBe('');
  });

  it('splits rows into chunks (small maxBindingBytes) with results bit-identical to one dispatch, deterministic', async () => {
    const { device } = gpu();
    const c: UldCheckConfig = { N: 130, V: 9, realVocab: 7, K: 3, temperature: 1.3 };
    const x = makeUldInputs(c, 9);
    const one = await runUldLoss(device, c, x);
    const chunked = await runUldLoss(device, { ...c, maxBindingBytes: 64 * 9 * 4 }, x);
    expect([one.dispatches, chunked.dispatches]).toEqual([1, 3]); // 64 + 64 + 2 rows
    expect(new Uint32Array(chunked.grad.buffer)).toEqual(new Uint32Array(one.grad.buffer));
    expect(new Uint32Array(chunked.losses.buffer)).toEqual(new Uint32Array(one.losses.buffer));
    const again = await runUldLoss(device, c, x);
    expect(new Uint32Array(again.grad.buffer)).toEqual(new Uint32Array(one.grad.buffer));
  });

  it('update() changes the gradient scale of every chunk for the next submit; logits stay untouched', async () => {
    const { device } = gpu();
    const c: UldCheckConfig = { N: 70, V: 9, realVocab: 8, K: 4, temperature: 1.7 };
    const x = makeUldInputs(c, 2);
    const { N, V, K } = c;
    const logits = createStorage(device, x.logits);
    const grad = createStorage(device, N * V);
    const losses = createStorage(device, N);
    const plan = planUldLoss(device, {
      N, V, realVocab: 8, K, temperature: c.temperature, logits, teacher: createStorage(device, x.teacher),
      weights: createStorage(device, x.weights), losses, grad, lossScale: 1, weight: 0.5, maxBindingBytes: 64 * V * 4,
    });
    expect(plan.dispatches.length).toBe(2);
    submitDispatches(device, plan.dispatches);
    const g1 = await readF32(device, grad, N * V);
    const l1 = await readF32(device, losses, N);
    plan.update({ lossScale: 0.25 });
    submitDispatches(device, plan.dispatches);
    const g2 = await readF32(device, grad, N * V);
    plan.update({ weight: 2 });
    submitDispatches(device, plan.dispatches);
    const g3 = await readF32(device, grad, N * V);
    g1.forEach((v, i) => {
      expect(g2[i]).toBeCloseTo(0.25 * v, 8);
      expect(g3[i]).toBeCloseTo(v, 8); // 0.25 · 2 = 1 · 0.5
    });
    expect(g1.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    expect(await readF32(device, losses, N)).toEqual(l1); // the losses are w·ULD, without the scale
    expect(new Uint32Array((await readF32(device, logits, N * V)).buffer)).toEqual(new Uint32Array(x.logits.buffer));
    expect(() => plan.update({ lossScale: Number.NaN })).toThrow(/uld_loss N=70 V=9 \(8 real\) K=4: lossScale must be a finite number/);
  });

  it('rejects bad shapes, temperatures and buffers with errors naming the kernel and shape', () => {
    const { device } = gpu();
    const [N, V, K] = [3, 7, 2];
    const buf = (floats: number) => createStorage(device, floats);
    const ok: UldLossArgs = {
      N, V, K, temperature: 1, logits: buf(N * V), teacher: buf(N * K), weights: buf(N), losses: buf(N), grad: buf(N * V),
      lossScale: 1, weight: 1,
    };
    const plan = (over: Partial<UldLossArgs>) => () => planUldLoss(device, { ...ok, ...over });
    expect(plan({})).not.toThrow();
    expect(plan({ K: 8, teacher: buf(N * 8) })).toThrow(/uld_loss N=3 V=7 K=8: K = 8 is larger than the real vocabulary Vr = 7/);
    expect(plan({ realVocab: 5, K: 6, teacher: buf(N * 6) })).toThrow(/uld_loss N=3 V=7 \(5 real\) K=6: K = 6 is larger than the real vocabulary Vr = 5/);
    const big = ULD_KMAX + 1;
    expect(plan({ V: 300, K: big, logits: buf(N * 300), grad: buf(N * 300), teacher: buf(N * big) }))
      .toThrow(/uld_loss N=3 V=300 K=257: K = 257 is over the kernel's maximum of 256/);
    expect(plan({ temperature: 0 })).toThrow(/uld_loss N=3 V=7 K=2: temperature must be > 0, got 0/);
    expect(plan({ temperature: -1 })).toThrow(/temperature must be > 0, got -1/);
    expect(plan({ realVocab: 8 })).toThrow(/realVocab 8 must be an integer in \[1, V = 7\]/);
    expect(plan({ K: 0 })).toThrow(/K must be a positive integer, got 0/);
    expect(plan({ logits: buf(N * V - 1) })).toThrow(/uld_loss N=3 V=7 K=2: logits has 80 bytes, needs 84/);
    expect(plan({ teacher: buf(N) })).toThrow(/teacher has 16 bytes, needs 24/);
    expect(plan({ grad: buf(N * V - 1) })).toThrow(/grad has 80 bytes, needs 84/);
    expect(plan({ weight: Number.POSITIVE_INFINITY })).toThrow(/weight must be a finite number/);
    const same = buf(N * V);
    expect(plan({ logits: same, grad: same })).toThrow(/overlap in one buffer/);
    expect(plan({ N: 65, logits: buf(65 * V), teacher: buf(65 * K), weights: buf(65), losses: buf(65), grad: buf(65 * V), maxBindingBytes: 64 * V * 4 - 4 }))
      .toThrow(/a chunk of 64 rows needs 1792 bytes in one binding, over the limit of 1788/);
  });

  it('leaves memory past the last row untouched', async () => {
    const { device } = gpu();
    const c: UldCheckConfig = { N: 3, V: 7, K: 2, temperature: 1 };
    const x = makeUldInputs(c, 1);
    const grad = createStorage(device, new Float32Array(c.N * c.V + 64).fill(-7));
    const losses = createStorage(device, new Float32Array(c.N + 8).fill(-7));
    submitDispatches(device, planUldLoss(device, {
      N: 3, V: 7, K: 2, temperature: 1, logits: createStorage(device, x.logits), teacher: createStorage(device, x.teacher),
      weights: createStorage(device, x.weights), losses, grad, lossScale: 1, weight: 1,
    }).dispatches);
    const g = await readF32(device, grad, c.N * c.V + 64);
    const l = await readF32(device, losses, c.N + 8);
    expect([...g.subarray(c.N * c.V)].every((v) => v === -7) && [...l.subarray(c.N)].every((v) => v === -7)).toBe(true);
    expect([...g.subarray(0, c.N * c.V)].every(Number.isFinite)).toBe(true);
    expect(describeUldConfig(c)).toBe('uld N=3 V=7 K=2 τ=1');
  });
});

function compareRow(got: Float32Array, ref: Float64Array, n: number, V: number) {
  return compareArrays(got.subarray(n * V, (n + 1) * V), ref.subarray(n * V, (n + 1) * V), ULD_GRAD_TOLERANCE);
}
