// The student's architecture: a typed config with its defaults in one place, validation that rejects unknown
// keys and impossible shapes, and presets from ≈1M to ≈60M parameters. Stored inside every checkpoint and export.
// The architecture is the one Hugging Face calls LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, grouped-query attention,
// optional tied embeddings), so exports load elsewhere. Three optional switches (absent = plain Llama, so older
// checkpoints load unchanged) make the pretrained families of issue #20: `attentionBias` (Qwen2/Qwen2.5: q/k/v
// projections with biases), `qkNorm` (Qwen3: per-head RMSNorm on q and k before RoPE) and `ropeScaling` of type
// llama3 (Llama-3.1/3.2: per-frequency inverse frequencies). modelFamily() names the HF family a config is.

export interface ModelConfig {
  /** Vocabulary size V: rows of the embedding and of lm_head, columns of the logits. */
  vocabSize: number;
  /**
   * Rows at the end of the vocabulary that are padding, not tokens (V rounded up to a multiple that suits the
   * kernels, VOCAB_MULTIPLE): masked out of every loss, never sampled, read back as −1e30 logits, dropped on
   * export. Absent = 0 (and a config without padding never carries the key).
   */
  vocabPadding?: number;
  /** Residual width C. */
  hidden: number;
  /** Layers L. */
  layers: number;
  /** Query heads H. */
  heads: number;
  /** Key/value heads (grouped-query attention); divides heads. */
  kvHeads: number;
  /** Head dim D; HF's head_dim (usually hidden / heads). */
  headDim: number;
  /** SwiGLU inner width F. */
  intermediate: number;
  /** Longest sequence T the model is trained/used at (RoPE positions). */
  maxSeqLen: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** lm_head shares the token embedding. */
  tieEmbeddings: boolean;
  /** Standard deviation of the normal weight init (HF initializer_range). */
  initStd: number;
  /** q/k/v projections carry biases bq/bk/bv (Qwen2/Qwen2.5; o_proj has none). Absent = false. */
  attentionBias?: boolean;
  /** Per-head RMSNorm (weights q_norm/k_norm of [headDim], eps rmsNormEps) on q and k after the projection, before RoPE (Qwen3). Absent = false. */
  qkNorm?: boolean;
  /** RoPE frequency scaling (Llama-3.1/3.2); absent = plain RoPE. */
  ropeScaling?: RopeScaling;
}

/** HF rope_scaling {rope_type: 'llama3', factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}. */
export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** The Hugging Face families a ModelConfig can be. */
export type ModelFamily = 'llama' | 'qwen2' | 'qwen3';

/** The HF family of a config: qkNorm → Qwen3, attentionBias → Qwen2, else Llama (RoPE scaling fits any). */
export function modelFamily(c: Pick<ModelConfig, 'attentionBias' | 'qkNorm'>): ModelFamily {
  return c.qkNorm ? 'qwen3' : c.attentionBias ? 'qwen2' : 'llama';
}

export const DEFAULT_CONFIG: ModelConfig = {
  vocabSize: 8192,
  hidden: 384,
  layers: 6,
  heads: 6,
  kvHeads: 6,
  headDim: 64,
  intermediate: 1024,
  maxSeqLen: 256,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  tieEmbeddings: true,
  initStd: 0.02,
};

