// HF `config.json` and `generation_config.json` for LlamaForCausalLM from our ModelConfig, and back (import).
import { makeConfig, type ModelConfig } from '../model/config.ts';

export interface SpecialIds {
  bos: number | null;
  eos: number | null;
  pad: number | null;
}

export function hfConfigJson(c: ModelConfig, ids: SpecialIds): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
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
    rope_parameters: { rope_type: 'default', rope_theta: c.ropeTheta }, // transformers v5
    rope_scaling: null,
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    use_cache: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: 'float32',
    transformers_version: '4.46.0',
  };
}

export function generationConfigJson(ids: SpecialIds): Record<string, unknown> {
  return { bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad, do_sample: false, transformers_version: '4.46.0' };
}

/**
 * Our ModelConfig from an HF config.json of a Llama-style model; throws naming the field of anything this engine
 * cannot run (another architecture, biases, RoPE scaling, another activation).
 */
export function modelConfigFromHf(json: unknown, where = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${where}: must be a JSON object`);
  const j = json as Record<string, unknown>;
  const fail = (field: string, why: string): never => { throw new Error(`${where}: ${field} ${why}`); };
  const arch = j.architectures;
  if (j.model_type !== 'llama' && !(Array.isArray(arch) && arch.includes('LlamaForCausalLM'))) {
    fail('model_type', `is ${JSON.stringify(j.model_type)} (architectures ${JSON.stringify(arch)}): only Llama-style models (LlamaForCausalLM) can be imported`);
  }
  const int = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < 1) fail(k, `must be a positive integer, got ${JSON.stringify(j[k])}`);
    return v as number;
  };
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `is ${JSON.stringify(act)}: only "silu" (SwiGLU) is supported`);
  if (j.attention_bias === true) fail('attention_bias', 'is true: biases are not supported');
  if (j.mlp_bias === true) fail('mlp_bias', 'is true: biases are not supported');
  const ropeParams = j.rope_parameters as Record<string, unknown> | undefined;
  const scaling = j.rope_scaling as Record<string, unknown> | null | undefined;
  const ropeType = ropeParams?.rope_type ?? scaling?.rope_type ?? scaling?.type ?? 'default';
  if (ropeType !== 'default') fail('rope_scaling', `type ${JSON.stringify(ropeType)} is not supported (only default RoPE)`);
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
  }, where);
}
