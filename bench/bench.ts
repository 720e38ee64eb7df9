// `npm run bench`: kernel benchmarks on Dawn in Node. Writes JSON (suite, kernel, shape, ms, TFLOP/s or GB/s,
// adapter) and, given PyTorch baselines from bench/torch_bench.py run on the same GPU in the same command, the
// ratio torch ms ÷ our ms. Every row is spot-checked against the CPU reference so a fast wrong kernel is caught.
//   npm run bench -- [--suite matmul|all] [--preset local|gpu] [--shapes S1,S2] [--variants a,b]
//                    [--iters N] [--out file.json] [--baseline torch.json[,torch2.json]]
//   npm run bench -- --suite elicit [...]   elicitation throughput vs a test server (no GPU; bench/elicit-bench.ts)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { describeAdapter } from '../src/platform/gpu.ts';
import { acquireNodeGpu } from '../src/platform/node.ts';
import { formatRow, type BenchRow, type Suite } from './suites/common.ts';
import { attentionSuite } from './suites/attention.ts';
import { elicitBenchMain } from './elicit-bench.ts';
import { lossSuite } from './suites/loss.ts';
import { matmulSuite } from './suites/matmul.ts';
import { trainSuite } from './suites/train.ts';

export const SUITES: Suite[] = [matmulSuite, lossSuite, attentionSuite, trainSuite];

const OPTIONS = ['--suite', '--preset', '--shapes', '--variants', '--iters', '--out', '--baseline'];

function parseArgs(argv: string[]) {
  const get = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
  for (const a of argv) if (a.startsWith('--') && !OPTIONS.includes(a)) throw new Error(`unknown option ${a} (have: ${OPTIONS.join(' ')})`);
  const suiteName = get('suite') ?? 'all';
  const suites = suiteName === 'all' ? SUITES : SUITES.filter((s) => s.name === suiteName);
  if (suites.length === 0) throw new Error(`unknown suite '${suiteName}' (have: all, ${SUITES.map((s) => s.name).join(', ')})`);
  const preset = get('preset') ?? 'local';
  if (preset !== 'local' && preset !== 'gpu') throw new Error(`unknown preset '${preset}' (have: local, gpu)`);
  if (get('shapes') && suites.length > 1) throw new Error('--shapes needs one --suite');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    suites, preset, shapes: get('shapes'), variants: get('variants')?.split(','),
    iters: Number(get('iters') ?? (preset === 'gpu' ? 20 : 3)),
    out: get('out') ?? `bench/results/bench-${stamp}.json`,
    baselines: (get('baseline') ?? '').split(',').filter(Boolean),
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  // Baseline files: {suite, results: [{...shape fields, ms}]}; the shape string is rebuilt from the suite's fields.
  const baselines = new Map<string, Map<string, { ms: number }>>();
  for (const f of args.baselines) {
    const j = JSON.parse(readFileSync(f, 'utf8')) as { suite?: string; results: Record<string, number | string>[] };
    const suite = j.suite ?? 'matmul';
    const keyFields: Record<string, string[]> = { matmul: ['M', 'N', 'K'], loss: ['N', 'V'], attention: ['B', 'T', 'H', 'Hkv', 'D'], train: ['shape'] };
    const m = baselines.get(suite) ?? new Map();
    for (const r of j.results) m.set((keyFields[suite] ?? []).map((k) => r[k]).join('x'), { ms: Number(r.ms) });
    baselines.set(suite, m);
  }
  const ctx = await acquireNodeGpu();
  console.error(`adapter: ${describeAdapter(ctx.report)}`);
  const rows: BenchRow[] = [];
  for (const suite of args.suites) {
    rows.push(...await suite.run({
      device: ctx.device,
      shapes: (args.shapes ?? suite.presets[args.preset as 'local' | 'gpu']).split(','),
      iters: args.iters,
      variants: args.variants,
      baseline: baselines.get(suite.name) ?? new Map(),
      log: (r) => console.error(formatRow(r)),
    }));
  }
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify({ date: new Date().toISOString(), adapter: ctx.report, results: rows }, null, 2));
  console.error(`wrote ${args.out}`);
  ctx.release();
  return rows.every((r) => r.checkOk) ? 0 : 1;
}

/** The elicit suite has options of its own and never acquires the GPU. */
function entry(argv: string[]): Promise<number> {
  const i = argv.indexOf('--suite');
  return i >= 0 && argv[i + 1] === 'elicit' ? elicitBenchMain(argv) : main();
}

// A worker thread running this bundle is the elicit suite's test server (bench/elicit-bench.ts), not a benchmark.
if (isMainThread) {
  entry(process.argv.slice(2)).then((code) => process.exit(code), (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
}