/** Presets; the parameter counts are countParams' (tests/unit/model-config.test.ts prints them). */
export const PRESETS: Record<string, Partial<ModelConfig>> = {
  // Students for a software adapter (SwiftShader, CPU Vulkan) and the app's tests: at the default V = 8192
  // these counts are dominated by the embedding; at a small tokenizer's V (1–2k) they are 0.1–0.2M.
  'nano': { vocabSize: 1024, hidden: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 32, intermediate: 88, maxSeqLen: 128 },
  'micro': { vocabSize: 2048, hidden: 64, layers: 2, heads: 2, kvHeads: 1, headDim: 32, intermediate: 176, maxSeqLen: 256 },
  // 1.00M parameters: unit tests and in-browser demos.
  'tiny-1m': { vocabSize: 2048, hidden: 128, layers: 4, heads: 4, kvHeads: 2, headDim: 32, intermediate: 352, maxSeqLen: 256 },
  // 5.40M
  'small-5m': { vocabSize: 4096, hidden: 256, layers: 6, heads: 4, kvHeads: 2, headDim: 64, intermediate: 688, maxSeqLen: 256 },
  // 16.9M, untied: the benchmark model of shared/gpu/README.md (6 layers, d = 384, ff = 1024, V = 8192, T = 256).
  'base-17m': { vocabSize: 8192, hidden: 384, layers: 6, heads: 6, kvHeads: 6, headDim: 64, intermediate: 1024, maxSeqLen: 256, tieEmbeddings: false },
  // 27.4M
  'medium-27m': { vocabSize: 8192, hidden: 512, layers: 8, heads: 8, kvHeads: 4, headDim: 64, intermediate: 1376, maxSeqLen: 512 },
  // 56.0M
  'large-56m': { vocabSize: 16384, hidden: 640, layers: 10, heads: 10, kvHeads: 5, headDim: 64, intermediate: 1728, maxSeqLen: 512 },
};

const INT_KEYS = ['vocabSize', 'hidden', 'layers', 'heads', 'kvHeads', 'headDim', 'intermediate', 'maxSeqLen'] as const;

/** The vocabulary is padded to a multiple of this (the matmuls' 128-wide tiles; llm.c pads 50257 to 50304). */
export const VOCAB_MULTIPLE = 128;

/** The real tokens of a config: V minus its padding rows. */
export function realVocab(c: Pick<ModelConfig, 'vocabSize' | 'vocabPadding'>): number {
  return c.vocabSize - (c.vocabPadding ?? 0);
}

/** vocabSize / vocabPadding for a tokenizer of `tokens` ids, padded to a multiple of `multiple`. */
export function paddedVocab(tokens: number, multiple = VOCAB_MULTIPLE): { vocabSize: number; vocabPadding?: number } {
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`paddedVocab: the tokenizer's size must be a positive integer, got ${tokens}`);
  if (!Number.isInteger(multiple) || multiple < 1) throw new Error(`paddedVocab: multiple must be a positive integer, got ${multiple}`);
  const vocabSize = Math.ceil(tokens / multiple) * multiple;
  return vocabSize === tokens ? { vocabSize } : { vocabSize, vocabPadding: vocabSize - tokens };
}

/** Builds a full config from defaults + overrides; throws on unknown keys, wrong types or impossible shapes. */
export function makeConfig(overrides: Record<string, unknown> = {}, where = 'model config'): ModelConfig {
  const known = new Set([...Object.keys(DEFAULT_CONFIG), 'vocabPadding', 'attentionBias', 'qkNorm', 'ropeScaling']);
  const unknown = Object.keys(overrides).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`${where}: unknown key(s) ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${[...known].join(', ')})`);
  const c = { ...DEFAULT_CONFIG, ...overrides } as ModelConfig;
  for (const k of INT_KEYS) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${where}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  for (const k of ['ropeTheta', 'rmsNormEps', 'initStd'] as const) {
    if (typeof c[k] !== 'number' || !(c[k] > 0) || !Number.isFinite(c[k])) throw new Error(`${where}: ${k} must be a positive number, got ${JSON.stringify(c[k])}`);
  }
  if (typeof c.tieEmbeddings !== 'boolean') throw new Error(`${where}: tieEmbeddings must be true or false, got ${JSON.stringify(c.tieEmbeddings)}`);
  if (c.heads % c.kvHeads !== 0) throw new Error(`${where}: heads (${c.heads}) must be a multiple of kvHeads (${c.kvHeads})`);
  if (c.headDim % 2 !== 0) throw new Error(`${where}: headDim (${c.headDim}) must be even (RoPE rotates pairs)`);
  if (c.vocabPadding !== undefined) {
    if (!Number.isInteger(c.vocabPadding) || c.vocabPadding < 0 || c.vocabPadding >= c.vocabSize) {
      throw new Error(`${where}: vocabPadding must be an integer in [0, vocabSize = ${c.vocabSize}), got ${JSON.stringify(c.vocabPadding)}`);
    }
    if (c.vocabPadding === 0) delete c.vocabPadding; // one JSON form per model (checkpoints compare configs as JSON)
  }
  for (const k of ['attentionBias', 'qkNorm'] as const) {
    if (c[k] === undefined) continue;
    if (typeof c[k] !== 'boolean') throw new Error(`${where}: ${k} must be true or false, got ${JSON.stringify(c[k])}`);
    if (!c[k]) delete c[k]; // absent = false: one JSON form per model
  }
  if (c.qkNorm && c.attentionBias) {
    throw new Error(`${where}: qkNorm with attentionBias matches no supported family (Qwen2 has q/k/v biases, Qwen3 q/k norms; Qwen3's attention_bias would also bias o_proj)`);
  }
  if (c.ropeScaling !== undefined) c.ropeScaling = checkRopeScaling(c.ropeScaling, `${where}: ropeScaling`);
  return c;
}

