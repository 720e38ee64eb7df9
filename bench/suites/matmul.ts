// Matmul benchmark suite: each variant at each M×N×K, spot-checked against the CPU reference on sampled elements.
// Default variants: every lab variant that applies to the shape on this device (matmul.ts MATMUL_VARIANT_INFO).
import { createStorage, readF32 } from '../../src/gpu/dispatch.ts';
import { MATMUL_VARIANTS, matmulFlops, matmulVariantApplies, planMatmul, type MatmulVariant } from '../../src/kernels/matmul/matmul.ts';
import { matmulRefAt } from '../../src/kernels/matmul/matmul.ref.ts';
import { Rng } from '../../src/util/rng.ts';
import { timeDispatches } from '../../src/gpu/timing.ts';
import { parseDims, withBaseline, type BenchRow, type Suite } from './common.ts';

export const matmulSuite: Suite = {
  name: 'matmul',
  presets: {
    local: '128x128x128,256x256x256,17x33x65',
    // 4096³; a transformer's training shapes (B·T = 8192, d = 768, ff = 3072, V = 32000) forward and backward.
    gpu: '1024x1024x1024,4096x4096x4096,8192x3072x768,8192x768x3072,768x3072x8192,8192x32000x768',
  },
  async run({ device, shapes, iters, variants, baseline, log }) {
    const vs = (variants ?? MATMUL_VARIANTS) as MatmulVariant[];
    for (const v of vs) if (!MATMUL_VARIANTS.includes(v)) throw new Error(`unknown matmul variant '${v}' (have: ${MATMUL_VARIANTS.join(', ')})`);
    // Asked for by name: planMatmul says why it does not apply. By default: only those that apply.
    const applies = (v: MatmulVariant, M: number, N: number, K: number) => variants !== undefined || matmulVariantApplies(v, { M, N, K }, device);
    const rows: BenchRow[] = [];
    for (const shape of shapes) {
      const [M, N, K] = parseDims(shape, 3, 'matmul MxNxK') as [number, number, number];
      const rng = new Rng(M * 31 + N * 7 + K);
      const a = rng.uniformArray(M * K);
      const b = rng.uniformArray(K * N);
      const bufA = createStorage(device, a);
      const bufB = createStorage(device, b);
      const bufC = createStorage(device, M * N);
      for (const variant of vs) {
        if (!applies(variant, M, N, K)) continue;
        // The naive kernel says nothing new past 4096³ and takes minutes on SwiftShader.
        if (variant === 'naive' && matmulFlops(M, N, K) > 2 * 4096 ** 3) continue;
        const t = await timeDispatches(device, planMatmul(device, { a: bufA, b: bufB, c: bufC, M, N, K, variant }).dispatches, iters);
        const c = await readF32(device, bufC, M * N);
        let worst = 0;
        const picks = [[0, 0], [M - 1, N - 1], ...Array.from({ length: 32 }, () => [rng.int(M), rng.int(N)])] as [number, number][];
        for (const [m, n] of picks) {
          const ref = matmulRefAt(a, b, N, K, m, n);
          const scale = matmulRefAt(a.map(Math.abs), b.map(Math.abs), N, K, m, n);
          worst = Math.max(worst, Math.abs(c[m * N + n]! - ref) / (1e-6 + 1e-5 * scale));
        }
        const row = withBaseline({
          suite: 'matmul', kernel: 'matmul', variant, shape, ms: t.ms, timing: t.method,
          rate: matmulFlops(M, N, K) / (t.ms * 1e-3) / 1e12, unit: 'TFLOP/s',
          checkOk: worst <= 1, checkDetail: `worst err/bound ${worst.toFixed(3)} over ${picks.length} sampled elements`,
        }, baseline);
        rows.push(row);
        log(row);
      }
      bufA.destroy(); bufB.destroy(); bufC.destroy();
    }
    return rows;
  },
};
