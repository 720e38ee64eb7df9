// `npm run bench`: kernel benchmarks on Dawn in Node. Writes JSON (shape, ms, TFLOP/s, adapter) and, given a
// PyTorch baseline from bench/torch_bench.py run on the same GPU in the same command, the ratio ours ÷ PyTorch.
// Each result is spot-checked against the CPU reference (sampled elements) so a fast wrong kernel is caught.
//   npm run bench -- [--preset local|gpu] [--shapes MxNxK,...] [--variants tiled,naive] [--iters N]
//                    [--out file.json] [--baseline torch.json]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createStorage, readF32 } from '../src/gpu/dispatch.ts';
import { MATMUL_VARIANTS, matmulFlops, planMatmul, type MatmulVariant } from '../src/kernels/matmul/matmul.ts';
import { matmulRefAt } from '../src/kernels/matmul/matmul.ref.ts';
import { describeAdapter } from '../src/platform/gpu.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { Rng } from '../src/util/rng.ts';
import { timeDispatches } from './timing.ts';

/** Shapes per preset. 'local' fits SwiftShader (≈1 GFLOP/s); 'gpu' is what the GPU machine runs. */
export const PRESETS: Record<string, string> = {
  local: '128x128x128,256x256x256,17x33x65',
  // 4096³; a transformer's training shapes (B·T=8192, d=768, ff=3072, V=32000) forward and backward.
  gpu: '1024x1024x1024,4096x4096x4096,8192x3072x768,8192x768x3072,768x3072x8192,8192x32000x768',
};

interface Args { shapes: [number, number, number][]; variants: MatmulVariant[]; iters: number; out: string; baseline?: string }

function parseArgs(argv: string[]): Args {
  const get = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
  for (const a of argv) if (a.startsWith('--') && !['--preset', '--shapes', '--variants', '--iters', '--out', '--baseline'].includes(a)) throw new Error(`unknown option ${a}`);
  const preset = get('preset') ?? 'local';
  const spec = get('shapes') ?? PRESETS[preset];
  if (!spec) throw new Error(`unknown preset '${preset}' (have: ${Object.keys(PRESETS).join(', ')})`);
  const shapes = spec.split(',').map((s) => {
    const d = s.split('x').map(Number);
    if (d.length !== 3 || !d.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`bad shape '${s}': expected MxNxK`);
    return d as [number, number, number];
  });
  const variants = (get('variants') ?? 'tiled,tiled128,naive').split(',') as MatmulVariant[];
  for (const v of variants) if (!MATMUL_VARIANTS.includes(v)) throw new Error(`unknown variant '${v}' (have: ${MATMUL_VARIANTS.join(', ')})`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return { shapes, variants, iters: Number(get('iters') ?? (preset === 'gpu' ? 20 : 3)), out: get('out') ?? `bench/results/matmul-${stamp}.json`, baseline: get('baseline') };
}

const fmtRate = (tflops: number) => (tflops >= 0.1 ? `${tflops.toFixed(2).padStart(7)} TFLOP/s` : `${(tflops * 1e3).toFixed(2).padStart(7)} GFLOP/s`);

interface TorchRow { M: number; N: number; K: number; ms: number; tflops: number }

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const baseline: TorchRow[] = args.baseline ? JSON.parse(readFileSync(args.baseline, 'utf8')).results : [];
  const ctx = await acquireNodeGpu();
  const { device } = ctx;
  console.error(`adapter: ${describeAdapter(ctx.report)}`);
  const results = [];
  for (const [M, N, K] of args.shapes) {
    const rng = new Rng(M * 31 + N * 7 + K);
    const a = rng.uniformArray(M * K);
    const b = rng.uniformArray(K * N);
    const bufA = createStorage(device, a);
    const bufB = createStorage(device, b);
    const bufC = createStorage(device, M * N);
    for (const variant of args.variants) {
      // The naive kernel at big shapes takes minutes on SwiftShader and says nothing new on a GPU past 4096³.
      if (variant === 'naive' && matmulFlops(M, N, K) > 2 * 4096 ** 3) continue;
      const d = planMatmul(device, { a: bufA, b: bufB, c: bufC, M, N, K, variant });
      const t = await timeDispatches(device, d, args.iters);
      // Spot check 32 sampled outputs (plus the corners) against the CPU reference.
      const c = await readF32(device, bufC, M * N);
      let worst = 0;
      const picks = [[0, 0], [M - 1, N - 1], ...Array.from({ length: 32 }, () => [rng.int(M), rng.int(N)])];
      for (const [m, n] of picks) {
        const ref = matmulRefAt(a, b, N, K, m!, n!);
        const scale = matmulRefAt(a.map(Math.abs), b.map(Math.abs), N, K, m!, n!);
        worst = Math.max(worst, Math.abs(c[m! * N + n!]! - ref) / (1e-6 + 1e-5 * scale));
      }
      const torch = baseline.find((r) => r.M === M && r.N === N && r.K === K);
      const tflops = matmulFlops(M, N, K) / (t.ms * 1e-3) / 1e12;
      const row = {
        kernel: 'matmul', variant, M, N, K, ms: t.ms, tflops, timing: t.method, wallMs: t.wallMs, iters: args.iters,
        checkWorstRatio: worst, checkOk: worst <= 1,
        ...(torch ? { torchMs: torch.ms, torchTflops: torch.tflops, ratioVsTorch: torch.ms / t.ms } : {}),
      };
      results.push(row);
      console.error(`matmul_${variant.padEnd(6)} ${`${M}x${N}x${K}`.padEnd(16)} ${t.ms.toFixed(3).padStart(9)} ms ${fmtRate(tflops)} (${t.method})` +
        (torch ? `  torch ${torch.tflops.toFixed(2)} TFLOP/s  ratio ${(torch.ms / t.ms).toFixed(3)}` : '') + (worst <= 1 ? '' : `  CHECK FAILED (${worst.toFixed(1)})`));
    }
    bufA.destroy(); bufB.destroy(); bufC.destroy();
  }
  const out = { date: new Date().toISOString(), adapter: ctx.report, results };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  console.error(`wrote ${args.out}`);
  ctx.release();
  return results.every((r) => r.checkOk) ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
