// The one typed protocol between the page and the engine worker. The in-thread engine (src/engine/engine.ts)
// and the comlink proxy of workers/engine.worker.ts implement the same interface; progress arrives through a
// callback (a comlink proxy across the worker boundary); errors keep name, message and stack.
import type { AdapterReport } from './platform/gpu.ts';
import type { SelftestProgress, SelftestReport } from './engine/selftest.ts';

export type { AdapterReport, SelftestProgress, SelftestReport };

export interface EngineApi {
  /** Acquires the GPU (once) and reports adapter, limits and features. */
  gpuInfo(): Promise<AdapterReport>;
  /** Runs every kernel against its CPU reference at odd shapes. */
  selftest(onProgress?: (p: SelftestProgress) => void): Promise<SelftestReport>;
}
