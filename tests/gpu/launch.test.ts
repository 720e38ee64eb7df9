// The launch helper's aliasing rule on Dawn (src/gpu/launch.ts): kernels keep read-only inputs when their tensors
// are separate buffers, and run their read_write variant, without validation errors, when the tensors are ranges of
// one slab — also where the variant binds several unused slots (every one writable there) or a vec4 view of an input.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches, withGpuErrors, type Binding } from '../../src/gpu/dispatch.ts';
import { planResidualAdd } from '../../src/kernels/activation/activation.ts';
import { createStorageU32 } from '../../src/kernels/loss/loss.check.ts';
import { planClassifierLoss } from '../../src/kernels/loss/loss.ts';
import { planMatmul } from '../../src/kernels/matmul/matmul.ts';
import { matmulRefGeneral } from '../../src/kernels/matmul/matmul.ref.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const range = (buffer: GPUBuffer, slot: number, floats: number): Binding => ({ buffer, offset: slot * 1024, size: floats * 4 });

describe('launch: read-only inputs unless a buffer is bound both ways', () => {
  it('residual_add: read-only pipeline on separate buffers, the _rw one on ranges of one slab, same result', async () => {
    const { device } = gpu();
    const a = Float32Array.from({ length: 70 }, (_, i) => i), b = Float32Array.from({ length: 70 }, (_, i) => 0.5 * i);
    const [ba, bb, out] = [createStorage(device, a), createStorage(device, b), createStorage(device, 70)];
    const separate = planResidualAdd(device, { a: ba, b: bb, out, N: 70 });
    expect(separate.dispatches[0]!.pipeline.label).toBe('residual_add');
    const slab = createStorage(device, 3 * 256);
    device.queue.writeBuffer(slab, 0, a);
    device.queue.writeBuffer(slab, 1024, b);
    const aliased = planResidualAdd(device, { a: range(slab, 0, 70), b: range(slab, 1, 70), out: range(slab, 2, 70), N: 70 });
    expect(aliased.dispatches[0]!.pipeline.label).toBe('residual_add_rw');
    await withGpuErrors(device, 'residual_add both ways', () => submitDispatches(device, [...separate.dispatches, ...aliased.dispatches]));
    const want = [...a].map((v, i) => v + b[i]!);
    expect([...(await readF32(device, out, 70))]).toEqual(want);
    expect([...(await readF32(device, slab, 70, 512))]).toEqual(want);
    for (const x of [ba, bb, out, slab]) x.destroy();
  });

  it('matmul vec4 on one slab: the _rw variant without vec4 views (they would alias A writably)', async () => {
    const { device } = gpu();
    const [M, N, K] = [20, 36, 68]; // vec4-aligned layouts: separate buffers load both operands as vec4
    const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
    const slab = createStorage(device, 3 * 4096);
    device.queue.writeBuffer(slab, 0, a);
    device.queue.writeBuffer(slab, 4096 * 4, b);
    const plan = planMatmul(device, { a: range(slab, 0, M * K), b: range(slab, 16, K * N), c: range(slab, 32, M * N), M, N, K, variant: 'vec4' });
    expect(plan.dispatches[0]!.pipeline.label).toBe('matmul_vec4_000000_rw');
    await withGpuErrors(device, 'matmul vec4 slab', () => submitDispatches(device, plan.dispatches));
    const got = await readF32(device, slab, M * N, 32 * 256);
    const ref = matmulRefGeneral(a, b, M, N, K);
    expect(Math.max(...[...got].map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-4);
    slab.destroy();
  });

  it('classifier_loss on one slab: the _rw variant with three unused teacher bindings', async () => {
    const { device } = gpu();
    const [Nr, V] = [3, 5];
    const slab = createStorage(device, 4 * 256);
    device.queue.writeBuffer(slab, 0, Float32Array.from({ length: Nr * V }, (_, i) => (i % 4) - 1));
    device.queue.writeBuffer(slab, 1024, new Float32Array([1, 1, 1]));
    const labels = createStorageU32(device, Uint32Array.from([0, 3, 4]));
    const plan = planClassifierLoss(device, {
      N: Nr, V, logits: range(slab, 0, Nr * V), weights: range(slab, 1, Nr), losses: range(slab, 2, 2 * Nr), labels,
      objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1,
    });
    expect(plan.dispatches[0]!.pipeline.label).toBe('classifier_loss_none_none_rw');
    await withGpuErrors(device, 'classifier_loss slab', () => submitDispatches(device, plan.dispatches));
    const losses = await readF32(device, slab, 2 * Nr, 512);
    expect(losses.every((v, i) => (i % 2 === 0 ? v === 0 : v > 0))).toBe(true); // [w·KD = 0, w·CE > 0] per row
    for (const x of [slab, labels]) x.destroy();
  });
});
