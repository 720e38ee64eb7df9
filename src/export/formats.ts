// The export formats and their labels: one table for the exporters (index.ts), the CLI and the page's Export stage
// (which imports only this file, not the writers).
export const EXPORT_FORMATS = ['safetensors', 'onnx', 'transformers.js', 'gguf', 'gguf-f16', 'ollama'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const FORMAT_LABELS: Record<ExportFormat, string> = {
  safetensors: 'safetensors + HF config (transformers, TRL)',
  onnx: 'ONNX with KV cache (transformers.js, onnxruntime)',
  'transformers.js': 'safetensors + ONNX in one folder',
  gguf: 'GGUF F32 (llama.cpp, Ollama)',
  'gguf-f16': 'GGUF F16 (llama.cpp, Ollama)',
  ollama: 'Ollama: GGUF F16 + Modelfile (ollama create)',
};

export function isExportFormat(s: string): s is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(s);
}