function checkRopeScaling(r: unknown, where: string): RopeScaling {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${where}: must be an object, got ${JSON.stringify(r)}`);
  const o = r as Record<string, unknown>;
  const keys = ['type', 'factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings'];
  const unknown = Object.keys(o).filter((k) => !keys.includes(k));
  if (unknown.length) throw new Error(`${where}: unknown key(s) ${unknown.join(', ')} (known: ${keys.join(', ')})`);
  if (o.type !== 'llama3') throw new Error(`${where}: type must be 'llama3' (the only RoPE scaling supported), got ${JSON.stringify(o.type)}`);
  for (const k of ['factor', 'lowFreqFactor', 'highFreqFactor'] as const) {
    if (typeof o[k] !== 'number' || !(o[k] > 0) || !Number.isFinite(o[k])) throw new Error(`${where}: ${k} must be a positive number, got ${JSON.stringify(o[k])}`);
  }
  if (!((o.highFreqFactor as number) > (o.lowFreqFactor as number))) throw new Error(`${where}: highFreqFactor (${o.highFreqFactor}) must exceed lowFreqFactor (${o.lowFreqFactor})`);
  if (!Number.isInteger(o.originalMaxPositionEmbeddings) || (o.originalMaxPositionEmbeddings as number) < 1) {
    throw new Error(`${where}: originalMaxPositionEmbeddings must be a positive integer, got ${JSON.stringify(o.originalMaxPositionEmbeddings)}`);
  }
  return { type: 'llama3', factor: o.factor as number, lowFreqFactor: o.lowFreqFactor as number, highFreqFactor: o.highFreqFactor as number, originalMaxPositionEmbeddings: o.originalMaxPositionEmbeddings as number };
}

/**
 * RoPE's inverse frequencies inv_freq_j (j < headDim/2), in f64: θ^(−2j/D), rescaled per frequency for llama3
 * scaling exactly as HF's `_compute_llama3_parameters`: wavelengths 2π/inv_freq longer than original/low_freq_factor
 * are divided by factor, shorter than original/high_freq_factor kept, and in between interpolated smoothly.
 */
export function ropeInvFreq(c: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const D = c.headDim, out = new Float64Array(D / 2);
  for (let j = 0; j < D / 2; j++) out[j] = c.ropeTheta ** ((-2 * j) / D);
  const r = c.ropeScaling;
  if (!r) return out;
  const lowWavelen = r.originalMaxPositionEmbeddings / r.lowFreqFactor;
  const highWavelen = r.originalMaxPositionEmbeddings / r.highFreqFactor;
  for (let j = 0; j < D / 2; j++) {
    const f = out[j]!, wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) out[j] = f / r.factor;
    else if (wavelen >= highWavelen) {
      const smooth = (r.originalMaxPositionEmbeddings / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
      out[j] = (1 - smooth) * (f / r.factor) + smooth * f;
    }
  }
  return out;
}

export function presetConfig(name: string, overrides: Record<string, unknown> = {}): ModelConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (have: ${Object.keys(PRESETS).join(', ')})`);
  return makeConfig({ ...p, ...overrides }, `model preset '${name}'`);
}
