// The matmul lab variants 'vec4', 'dbuf' and 'subgroup': their checks from matmulChecks (every shape and backprop
// form of the others, plus aligned layouts for the vec4 loads); they sum every output in the same order as
// tiled128, so their results must be bit-identical to it; vec4 loads are chosen per operand from the layout; a
// variant that does not apply on a device is refused with a clear error.
import { describe, expect, it } from 'vitest';
import { createStorage, readF32, submitDispatches } from '../../src/gpu/dispatch.ts';
import { MATMUL_LAB_VARIANTS, matmulChecks, type Shape3 } from '../../src/kernels/matmul/matmul.check.ts';
import { applicableMatmulVariants, MATMUL_VARIANTS, MatmulVariantNotApplicable, planMatmul, type MatmulVariant } from '../../src/kernels/matmul/matmul.ts';
import { Rng } from '../../src/util/rng.ts';
import { failures, useGpu } from './gpu-context.ts';

const gpu = useGpu();

/** The same device, claiming not to have `feature` (everything else goes to the real device). */
function withoutFeature(device: GPUDevice, feature: string): GPUDevice {
  const features = new Set([...device.features].filter((f) => f !== feature));
  return new Proxy(device, {
    get(target, key) {
      if (key === 'features') return features;
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function run(device: GPUDevice, variant: MatmulVariant, [M, N, K]: Shape3, o: { transA?: boolean; transB?: boolean; bias?: boolean; beta?: number }) {
  const rng = new Rng(M * 7 + N * 3 + K);
  const bufs = [createStorage(device, rng.uniformArray(M * K)), createStorage(device, rng.uniformArray(K * N)),
    createStorage(device, rng.uniformArray(M * N)), createStorage(device, rng.uniformArray(N))] as const;
  submitDispatches(device, planMatmul(device, {
    a: bufs[0], b: bufs[1], c: bufs[2], bias: o.bias ? bufs[3] : undefined, M, N, K, variant, transA: o.transA, transB: o.transB, beta: o.beta,
  }).dispatches);
  const out = await readF32(device, bufs[2], M * N);
  for (const b of bufs) b.destroy();
  return out;
}

describe('matmul lab checks', () => {
  const checks = matmulChecks.filter((c) => (MATMUL_LAB_VARIANTS as readonly string[]).includes(c.variant));
  it('cover every lab variant at every check shape and form of the older variants', () => {
    const forms = (v: string) => new Set(checks.filter((c) => c.variant === v).map((c) => c.shape));
    const older = new Set(matmulChecks.filter((c) => c.variant === 'tiled128').map((c) => c.shape));
    expect(older.size).toBeGreaterThanOrEqual(8);
    for (const v of MATMUL_LAB_VARIANTS) for (const s of older) expect(forms(v), `${v} ${s}`).toContain(s);
  });
  // Before the tests below: they reuse these pipelines (compiling is most of the time on SwiftShader).
  it.each(checks.map((c) => [`${c.kernel}_${c.variant} ${c.shape}`, c] as const))('%s matches the CPU reference', async (_, check) => {
    expect(gpu().device.features.has('subgroups')).toBe(true); // so 'subgroup' computes here, not just refuses
    const cmps = await check.run(gpu().device, 42);
    expect(failures(cmps)).toBe('');
  });
});

describe('matmul lab variants', () => {
  it('are bit-identical to tiled128 (same summation order), aligned and unaligned, in the backprop forms', async () => {
    const { device } = gpu();
    const cases: [Shape3, { transA?: boolean; transB?: boolean; bias?: boolean; beta?: number }][] = [
      [[132, 136, 44], {}],                                       // every vec4 load path, two tiles each way
      [[130, 131, 45], { transA: true, transB: true, beta: 1 }], // scalar fallback, K tail, accumulate
      [[36, 140, 20], { transB: true, bias: true }],              // forward y = x·Wᵀ + b, vec4 A and Bᵀ
    ];
    for (const [shape, o] of cases) {
      const base = await run(device, 'tiled128', shape, o);
      expect(base.every(Number.isFinite)).toBe(true);
      for (const v of ['vec4', 'dbuf', 'subgroup'] as const) {
        const got = await run(device, v, shape, o);
        const diff = got.findIndex((x, i) => x !== base[i]);
        expect(diff, `${v} ${shape.join('x')} ${JSON.stringify(o)}: first difference at ${diff}`).toBe(-1);
      }
    }
  });

  it('load A and B as vec4 exactly when row stride, batch stride and binding offset allow, per operand', () => {
    const { device } = gpu();
    const [a, b, c] = [0, 1, 2].map(() => createStorage(device, 64 * 64)) as [GPUBuffer, GPUBuffer, GPUBuffer];
    // The pipeline key ends with the flags TRANS_A TRANS_B HAS_BIAS USE_BETA VEC_A VEC_B.
    const vec = (o: { M: number; N: number; K: number; transA?: boolean; transB?: boolean; strideA?: number; batch?: number }, variant: MatmulVariant = 'vec4') =>
      planMatmul(device, { a, b, c, variant, ...o }).dispatches.map((d) => d.pipeline.label.slice(-2));
    expect(vec({ M: 3, N: 8, K: 12 })).toEqual(['11']);          // lda = K = 12, ldb = N = 8
    expect(vec({ M: 3, N: 9, K: 12 })).toEqual(['10']);          // ldb = N = 9
    expect(vec({ M: 3, N: 8, K: 13 })).toEqual(['01']);          // lda = K = 13
    expect(vec({ M: 3, N: 8, K: 13, transA: true })).toEqual(['01']); // Aᵀ: lda = M = 3
    expect(vec({ M: 4, N: 8, K: 13, transA: true, transB: true })).toEqual(['10']); // ldb = K = 13
    expect(vec({ M: 4, N: 8, K: 12, batch: 2, strideA: 50 })).toEqual(['01']); // batch stride 50
    expect(vec({ M: 3, N: 8, K: 12 }, 'dbuf')).toEqual(['11']);
    for (const buf of [a, b, c]) buf.destroy();
  });

  it("refuse 'subgroup' with a clear error on a device without the 'subgroups' feature", () => {
    const { device } = gpu();
    const noSg = withoutFeature(device, 'subgroups');
    const buf = createStorage(device, 16);
    const p = { M: 3, N: 5, K: 7 };
    expect(applicableMatmulVariants(p, noSg)).toEqual(MATMUL_VARIANTS.filter((v) => v !== 'subgroup'));
    expect(() => planMatmul(noSg, { a: buf, b: buf, c: buf, ...p, variant: 'subgroup' }))
      .toThrow(/matmul 3×5×7: variant 'subgroup' does not apply here: it needs the device feature 'subgroups' \(applicable: tiled, /);
    expect(() => planMatmul(noSg, { a: buf, b: buf, c: buf, ...p, variant: 'subgroup' })).toThrow(MatmulVariantNotApplicable);
    // With the feature (SwiftShader has it) the same plan is accepted.
    expect(device.features.has('subgroups')).toBe(true);
    const [b, c] = [createStorage(device, 16), createStorage(device, 16)];
    expect(planMatmul(device, { a: buf, b, c, M: 1, N: 1, K: 1, variant: 'subgroup' }).dispatches).toHaveLength(1);
    for (const x of [buf, b, c]) x.destroy();
  });

  it("the 'subgroup' checks verify the refusal on a device without subgroups instead of failing", async () => {
    const noSg = withoutFeature(gpu().device, 'subgroups');
    const checks = matmulChecks.filter((c) => c.variant === 'subgroup');
    expect(checks.length).toBeGreaterThanOrEqual(8);
    for (const c of checks.slice(0, 3)) {
      const cmps = await c.run(noSg, 1);
      expect(cmps).toHaveLength(1);
      expect(cmps[0]!.name).toMatch(/refused/);
      expect(failures(cmps)).toBe('');
    }
  });
});
