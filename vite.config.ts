// Vite config for the static app: index.html + src/ui, engine workers as ES module workers.
import { defineConfig } from 'vite';

export default defineConfig({
  root: '.',
  publicDir: 'public',
  // Relative base: the built dist/ can be served from any sub-path of a static host.
  base: './',
  build: { outDir: 'dist', target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 2048 },
  worker: { format: 'es' },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
