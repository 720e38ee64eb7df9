// ONNX export of the student (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM: config.ts modelFamily) with a KV cache, in the layout transformers.js and Optimum use for
// text generation, so `pipeline('text-generation', folder)` runs it on onnxruntime-node / -web (wasm or WebGPU).
// Standard opset-17 ops only (no com.microsoft contrib ops); weights are float32 initializers under their HF names
// (src/export/hf-names.ts), in HF's (out, in) layout, applied by Gemm(transB = 1) on rows flattened to N = B·S.
// The q8 / q4 variants store the linear weights quantized (onnx-quant.ts; q4 uses com.microsoft MatMulNBits).
// The math is src/model/ref-model.ts's, step for step:
//   inputs   input_ids (B, S) int64, attention_mask (B, P+S) int64, position_ids (B, S) int64,
//            past_key_values.{l}.key|value (B, Hkv, P, D) float32           P = past length (0 on the first call)
//   x = wte[input_ids]                                                       (N, C)
//   per layer: h = rmsnorm(x); q, k = rope(h·Wqᵀ, h·Wkᵀ) at position_ids; v = h·Wvᵀ
//              (Qwen2: + q/k/v biases, Gemm's C input; Qwen3: per-head rmsnorm of q and k before RoPE;
//               llama3 scaling: RoPE at ropeInvFreq's frequencies)
//              present.{l}.key|value = concat(past, new) on the time axis    (B, Hkv, P+S, D)
//              o = softmax(q·kᵀ/√D masked) · v, query head h reads kv head ⌊h/G⌋, G = H/Hkv
//              x += o·Woᵀ;  x += (silu(h2·W_gateᵀ) ⊙ h2·W_upᵀ)·W_downᵀ with h2 = rmsnorm(x)
//   logits = rmsnorm(x)·W_lmᵀ (B, S, V), W_lm = wte when tied (one initializer serves both).
// Mask: query i of the S new tokens sits at absolute index P + i; it may read key j ≤ P + i whose attention_mask
// is 1 (left padding and the causal mask with a past). Banned scores are replaced (Where) by float32's lowest
// value, never −∞, so padded rows that may read nothing stay finite (uniform) instead of NaN.
import { modelFamily, ropeInvFreq, type ModelConfig } from '../model/config.ts';
import { HF_FAMILIES } from './hf-config.ts';
import { toHfTensors } from './hf-names.ts';
import { DT_FLOAT, DT_INT64, GraphBuilder } from './onnx-proto.ts';
import { exportView, hfSideFiles, jsonFile, type ExportFile, type ExportInput } from './types.ts';
import { addOnnxWeights, ONNX_DTYPE_PATH, onnxLinear, type OnnxWeights } from './onnx-quant.ts';

export const ONNX_OPSET = 17;
/** Path of the graph inside an exported folder (transformers.js: fp32 → onnx/model.onnx). */
export const ONNX_MODEL_PATH = 'onnx/model.onnx';
/** torch.finfo(float32).min: the score of a banned (masked) key, as HF's eager attention uses. */
const MASKED_SCORE = -3.4028234663852886e38;

// Symbolic dims; transformers.js fills an empty cache from the past inputs' metadata: 'batch_size' becomes B, any
// other name 0, so Hkv and D must be fixed numbers there.
const DIM_B = 'batch_size';
const DIM_S = 'sequence_length';
const DIM_P = 'past_sequence_length';
const DIM_T = 'total_sequence_length';

/** Tensors every layer shares, computed once at the top of the graph. */
interface Shared {
  /** cos / sin of position_ids · inv_freq, duplicated over both halves: (B, 1, S, D), broadcast over heads. */
  cos: string;
  sin: string;
  /** True where query i may NOT read key j: (B, 1, 1, S, T), broadcast over (Hkv, G). */
  banned: string;
}

/** Weights of one layer by HF name. */
interface LayerWeights {
  attnNorm: string; wq: string; wk: string; wv: string; wo: string;
  /** Qwen2's q/k/v biases; Qwen3's per-head q/k norm gains. */
  bq?: string; bk?: string; bv?: string; qNorm?: string; kNorm?: string;
  mlpNorm: string; wGate: string; wUp: string; wDown: string;
}

// ------------------------------------------------------------------------------------------------------- blocks

