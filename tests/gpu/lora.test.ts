// LoRA on one linear layer on Dawn (src/model/gpu-lora.ts) against the CPU oracle of src/model/lora.ts at odd shapes:
// the base product plus the adapter's forward equals x·(W + s·B·A)ᵀ (mergedWeight); the base dx plus the adapter's
// backward equals dy·(W + s·B·A); dA and dB equal s·Bᵀ·dW' and s·dW'·Aᵀ with dW' = dyᵀ·x (the gradient of the
// merged weight), and a second backward accumulates onto them. With dropout (PEFT's lora_dropout on the adapter's
// input), y, dx, dA and dB equal a float64 reference built from the same hashed mask (dropout.ref.ts).
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { dispatchesOf } from '../../src/gpu/launch.ts';
import { planMatmul } from '../../src/kernels/matmul/matmul.ts';
import { matmulRefGeneral } from '../../src/kernels/matmul/matmul.ref.ts';
import { planDropout } from '../../src/kernels/dropout/dropout.ts';
import { dropoutKept, dropoutScale } from '../../src/kernels/dropout/dropout.ref.ts';
import { planLoraBackward, planLoraForward, type LoraLinear } from '../../src/model/gpu-lora.ts';
import { mergedWeight } from '../../src/model/lora.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const TOL = { atol: 1e-4, rtol: 1e-4 };

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const c = compareArrays(got, want, TOL);
  expect(c.ok, `${what}: ${describeComparison(c)}`).toBe(true);
}

describe('LoRA linear on the GPU', () => {
  it.each([[37, 29, 23, 3, 7 / 3], [5, 17, 11, 1, 2], [70, 64, 48, 8, 0.5]])('N=%i in=%i out=%i r=%i s=%f: forward, dx, dA, dB equal the merged-weight oracle', async (N, inF, outF, r, s) => {
    const { device } = gpu();
    const rng = new Rng(N * 31 + r);
    const rand = (n: number, sd: number) => Float32Array.from({ length: n }, () => sd * rng.normal());
    const x = rand(N * inF, 1), w = rand(outF * inF, 0.2), a = rand(r * inF, 0.3), b = rand(outF * r, 0.3), dy = rand(N * outF, 1);
    const buf = (d: Float32Array | number) => createStorage(device, d);
    const X = buf(x), W = buf(w), Y = buf(N * outF), DY = buf(dy), DX = buf(N * inF);
    const l: LoraLinear = { N, inF, outF, r, scale: s, a: buf(a), b: buf(b), da: buf(r * inF), db: buf(outF * r), u: buf(N * r), du: buf(N * r) };
    const mm = (args: Parameters<typeof planMatmul>[1]) => planMatmul(device, args);
    const forward = dispatchesOf(mm({ a: X, b: W, c: Y, M: N, N: outF, K: inF, transB: true }), ...planLoraForward(mm, l, X, Y));
    const backward = dispatchesOf(mm({ a: DY, b: W, c: DX, M: N, N: inF, K: outF }), ...planLoraBackward(mm, l, X, DY, DX));
    submitDispatches(device, forward);
    submitDispatches(device, backward);

    const merged = mergedWeight(w, a, b, outF, inF, r, s);
    expectClose(await readF32(device, Y, N * outF), matmulRefGeneral(x, merged, N, outF, inF, { transB: true }), 'y');
    expectClose(await readF32(device, DX, N * inF), matmulRefGeneral(dy, merged, N, inF, outF), 'dx');
    const dW = matmulRefGeneral(dy, x, outF, inF, N, { transA: true }); // dyᵀ·x (out, in)
    const dA = matmulRefGeneral(b, dW, r, inF, outF, { transA: true, alpha: s }); // s·Bᵀ·dW'
    const dB = matmulRefGeneral(dW, a, outF, r, inF, { transB: true, alpha: s }); // s·dW'·Aᵀ
    expectClose(await readF32(device, l.da as GPUBuffer, r * inF), dA, 'dA');
    expectClose(await readF32(device, l.db as GPUBuffer, outF * r), dB, 'dB');
    // Gradients accumulate (micro-batches): a second backward doubles them.
    submitDispatches(device, backward);
    expectClose(await readF32(device, l.da as GPUBuffer, r * inF), dA.map((v) => 2 * v), 'dA twice');
    expectClose(await readF32(device, l.db as GPUBuffer, outF * r), dB.map((v) => 2 * v), 'dB twice');
    for (const g of [X, W, Y, DY, DX, l.a, l.b, l.da, l.db, l.u, l.du] as GPUBuffer[]) g.destroy();
  });
});

