// Entry point of src/export: one function that turns a trained model into the files of a chosen format, used by
// the CLI (`npm run cli -- export`) and the app's engine worker. Formats:
//   safetensors      HF folder: model.safetensors + config/generation_config/tokenizer files (transformers, TRL)
//   onnx             transformers.js folder: onnx/model.onnx (+ KV cache) + the same side files
//   transformers.js  both of the above in one folder (what public/models/ ships: loads in transformers.js and HF)
//   gguf, gguf-f16   one .gguf for llama.cpp / Ollama (F32 or F16 weights)
import { exportGguf } from './gguf.ts';
import { exportHfFolder } from './hf-folder.ts';
import { exportOnnxFolder } from './onnx.ts';
import type { ExportFile, ExportInput } from './types.ts';

export type { ExportFile, ExportInput } from './types.ts';

export const EXPORT_FORMATS = ['safetensors', 'onnx', 'transformers.js', 'gguf', 'gguf-f16'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const FORMAT_LABELS: Record<ExportFormat, string> = {
  safetensors: 'safetensors + HF config (transformers, TRL)',
  onnx: 'ONNX with KV cache (transformers.js, onnxruntime)',
  'transformers.js': 'safetensors + ONNX in one folder',
  gguf: 'GGUF F32 (llama.cpp, Ollama)',
  'gguf-f16': 'GGUF F16 (llama.cpp, Ollama)',
};

export function isExportFormat(s: string): s is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(s);
}

/** The files of `format`; files with one path in two parts of a combined format must be identical (side files). */
export function exportModel(x: ExportInput, format: ExportFormat, extra: ExportFile[] = []): ExportFile[] {
  const parts: ExportFile[][] = {
    safetensors: () => [exportHfFolder(x)],
    onnx: () => [exportOnnxFolder(x)],
    // The ONNX folder's config.json (it adds transformers.js_config) + the HF folder's weights.
    'transformers.js': () => [exportOnnxFolder(x), exportHfFolder(x).filter((f) => f.path.endsWith('.safetensors'))],
    gguf: () => [exportGguf(x, { dtype: 'F32' })],
    'gguf-f16': () => [exportGguf(x, { dtype: 'F16' })],
  }[format]();
  const byPath = new Map<string, ExportFile>();
  for (const f of [...parts.flat(), ...extra]) {
    const had = byPath.get(f.path);
    if (had && (had.bytes.length !== f.bytes.length || had.bytes.some((b, i) => b !== f.bytes[i]))) {
      throw new Error(`export ${format}: two different files named '${f.path}'`);
    }
    byPath.set(f.path, f);
  }
  return [...byPath.values()];
}