/** y = x / √(mean(x²) + eps) · weight over the last axis. x (N, C) → (N, C). */
function rmsnorm(b: GraphBuilder, x: string, weight: string, eps: number): string {
  const ms = b.op('ReduceMean', [b.op('Mul', [x, x])], { axes: [-1], keepdims: 1 }); // (N, 1)
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [ms, b.f32(eps)])])]); // (N, 1)
  return b.op('Mul', [b.op('Mul', [x, inv]), weight]); // (N, C)
}

/** y = x·Wᵀ (+ bias) with W stored (out, in) as in HF (fp32, or quantized: onnx-quant.ts). x (N, in) → (N, out). */
const linear = onnxLinear;

/**
 * cos and sin tables of HF's RoPE at the given positions: angle(b, s, j) = position_ids[b, s] · inv_freq_j
 * (θ^(−2j/D), llama3-scaled when the config says so) for j < D/2, repeated for j + D/2 (rotate_half pairs j and
 * j + D/2). Computed in float32 as HF does.
 */
function ropeTables(b: GraphBuilder, positionIds: string, c: ModelConfig): { cos: string; sin: string } {
  const half = c.headDim / 2;
  const invFreq = Float32Array.from(ropeInvFreq(c));
  const pos = b.op('Unsqueeze', [b.op('Cast', [positionIds], { to: DT_FLOAT }), b.i64([2])]); // (B, S, 1)
  const freqs = b.op('Mul', [pos, b.initF32('rope.inv_freq', [half], invFreq)]); // (B, S, D/2)
  const emb = b.op('Concat', [freqs, freqs], { axis: -1 }); // (B, S, D)
  const heads = b.i64([1]);
  return {
    cos: b.op('Unsqueeze', [b.op('Cos', [emb]), heads], {}, 'rope.cos'), // (B, 1, S, D)
    sin: b.op('Unsqueeze', [b.op('Sin', [emb]), heads], {}, 'rope.sin'), // (B, 1, S, D)
  };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x[D/2:], x[:D/2]). x (B, heads, S, D). */
function rope(b: GraphBuilder, x: string, s: Shared, D: number): string {
  const [x1, x2] = b.opN('Split', [x, b.i64([D / 2, D / 2])], 2, { axis: -1 }); // (B, heads, S, D/2) each
  const rotated = b.op('Concat', [b.op('Neg', [x2!]), x1!], { axis: -1 }); // (B, heads, S, D)
  return b.op('Add', [b.op('Mul', [x, s.cos]), b.op('Mul', [rotated, s.sin])]);
}

/**
 * The banned-key mask shared by all layers: key j is banned for query i (absolute index P + i) when j > P + i
 * (causal, past included) or attention_mask[b, j] = 0 (padding). Result (B, 1, 1, S, T) bool.
 */
function attentionMask(b: GraphBuilder, attentionMask: string, shapeBS: string): string {
  const S = b.op('Gather', [shapeBS, b.i64(1)], { axis: 0 }); // scalar
  const T = b.op('Gather', [b.op('Shape', [attentionMask]), b.i64(1)], { axis: 0 }); // scalar P + S
  const P = b.op('Sub', [T, S]); // scalar past length
  const qPos = b.op('Unsqueeze', [b.op('Range', [P, T, b.i64(1)]), b.i64([1])]); // (S, 1): P..T−1
  const kPos = b.op('Unsqueeze', [b.op('Range', [b.i64(0), T, b.i64(1)]), b.i64([0])]); // (1, T): 0..T−1
  const future = b.op('Greater', [kPos, qPos]); // (S, T)
  const padded = b.op('Unsqueeze', [b.op('Equal', [attentionMask, b.i64(0)]), b.i64([1, 2, 3])]); // (B, 1, 1, 1, T)
  return b.op('Or', [padded, future], {}, 'attention.banned'); // (B, 1, 1, S, T)
}

/**
 * Grouped-query causal attention with a KV cache for layer l. h (N, C) → (N, C) after Wo; declares the outputs
 * present.{l}.key|value (B, Hkv, P+S, D). G = H / Hkv query heads share each kv head (head h reads ⌊h/G⌋).
 */
