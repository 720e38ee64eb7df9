// Entry point of src/export: one function that turns a trained model into the files of a chosen format, used by
// the CLI (`npm run cli -- export`) and the app's engine worker. Formats:
//   safetensors      HF folder: model.safetensors + config/generation_config/tokenizer files (transformers, TRL)
//   onnx             transformers.js folder: onnx/model.onnx (+ KV cache) + the same side files
//   onnx-q8, onnx-q4 the same folder with 8-bit / 4-bit weights (onnx/model_quantized.onnx, onnx/model_q4.onnx)
//   transformers.js  both of the above in one folder (what public/models/ ships: loads in transformers.js and HF)
//   gguf, gguf-f16   one .gguf for llama.cpp / Ollama (F32 or F16 weights)
//   gguf-q8_0, gguf-q4_k_m, gguf-q4_0   the same, quantized as llama.cpp's llama-quantize does (gguf-quant.ts)
//   ollama           the Q4_K_M .gguf + a Modelfile (chat template as Ollama's Go template, stop tokens): ollama create
// The names and labels are formats.ts (the page imports them without the exporters).
import { exportGguf } from './gguf.ts';
import { exportHfFolder } from './hf-folder.ts';
import { ollamaFiles } from './ollama.ts';
import { exportOnnxFolder } from './onnx.ts';
import { ggufAddsBos } from './gguf-vocab.ts';
import type { ExportFormat } from './formats.ts';
import type { ExportFile, ExportInput } from './types.ts';

export type { ExportFile, ExportInput } from './types.ts';

export { EXPORT_FORMATS, FORMAT_LABELS, isExportFormat, type ExportFormat } from './formats.ts';

/** The files of `format`; files with one path in two parts of a combined format must be identical (side files). */
export function exportModel(x: ExportInput, format: ExportFormat, extra: ExportFile[] = []): ExportFile[] {
  const parts: ExportFile[][] = {
    safetensors: () => [exportHfFolder(x)],
    onnx: () => [exportOnnxFolder(x)],
    'onnx-q8': () => [exportOnnxFolder(x, 'q8')],
    'onnx-q4': () => [exportOnnxFolder(x, 'q4')],
    // The ONNX folder's config.json (it adds transformers.js_config) + the HF folder's weights.
    'transformers.js': () => [exportOnnxFolder(x), exportHfFolder(x).filter((f) => f.path.endsWith('.safetensors'))],
    gguf: () => [exportGguf(x, { dtype: 'F32' })],
    'gguf-f16': () => [exportGguf(x, { dtype: 'F16' })],
    'gguf-q8_0': () => [exportGguf(x, { dtype: 'Q8_0' })],
    'gguf-q4_k_m': () => [exportGguf(x, { dtype: 'Q4_K_M' })],
    'gguf-q4_0': () => [exportGguf(x, { dtype: 'Q4_0' })],
    // What Ollama pulls by default: the Q4_K_M mix.
    ollama: () => [ollamaFiles(x, exportGguf(x, { dtype: 'Q4_K_M' })[0]!, ggufAddsBos(x))],
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
