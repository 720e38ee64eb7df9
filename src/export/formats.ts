// The export formats by name, with their labels: imported by the page (the Export stage's list) without pulling
// the exporters into its bundle; src/export/index.ts maps each to its files.
export const EXPORT_FORMATS = ['safetensors', 'onnx', 'onnx-q8', 'onnx-q4', 'transformers.js', 'gguf', 'gguf-f16', 'gguf-q8_0', 'gguf-q4_k_m', 'gguf-q4_0', 'ollama'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const FORMAT_LABELS: Record<ExportFormat, string> = {
  safetensors: 'safetensors + HF config (transformers, TRL)',
  onnx: 'ONNX with KV cache (transformers.js, onnxruntime)',
  'onnx-q8': 'ONNX, 8-bit weights (transformers.js dtype q8)',
  'onnx-q4': 'ONNX, 4-bit weights (transformers.js dtype q4)',
  'transformers.js': 'safetensors + ONNX in one folder',
  gguf: 'GGUF F32 (llama.cpp, Ollama)',
  'gguf-f16': 'GGUF F16 (llama.cpp, Ollama)',
  'gguf-q8_0': 'GGUF Q8_0, 8-bit (llama.cpp, Ollama)',
  'gguf-q4_k_m': 'GGUF Q4_K_M, 4-bit mix as Ollama ships (llama.cpp, Ollama)',
  'gguf-q4_0': 'GGUF Q4_0, 4-bit (llama.cpp, Ollama)',
  ollama: 'Ollama: GGUF Q4_K_M + Modelfile (ollama create)',
};

export function isExportFormat(s: string): s is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(s);
}

/** What a LoRA run exports besides its merged model: the adapters alone, for the base they were trained on. */
export const ADAPTER_FORMATS = ['lora-peft', 'lora-gguf'] as const;
export type AdapterFormat = (typeof ADAPTER_FORMATS)[number];

export const ADAPTER_LABELS: Record<AdapterFormat, string> = {
  'lora-peft': 'LoRA adapter for PEFT (PeftModel.from_pretrained on the base model)',
  'lora-gguf': 'LoRA adapter GGUF (llama.cpp --lora, Ollama ADAPTER, on the base GGUF)',
};

export function isAdapterFormat(s: string): s is AdapterFormat {
  return (ADAPTER_FORMATS as readonly string[]).includes(s);
}
