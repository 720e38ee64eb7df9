// The student's architecture: a typed config with its defaults in one place, validation that rejects unknown
// keys and impossible shapes, and presets from ≈1M to ≈60M parameters. Stored inside every checkpoint and export.
// The architecture is the one Hugging Face calls LlamaForCausalLM (RMSNorm, RoPE, SwiGLU, grouped-query attention,
// optional tied embeddings), so exports load elsewhere.

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
  const known = new Set([...Object.keys(DEFAULT_CONFIG), 'vocabPadding']);
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
  return c;
}

export function presetConfig(name: string, overrides: Record<string, unknown> = {}): ModelConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (have: ${Object.keys(PRESETS).join(', ')})`);
  return makeConfig({ ...p, ...overrides }, `model preset '${name}'`);
}
