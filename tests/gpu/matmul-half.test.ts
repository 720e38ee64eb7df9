// The matmul with a 16-bit B (bFormat 'bf16' | 'f16': a frozen LoRA base stored as packed pairs, issue #21) against
// the CPU reference on the dequantized B, on Dawn in Node: matmulHalfChecks (both forms of a frozen weight, odd
// shapes, batch, alpha/beta/bias, binding-limit splits, split-K, every variant), and the launcher's contract.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { matmulHalfChecks } from '../../src/kernels/matmul/matmul.check.ts';
import { autotuneMatmul, isTuned } from '../../src/kernels/matmul/autotune.ts';
import { applicableMatmulVariants, MatmulVariantNotApplicable, planMatmul } from '../../src/kernels/matmul/matmul.ts';
import { packHalf } from '../../src/util/half.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

describe('matmul with a 16-bit B', () => {
  it.each(matmulHalfChecks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });

  it.each(['tiled', 'naive'] as const)('%s: a hand-checked product whose B rows start mid-word is exact, in bf16 and f16', async (variant) => {
    const { device } = gpu();
    // A (2, 3) · B (3, 3): 9 elements of B in 5 words, row 1 starts in the high half of word 1.
    const a = createStorage(device, new Float32Array([1, 2, 3, 4, 5, 6]));
    const bValues = [1, -2.5, 0.5, 3, 0.25, -1, 2, 8, -0.75];
    const want = [13, 22, -3.75, 31, 39.25, -7.5];
    for (const bFormat of ['bf16', 'f16'] as const) {
      const b = createStorage(device, packHalf(bValues, bFormat));
      const c = createStorage(device, 6);
      submitDispatches(device, planMatmul(device, { a, b, c, M: 2, N: 3, K: 3, bFormat, variant }).dispatches);
      expect([...(await readF32(device, c, 6))], bFormat).toEqual(want);
      // The same B read as Bᵀ (stored (N, K) = (3, 3)): C = A · Bᵀ.
      submitDispatches(device, planMatmul(device, { a, b, c, M: 2, N: 3, K: 3, bFormat, variant, transB: true }).dispatches);
      expect([...(await readF32(device, c, 6))], `${bFormat} Bᵀ`).toEqual([-2.5, 0.5, 15.75, -5.5, 7.25, 43.5]);
      b.destroy();
      c.destroy();
    }
  });

  it('counts B in 16-bit elements: an odd count needs its last whole word, and no more', () => {
    const { device } = gpu();
    const [a, big, c] = [16, 4096, 16].map((n) => createStorage(device, n)) as [GPUBuffer, GPUBuffer, GPUBuffer];
    // 7 × 9 = 63 elements: 32 words = 128 bytes; one word short is refused.
    const b = { buffer: big, offset: 0, size: 128 };
    expect(() => planMatmul(device, { a, b, c, M: 1, N: 9, K: 7, bFormat: 'bf16' })).not.toThrow();
    expect(() => planMatmul(device, { a, b: { ...b, size: 124 }, c, M: 1, N: 9, K: 7, bFormat: 'f16' })).toThrow(/B has 124 bytes, needs 128/);
    // As f32 the same B needs 252 bytes.
    expect(() => planMatmul(device, { a, b, c, M: 1, N: 9, K: 7 })).toThrow(/B has 128 bytes, needs 252/);
    for (const x of [a, big, c]) x.destroy();
  });

  it('the vec4-load variants refuse a 16-bit B, naming what they need and what applies', () => {
    const { device } = gpu();
    const buf = createStorage(device, 4096);
    for (const variant of ['vec4', 'dbuf'] as const) {
      const plan = () => planMatmul(device, { a: buf, b: buf, c: buf, M: 8, N: 8, K: 8, variant, bFormat: 'bf16' });
      expect(plan).toThrow(MatmulVariantNotApplicable);
      expect(plan).toThrow(/does not apply here: it needs an f32 B \(bFormat 'f32'\) \(applicable: tiled, tiled128x64, tiled128,/);
    }
    expect(() => planMatmul(device, { a: buf, b: buf, c: buf, M: 8, N: 8, K: 8, bFormat: 'f8' as never })).toThrow(/unknown bFormat 'f8'/);
    buf.destroy();
  });

  it('splits along K in steps of 128 elements for a 16-bit B (256-byte aligned offsets), of 64 for f32', () => {
    const { device } = gpu();
    const [a, b, c] = [0, 1, 2].map(() => createStorage(device, 100 * 301)) as [GPUBuffer, GPUBuffer, GPUBuffer];
    const plan = (bFormat: 'f32' | 'bf16') =>
      planMatmul(device, { a, b, c, M: 100, N: 40, K: 301, transA: true, transB: true, bFormat, maxBindingBytes: 128 * 100 * 4 });
    expect(plan('f32').dispatches).toHaveLength(3); // 128 + 128 + 45 (the limit allows 128 f32 rows of Aᵀ)
    expect(plan('bf16').dispatches).toHaveLength(3);
    // A limit of 64 rows of Aᵀ: enough for f32 (K = 150 in 64 + 64 + 22), too little for a 16-bit B's 128.
    const small = (bFormat: 'f32' | 'bf16') =>
      planMatmul(device, { a, b, c, M: 100, N: 40, K: 150, transA: true, transB: true, bFormat, maxBindingBytes: 64 * 100 * 4 });
    expect(small('f32').dispatches).toHaveLength(3);
    expect(() => small('bf16')).toThrow(/128 rows of Aᵀ or B exceeds the 25600-byte binding limit/);
    for (const x of [a, b, c]) x.destroy();
  });

  it('the autotuner keys a 16-bit B apart and times only the variants that take it, all agreeing with tiled', async () => {
    const { device } = gpu();
    const p = { M: 20, N: 24, K: 19, transB: true, bFormat: 'bf16' as const };
    const r = await autotuneMatmul(device, p, { iters: 1 });
    expect(r.skipped.sort()).toEqual(['dbuf', 'vec4']);
    expect(Object.keys(r.ms).sort()).toEqual(applicableMatmulVariants(p, device).sort());
    expect(Object.values(r.ms).every((ms) => ms! > 0)).toBe(true); // NaN: disagreed with 'tiled'
    expect(isTuned(device, p)).toBe(true);
    expect(isTuned(device, { ...p, bFormat: 'f16' })).toBe(false);
    expect(isTuned(device, { ...p, bFormat: undefined })).toBe(false);
  });
});
