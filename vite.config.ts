// Vite config for the static app: index.html + src/ui, engine workers as ES module workers.
import { defineConfig } from 'vite';

export default defineConfig({
  root: '.',
  publicDir: 'public',
  // Relative base: the built dist/ can be served from any sub-path of a static host.
  base: './',
  build: { outDir: 'dist', target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 2048 },
  worker: { format: 'es' },
  // The dev server pre-bundles what its scan of these entries finds. The scan does not follow `new Worker(new URL())`,
  // so without the workers here their dependencies (transformers.js, jinja, onnx-proto) are found only when a worker
  // imports them: Vite then re-optimizes, answers the worker's earlier imports with 504 "Outdated Optimize Dep", and
  // a worker has no page reload to recover (an engine worker that never reports its adapter, now and then).
  optimizeDeps: { entries: ['index.html', 'workers/*.worker.ts'] },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
