// LoRA adapters out (issue #21), beside the base model's own export:
//   peft      adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, base_model_name_or_path) +
//             adapter_model.safetensors with PEFT's tensor names
//             (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (r, in), ….lora_B.weight (out, r)):
//             PeftModel.from_pretrained(base, folder) loads it onto the HF base model.
//   gguf      a llama.cpp LoRA adapter: general.type = adapter, adapter.type = lora, adapter.lora.alpha, tensors
//             blk.N.<name>.weight.lora_a (dims [in, r]) and .lora_b (dims [r, out]) — llama.cpp's layout, A as is,
//             B with the same per-head Q/K row permutation as the base GGUF (W' = P·W = P·B·A: only B's rows move;
//             llama architecture only), general.architecture the base's family.
//             Loaded with the base GGUF: llama-cli -m model.gguf --lora adapter.gguf (Ollama: ADAPTER ./adapter.gguf).
// The merged model (mergeLora, src/model/lora.ts) goes out through every base format unchanged.
import { modelFamily, type ModelConfig } from '../model/config.ts';
import { LORA_TARGETS, loraLayout, type LoraConfig } from '../model/lora.ts';
import { ggufName, permuteRopeRows } from './gguf.ts';
import { encodeGguf, type GgufKv, type GgufTensor } from './gguf-format.ts';
import { hfName } from './hf-names.ts';
import { writeSafetensors } from './safetensors.ts';
import { jsonFile, type ExportFile } from './types.ts';

export interface LoraExportInput {
  /** The base model's config (the adapters' shapes come from it). */
  config: ModelConfig;
  lora: LoraConfig;
  /** The adapter slab (loraLayout order). */
  params: Float32Array;
  /** What the adapter applies to: a Hub id or a folder name (PEFT's base_model_name_or_path). */
  baseModel: string;
}

function checked(x: LoraExportInput): ReturnType<typeof loraLayout> {
  const layout = loraLayout(x.config, x.lora);
  if (x.params.length !== layout.slabFloats) throw new Error(`lora export: the adapter slab has ${x.params.length} floats, the LoRA config needs ${layout.slabFloats}`);
  for (const e of layout.entries) {
    const v = x.params.subarray(e.offset, e.offset + e.size);
    const bad = v.findIndex((f) => !Number.isFinite(f));
    if (bad >= 0) throw new Error(`lora export: ${e.name} has a non-finite value (${v[bad]}) at index ${bad}`);
  }
  return layout;
}

/** PEFT's name of an adapter tensor: 'layers.0.wq.lora_a' → 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'. */
export function peftName(base: string, part: 'a' | 'b'): string {
  return `base_model.model.${hfName(base).replace(/\.weight$/, '')}.lora_${part.toUpperCase()}.weight`;
}

/** The PEFT adapter folder. */
export function exportPeftAdapter(x: LoraExportInput): ExportFile[] {
  const layout = checked(x);
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: x.baseModel, revision: null,
    r: x.lora.rank, lora_alpha: x.lora.alpha, lora_dropout: x.lora.dropout,
    target_modules: x.lora.targets.map((t) => LORA_TARGETS[t]),
    bias: 'none', fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, use_rslora: false, use_dora: false,
    modules_to_save: null, layers_to_transform: null, layers_pattern: null, rank_pattern: {}, alpha_pattern: {},
  };
  const tensors = layout.entries.map((e) => ({ name: peftName(e.base, e.part), shape: [...e.shape], data: x.params.subarray(e.offset, e.offset + e.size) }));
  return [jsonFile('adapter_config.json', config), { path: 'adapter_model.safetensors', bytes: writeSafetensors(tensors) }];
}

/** The llama.cpp LoRA adapter GGUF (F32 tensors). */
export function exportLoraGguf(x: LoraExportInput, path = 'adapter.gguf'): ExportFile[] {
  const layout = checked(x);
  const c = x.config;
  // Only llama's graph rotates adjacent pairs (the base GGUF permutes Q/K rows); qwen2/qwen3 rotate as HF does.
  const permute = modelFamily(c) === 'llama';
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: { type: 'string', value: modelFamily(c) } },
    { key: 'general.type', value: { type: 'string', value: 'adapter' } },
    { key: 'general.name', value: { type: 'string', value: `${x.baseModel} LoRA` } },
    { key: 'adapter.type', value: { type: 'string', value: 'lora' } },
    { key: 'adapter.lora.alpha', value: { type: 'float32', value: x.lora.alpha } },
  ];
  const tensors: GgufTensor[] = layout.entries.map((e) => {
    const { name, rope } = ggufName(hfName(e.base));
    let data = x.params.subarray(e.offset, e.offset + e.size);
    if (e.part === 'b' && rope && permute) data = permuteRopeRows(data, rope === 'q' ? c.heads : c.kvHeads, c.headDim, e.shape[1]);
    return { name: `${name}.lora_${e.part}`, dims: [e.shape[1], e.shape[0]], type: 'F32', data };
  });
  return [{ path, bytes: encodeGguf({ kvs, tensors, alignment: 32 }) }];
}