function attention(b: GraphBuilder, h: string, l: number, w: LayerWeights, s: Shared, c: ModelConfig, headShapes: Map<number, string>): string {
  const { heads: H, kvHeads: Hkv, headDim: D } = c;
  const G = H / Hkv;
  const split = (x: string, n: number) => b.op('Transpose', [b.op('Reshape', [x, headShapes.get(n)!])], { perm: [0, 2, 1, 3] }); // (N, n·D) → (B, n, S, D)
  const norm = (x: string, gain?: string) => (gain ? rmsnorm(b, x, gain, c.rmsNormEps) : x); // per head, over D
  const q = rope(b, norm(split(linear(b, h, w.wq, w.bq), H), w.qNorm), s, D); // (B, H, S, D)
  const k = rope(b, norm(split(linear(b, h, w.wk, w.bk), Hkv), w.kNorm), s, D); // (B, Hkv, S, D)
  const v = split(linear(b, h, w.wv, w.bv), Hkv); // (B, Hkv, S, D)

  const pastK = b.input(`past_key_values.${l}.key`, DT_FLOAT, [DIM_B, Hkv, DIM_P, D]);
  const pastV = b.input(`past_key_values.${l}.value`, DT_FLOAT, [DIM_B, Hkv, DIM_P, D]);
  const kAll = b.op('Concat', [pastK, k], { axis: 2 }, `present.${l}.key`); // (B, Hkv, T, D)
  const vAll = b.op('Concat', [pastV, v], { axis: 2 }, `present.${l}.value`); // (B, Hkv, T, D)
  b.output(kAll, DT_FLOAT, [DIM_B, Hkv, DIM_T, D]);
  b.output(vAll, DT_FLOAT, [DIM_B, Hkv, DIM_T, D]);

  // Group the query heads under their kv head: (B, H, S, D) → (B, Hkv, G, S, D); k, v get a broadcast G axis.
  const qScaled = b.op('Mul', [q, b.f32(1 / Math.sqrt(D))]);
  const qG = b.op('Reshape', [qScaled, b.i64([0, Hkv, G, -1, D])]); // (B, Hkv, G, S, D)
  const kT = b.op('Transpose', [b.op('Unsqueeze', [kAll, b.i64([2])])], { perm: [0, 1, 2, 4, 3] }); // (B, Hkv, 1, D, T)
  const scores = b.op('MatMul', [qG, kT]); // (B, Hkv, G, S, T)
  const masked = b.op('Where', [s.banned, b.f32(MASKED_SCORE), scores]); // (B, Hkv, G, S, T)
  const probs = b.op('Softmax', [masked], { axis: -1 });
  const oG = b.op('MatMul', [probs, b.op('Unsqueeze', [vAll, b.i64([2])])]); // (B, Hkv, G, S, D)
  const oHeads = b.op('Reshape', [oG, b.i64([0, H, -1, D])]); // (B, H, S, D)
  const oRows = b.op('Transpose', [oHeads], { perm: [0, 2, 1, 3] }); // (B, S, H, D)
  const o = b.op('Reshape', [oRows, b.i64([-1, H * D])]); // (N, H·D)
  return linear(b, o, w.wo); // (N, C)
}

/** SwiGLU: (silu(x·W_gateᵀ) ⊙ x·W_upᵀ)·W_downᵀ. x (N, C) → (N, C). */
function mlp(b: GraphBuilder, x: string, w: LayerWeights): string {
  const gate = linear(b, x, w.wGate); // (N, F)
  const up = linear(b, x, w.wUp); // (N, F)
  const a = b.op('Mul', [b.op('Mul', [gate, b.op('Sigmoid', [gate])]), up]); // (N, F)
  return linear(b, a, w.wDown); // (N, C)
}

// ------------------------------------------------------------------------------------------------------- model

/**
 * The ONNX graph (ModelProto bytes) of the model with parameter slab `params` (paramLayout order). Throws when
 * the slab does not fit the config or the weights would pass protobuf's 2 GB limit.
 */
