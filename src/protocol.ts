// The one typed protocol between the page and the engine worker. The in-thread engine (src/engine/engine.ts)
// and the comlink proxy of workers/engine.worker.ts implement the same interface; progress arrives through a
// callback (a comlink proxy across the worker boundary); errors keep name, message and stack.
import type { AdapterReport } from './platform/gpu.ts';
import type { SelftestProgress, SelftestReport } from './engine/selftest.ts';

export type { AdapterReport, SelftestProgress, SelftestReport };

/** One exported file: relative path ('onnx/model.onnx') and its bytes. */
export interface ExportFileData {
  path: string;
  bytes: Uint8Array;
}

export interface ExportRequestData {
  /** An HF Llama folder served at a URL (e.g. the embedded default teacher), or files the user picked. */
  source: { url: string } | { files: Record<string, Uint8Array> };
  /** One of src/export/index.ts EXPORT_FORMATS. */
  format: string;
  /** Folder/zip name. */
  name: string;
}

export interface ExportResultData {
  name: string;
  files: ExportFileData[];
  /** Parameters of the exported model. */
  params: number;
}

export interface EngineApi {
  /** Acquires the GPU (once) and reports adapter, limits and features. */
  gpuInfo(): Promise<AdapterReport>;
  /** Runs every kernel against its CPU reference at odd shapes. */
  selftest(onProgress?: (p: SelftestProgress) => void): Promise<SelftestReport>;
  /** Builds the files of one export format (no GPU needed); progress as short messages. */
  exportModel(req: ExportRequestData, onProgress?: (message: string) => void): Promise<ExportResultData>;
}
