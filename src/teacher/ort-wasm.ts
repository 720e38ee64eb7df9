// Browser only (the teacher worker): ONNX Runtime Web's WASM runtime served by our own build instead of the CDN
// that transformers.js points at by default, so the app works on a closed network and fetches nothing from
// elsewhere. Vite emits both files as assets (`?url`); they are the files of the very onnxruntime-web that
// transformers.js imports (one copy in node_modules), so JS glue and binary always match. The WebGPU build of
// onnxruntime-web uses the 'asyncify' variant (also for its WASM execution provider).
import { env } from '@huggingface/transformers';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';

/** Absolute URLs of the runtime files, resolved against `base` (the worker's own URL). */
export function ortWasmPaths(base: string): { mjs: string; wasm: string } {
  return { mjs: new URL(mjsUrl, base).href, wasm: new URL(wasmUrl, base).href };
}

/** Points transformers.js's ONNX Runtime at the bundled runtime files. Call before the first model loads. */
export function useBundledOrtWasm(base: string): { mjs: string; wasm: string } {
  const paths = ortWasmPaths(base);
  const wasm = env.backends.onnx.wasm;
  if (!wasm) throw new Error('transformers.js exposes no ONNX Runtime WASM settings (env.backends.onnx.wasm)');
  wasm.wasmPaths = { ...paths };
  // One thread: the page is not cross-origin isolated, so SharedArrayBuffer (and WASM threads) are unavailable.
  wasm.numThreads = 1;
  return paths;
}