export function buildOnnxModel(config: ModelConfig, params: Float32Array, weights: OnnxWeights = 'fp32'): Uint8Array {
  const tensors = toHfTensors(config, params); // shapes asserted against the config
  const { vocabSize: V, hidden: C, heads: H, kvHeads: Hkv, headDim: D, rmsNormEps: eps } = config;
  const { architecture, modelType } = HF_FAMILIES[modelFamily(config)];
  const b = new GraphBuilder(`${modelType}_causal_lm`);
  const inputIds = b.input('input_ids', DT_INT64, [DIM_B, DIM_S]);
  const mask = b.input('attention_mask', DT_INT64, [DIM_B, DIM_T]);
  const positionIds = b.input('position_ids', DT_INT64, [DIM_B, DIM_S]);
  addOnnxWeights(b, tensors, weights, config.tieEmbeddings);

  const shapeBS = b.op('Shape', [inputIds], {}, 'shape.batch_seq'); // [B, S] (int64, shape (2))
  const headShapes = new Map<number, string>();
  for (const n of new Set([H, Hkv])) headShapes.set(n, b.op('Concat', [shapeBS, b.i64([n, D])], { axis: 0 })); // [B, S, n, D]
  const shared: Shared = { ...ropeTables(b, positionIds, config), banned: attentionMask(b, mask, shapeBS) };

  // (B, S) ids → (N, C) rows.
  let x = b.op('Reshape', [b.op('Gather', ['model.embed_tokens.weight', inputIds], { axis: 0 }), b.i64([-1, C])]);
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}.`;
    const w: LayerWeights = {
      attnNorm: `${p}input_layernorm.weight`, wq: `${p}self_attn.q_proj.weight`, wk: `${p}self_attn.k_proj.weight`,
      wv: `${p}self_attn.v_proj.weight`, wo: `${p}self_attn.o_proj.weight`, mlpNorm: `${p}post_attention_layernorm.weight`,
      wGate: `${p}mlp.gate_proj.weight`, wUp: `${p}mlp.up_proj.weight`, wDown: `${p}mlp.down_proj.weight`,
      ...(config.attentionBias ? { bq: `${p}self_attn.q_proj.bias`, bk: `${p}self_attn.k_proj.bias`, bv: `${p}self_attn.v_proj.bias` } : {}),
      ...(config.qkNorm ? { qNorm: `${p}self_attn.q_norm.weight`, kNorm: `${p}self_attn.k_norm.weight` } : {}),
    };
    x = b.op('Add', [x, attention(b, rmsnorm(b, x, w.attnNorm, eps), l, w, shared, config, headShapes)]); // (N, C)
    x = b.op('Add', [x, mlp(b, rmsnorm(b, x, w.mlpNorm, eps), w)]); // (N, C)
  }
  const hf = rmsnorm(b, x, 'model.norm.weight', eps); // (N, C)
  const lmHead = config.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const logits2d = linear(b, hf, lmHead); // (N, V)
  const logits = b.op('Reshape', [logits2d, b.op('Concat', [shapeBS, b.i64([V])], { axis: 0 })], {}, 'logits'); // (B, S, V)
  b.output(logits, DT_FLOAT, [DIM_B, DIM_S, V]);

  return b.encode({
    opset: ONNX_OPSET,
    producer: 'webgpu-distill',
    docString: `${architecture}${config.ropeScaling ? ' (llama3 RoPE scaling)' : ''} with KV cache: ${config.layers} layers, hidden ${C}, ${H} heads (${Hkv} kv) × ${D}, vocab ${V}`,
    metadata: { model_type: modelType, tie_word_embeddings: String(config.tieEmbeddings), ...(weights === 'fp32' ? {} : { weights }) },
  });
}

/**
 * The folder transformers.js loads with `pipeline('text-generation', folder)`: config.json (plus
 * `"transformers.js_config": {"dtype": "fp32"}`, so the browser's wasm backend, whose default is q8, also picks
 * onnx/model.onnx), generation_config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx.
 */
export function exportOnnxFolder(input: ExportInput, weights: OnnxWeights = 'fp32'): ExportFile[] {
  const x = exportView(input);
  const side = hfSideFiles(x).map((f) => {
    if (f.path !== 'config.json') return f;
    const cfg = JSON.parse(new TextDecoder().decode(f.bytes)) as Record<string, unknown>;
    return jsonFile('config.json', { ...cfg, 'transformers.js_config': { dtype: weights } });
  });
  return [...side, { path: ONNX_DTYPE_PATH[weights], bytes: buildOnnxModel(x.config, x.params, weights) }];
}