describe('LoRA linear with dropout on the GPU', () => {
  it.each([[37, 53, 23, 3, 7 / 3, 0.3], [5, 17, 11, 1, 2, 0.75]])('N=%i in=%i out=%i r=%i s=%f p=%f: y, dx, dA, dB equal the float64 reference of the same mask', async (N, inF, outF, r, s, p) => {
    const { device } = gpu();
    const rng = new Rng(N * 17 + r);
    const rand = (n: number, sd: number) => Float32Array.from({ length: n }, () => sd * rng.normal());
    const x = rand(N * inF, 1), w = rand(outF * inF, 0.2), a = rand(r * inF, 0.3), b = rand(outF * r, 0.3), dy = rand(N * outF, 1);
    const buf = (d: Float32Array | number) => createStorage(device, d);
    const X = buf(x), W = buf(w), Y = buf(N * outF), DY = buf(dy), DX = buf(N * inF), scratch = buf(N * inF + 7);
    const seed = 0xdeadbeef, stream = 11;
    const l: LoraLinear = {
      N, inF, outF, r, scale: s, a: buf(a), b: buf(b), da: buf(r * inF), db: buf(outF * r), u: buf(N * r), du: buf(N * r),
      dropout: { p, stream, scratch, plan: (args) => planDropout(device, { ...args, active: true, seed }) },
    };
    const mm = (args: Parameters<typeof planMatmul>[1]) => planMatmul(device, args);
    submitDispatches(device, dispatchesOf(mm({ a: X, b: W, c: Y, M: N, N: outF, K: inF, transB: true }), ...planLoraForward(mm, l, X, Y)));
    submitDispatches(device, dispatchesOf(mm({ a: DY, b: W, c: DX, M: N, N: inF, K: outF }), ...planLoraBackward(mm, l, X, DY, DX)));

    // m/(1 − p) per element of (N, in), from the oracle's hash.
    const keep = Float64Array.from({ length: N * inF }, (_, i) => (dropoutKept(p, seed, stream, i) ? dropoutScale(p) : 0));
    expect(keep.filter((k) => k === 0).length, 'some elements dropped').toBeGreaterThan(0);
    const xd = x.map((v, i) => v * keep[i]!);
    const u = matmulRefGeneral(xd, a, N, r, inF, { transB: true }); // (N, r)
    const y = matmulRefGeneral(x, w, N, outF, inF, { transB: true }).map((v, i) => v + s * matmulRefGeneral(u, b, N, outF, r, { transB: true })[i]!);
    const du = matmulRefGeneral(dy, b, N, r, outF, { alpha: s }); // s·dy·B
    const dx = matmulRefGeneral(dy, w, N, inF, outF).map((v, i) => v + keep[i]! * matmulRefGeneral(du, a, N, inF, r)[i]!);
    const dA = matmulRefGeneral(du, xd, r, inF, N, { transA: true });
    const dB = matmulRefGeneral(dy, u, outF, r, N, { transA: true, alpha: s });
    expectClose(await readF32(device, Y, N * outF), y, 'y');
    expectClose(await readF32(device, DX, N * inF), dx, 'dx');
    expectClose(await readF32(device, l.da as GPUBuffer, r * inF), dA, 'dA');
    expectClose(await readF32(device, l.db as GPUBuffer, outF * r), dB, 'dB');
    for (const g of [X, W, Y, DY, DX, scratch, l.a, l.b, l.da, l.db, l.u, l.du] as GPUBuffer[]) g.destroy();
  });
});
