// Export in the engine worker: a model source (the embedded default teacher, or an HF folder the user picked) →
// the files of one export format. Runs off the page's main thread; the files come back transferred, not copied.
import { exportModel, isExportFormat, EXPORT_FORMATS } from '../export/index.ts';
import { importedExportInput, importHfFolder } from '../export/import.ts';
import { paramLayout } from '../model/params.ts';
import { readModelFolder } from './model-fetch.ts';
import type { ModelFolderSource } from './runs/types.ts';

/** One exported file: relative path ('onnx/model.onnx') and its bytes. */
export interface ExportFileData {
  path: string;
  bytes: Uint8Array;
}

export interface ExportRequestData {
  /** An HF Llama folder (served at a URL, e.g. the embedded default teacher, or files the user picked), or a run's
   *  latest checkpoint (with its tokenizer and a training.json record). */
  source: ModelFolderSource | { runId: string };
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

export async function runExport(req: ExportRequestData, onProgress?: (message: string) => void): Promise<ExportResultData> {
  if (!isExportFormat(req.format)) throw new Error(`export: unknown format '${req.format}' (have: ${EXPORT_FORMATS.join(', ')})`);
  if ('runId' in req.source) throw new Error('export: a run is exported by the engine (createEngine), not runExport');
  const folder = await readModelFolder(req.source, onProgress);
  onProgress?.('reading the model');
  const imp = importHfFolder(folder);
  // Any tokenizer.json transformers.js reads, its tokenizer_config.json's special tokens and chat template with it.
  const input = importedExportInput(imp, `export ${req.name}`);
  onProgress?.(`writing ${req.format}`);
  const files = exportModel(input, req.format);
  const params = paramLayout(imp.config).count;
  return { name: req.name, files, params };
}
