// The Hugging Face folder of a trained student: model.safetensors (HF names of its family from the mapping table in
// hf-names.ts, F32 or F16) beside config.json, generation_config.json, tokenizer.json and tokenizer_config.json.
// transformers' AutoModelForCausalLM (Llama/Qwen2/Qwen3ForCausalLM) loads it; importHfFolder (import.ts) reads it back. Our own
// ModelConfig travels in the safetensors __metadata__ so the round trip is exact and checkable.
import { exportView, jsonFile, hfSideFiles, type ExportFile, type ExportInput } from './types.ts';
import { toHfTensors } from './hf-names.ts';
import { writeSafetensors, type SafetensorsDtype } from './safetensors.ts';

/** __metadata__ key holding JSON.stringify(ModelConfig). */
export const MODEL_CONFIG_METADATA_KEY = 'webgpu_distill.model_config';

export interface HfFolderOptions {
  /** Storage dtype of the weights; default F32. */
  dtype?: 'F32' | 'F16';
  /** Extra __metadata__ strings (e.g. the training run's name). */
  metadata?: Record<string, string>;
}

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** model.safetensors + config.json + generation_config.json + tokenizer.json + tokenizer_config.json. */
export function exportHfFolder(input: ExportInput, opts: HfFolderOptions = {}): ExportFile[] {
  const x = exportView(input);
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new Error(`exportHfFolder: dtype must be 'F32' or 'F16', got ${JSON.stringify(dtype)}`);
  if (opts.metadata && MODEL_CONFIG_METADATA_KEY in opts.metadata) throw new Error(`exportHfFolder: metadata key '${MODEL_CONFIG_METADATA_KEY}' is reserved`);
  const side = hfSideFiles(x); // validates the tokenizer against the config first
  const weights = writeSafetensors(toHfTensors(x.config, x.params), {
    dtype,
    metadata: { ...opts.metadata, [MODEL_CONFIG_METADATA_KEY]: JSON.stringify(x.config) },
  });
  const files = side.map((f) => {
    if (f.path !== 'config.json' || dtype === 'F32') return f;
    const config = JSON.parse(new TextDecoder().decode(f.bytes)) as Record<string, unknown>;
    return jsonFile('config.json', { ...config, torch_dtype: TORCH_DTYPE[dtype] });
  });
  return [{ path: 'model.safetensors', bytes: weights }, ...files];
}
