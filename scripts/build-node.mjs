// Bundles the Node entry points (CLI, benchmarks) with esbuild into .node-dist/, so they run with plain `node`
// here and on the GPU machine (where node_modules does not travel: Dawn comes from $DAWN_NODE).
// WGSL imported as `./x.wgsl?raw` becomes a string, as under Vite.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const extra = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const out = resolve(root, '.node-dist');
// Start clean: only this build's bundles travel to the GPU machine.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

const entries = { cli: 'src/cli/main.ts', bench: 'bench/bench.ts', ...Object.fromEntries(extra.map((e) => [e.replace(/.*\/|\.ts$/g, ''), e])) };
await build({
  entryPoints: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, resolve(root, v)])),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  external: ['webgpu', 'node-llama-cpp', 'onnxruntime-node'], // native addons with binaries, loaded from node_modules (bench/quant.ts)
  // Bundled CommonJS dependencies may call require(): give ESM output one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [rawPlugin],
  logLevel: quiet ? 'warning' : 'info',
});
for (const f of ['bench/torch_bench.py', 'bench/gpu.sh']) {
  try { copyFileSync(resolve(root, f), resolve(out, f.split('/').pop())); } catch (e) { if (e.code !== 'ENOENT') throw e; }
}
