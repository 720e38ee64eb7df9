// HF `config.json` and `generation_config.json` of the config's family (LlamaForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM: config.ts modelFamily) from our ModelConfig, and back (import).
import { makeConfig, modelFamily, type ModelConfig, type ModelFamily, type RopeScaling } from '../model/config.ts';

export interface SpecialIds {
  bos: number | null;
  eos: number | null;
  pad: number | null;
}

/** The HF architecture and model_type of each family (config.ts modelFamily). */
export const HF_FAMILIES: Record<ModelFamily, { architecture: string; modelType: string }> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
  qwen3: { architecture: 'Qwen3ForCausalLM', modelType: 'qwen3' },
};

/** What import accepts, for refusals. */
export const SUPPORTED_FAMILIES_TEXT = 'LlamaForCausalLM (model_type llama, incl. rope_scaling llama3), Qwen2ForCausalLM (qwen2: Qwen2/Qwen2.5) and Qwen3ForCausalLM (qwen3)';

/** rope_scaling / rope_parameters' scaling fields in HF's spelling (llama3), or null. */
function hfRopeScaling(c: ModelConfig): Record<string, unknown> | null {
  const r = c.ropeScaling;
  if (!r) return null;
  return { rope_type: 'llama3', factor: r.factor, low_freq_factor: r.lowFreqFactor, high_freq_factor: r.highFreqFactor, original_max_position_embeddings: r.originalMaxPositionEmbeddings };
}

/** config.json of the config's family: Llama's fields, and Qwen2's / Qwen3's own (biases, q/k norms, no sliding window). */
export function hfConfigJson(c: ModelConfig, ids: SpecialIds): Record<string, unknown> {
  const family = modelFamily(c);
  const { architecture, modelType } = HF_FAMILIES[family];
  const scaling = hfRopeScaling(c);
  const common: Record<string, unknown> = {
    architectures: [architecture],
    model_type: modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxSeqLen,
    initializer_range: c.initStd,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta, // transformers v4
    rope_parameters: { rope_type: 'default', rope_theta: c.ropeTheta, ...scaling }, // transformers v5
    rope_scaling: scaling, // transformers v4
    tie_word_embeddings: c.tieEmbeddings,
    attention_dropout: 0,
    use_cache: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: 'float32',
    transformers_version: '4.46.0',
  };
  // Qwen2/Qwen3: full attention in every layer (the sliding window is off, as in Qwen2.5's and Qwen3's releases).
  const qwen = { use_sliding_window: false, sliding_window: null, max_window_layers: c.layers };
  if (family === 'qwen2') return { ...common, ...qwen };
  if (family === 'qwen3') return { ...common, attention_bias: false, ...qwen };
  return { ...common, attention_bias: false, mlp_bias: false, pretraining_tp: 1 };
}

export function generationConfigJson(ids: SpecialIds): Record<string, unknown> {
  return { bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad, do_sample: false, transformers_version: '4.46.0' };
}

/**
 * Our ModelConfig from an HF config.json of a supported family (SUPPORTED_FAMILIES_TEXT); throws naming the field of
 * anything this engine cannot run (another architecture — Gemma-3 included —, o_proj/MLP biases, sliding-window
 * attention, a RoPE scaling other than llama3, another activation).
 */
export function modelConfigFromHf(json: unknown, where = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${where}: must be a JSON object`);
  const j = json as Record<string, unknown>;
  const fail = (field: string, why: string): never => { throw new Error(`${where}: ${field} ${why}`); };
  const arch = Array.isArray(j.architectures) ? j.architectures : [];
  const family = (Object.keys(HF_FAMILIES) as ModelFamily[]).find((f) => j.model_type === HF_FAMILIES[f].modelType
    || (j.model_type === undefined && arch.includes(HF_FAMILIES[f].architecture)));
  if (!family) {
    const gemma = /gemma/i.test(String(j.model_type)) || arch.some((a) => /gemma/i.test(String(a)));
    fail('model_type', `is ${JSON.stringify(j.model_type)} (architectures ${JSON.stringify(j.architectures)}): ${gemma ? 'Gemma models (Gemma-3 included) are not supported; ' : ''}supported are ${SUPPORTED_FAMILIES_TEXT}`);
  }
  const int = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < 1) fail(k, `must be a positive integer, got ${JSON.stringify(j[k])}`);
    return v as number;
  };
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `is ${JSON.stringify(act)}: only "silu" (SwiGLU) is supported`);
  if (j.mlp_bias === true) fail('mlp_bias', 'is true: MLP biases are not supported');
  if (j.attention_bias === true) {
    fail('attention_bias', `is true: ${family === 'llama' ? 'Llama' : 'Qwen3'}'s attention_bias also puts a bias on o_proj, which is not supported (Qwen2 models have their q/k/v biases without this field)`);
  }
  if (family !== 'llama' && j.use_sliding_window === true) fail('use_sliding_window', 'is true: sliding-window attention is not supported');
  const ropeParams = j.rope_parameters as Record<string, unknown> | undefined;
  const scaling = (j.rope_scaling ?? undefined) as Record<string, unknown> | undefined;
  const r = ropeParams && (ropeParams.rope_type ?? 'default') !== 'default' ? ropeParams : scaling ?? ropeParams;
  const ropeType = r?.rope_type ?? r?.type ?? 'default';
  let ropeScaling: RopeScaling | undefined;
  if (ropeType === 'llama3') {
    ropeScaling = {
      type: 'llama3', factor: r!.factor as number, lowFreqFactor: r!.low_freq_factor as number, highFreqFactor: r!.high_freq_factor as number,
      originalMaxPositionEmbeddings: r!.original_max_position_embeddings as number,
    };
  } else if (ropeType !== 'default') fail('rope_scaling', `type ${JSON.stringify(ropeType)} is not supported (only default RoPE and llama3 scaling)`);
  const partial = ropeParams?.partial_rotary_factor ?? j.partial_rotary_factor ?? 1;
  if (partial !== 1) fail('partial_rotary_factor', `is ${JSON.stringify(partial)}: only RoPE over the whole head (1) is supported`);
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const theta = (ropeParams?.rope_theta ?? j.rope_theta ?? 10000) as number;
  return makeConfig({
    vocabSize: int('vocab_size'),
    hidden,
    layers: int('num_hidden_layers'),
    heads,
    kvHeads: int('num_key_value_heads', heads),
    headDim: int('head_dim', hidden / heads),
    intermediate: int('intermediate_size'),
    maxSeqLen: int('max_position_embeddings'),
    ropeTheta: theta,
    rmsNormEps: (j.rms_norm_eps ?? 1e-6) as number,
    tieEmbeddings: (j.tie_word_embeddings ?? false) as boolean,
    initStd: (j.initializer_range ?? 0.02) as number,
    ...(family === 'qwen2' ? { attentionBias: true } : {}),
    ...(family === 'qwen3' ? { qkNorm: true } : {}),
    ...(ropeScaling ? { ropeScaling } : {}),
  }, where);
}
