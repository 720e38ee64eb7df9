// How much GPU memory a training run takes, from the same shapes src/model/activations.ts and gpu-model.ts
// allocate (the slab ×4 — parameters, gradients, AdamW m and v —, every activation with the student's logits as one
// chunk of rows (gpu-classifier.ts's logitsChunkRows at the default budget), the batch and its teacher input, a
// teacher model for dense KD / on-policy (every teacher of a mixture), the frozen DPO reference, the sample
// generator's KV cache), checked against the adapter's limits before a run starts. WebGPU does not tell how much
// memory the GPU has, so only single buffers can be checked for sure; the total is compared against a budget a
// laptop GPU has.
import type { ModelConfig } from '../../model/config.ts';
import { DEFAULT_LOGITS_BUDGET_BYTES, logitsChunkRows } from '../../model/gpu-classifier.ts';
import { baseLayout } from '../../model/base-layout.ts';
import { DEFAULT_LORA, loraLayout, type LoraConfig } from '../../model/lora.ts';
import { countParams, largestTensor } from '../../model/params.ts';
import type { MemoryEstimate } from './types.ts';

const F = 4; // bytes per float

/** Tokens a sample generation adds after its prompt (a prompt is at most half the training length). */
export const SAMPLE_NEW_TOKENS = 48;

/** The sample generator's length: a prompt of at most T/2 tokens and SAMPLE_NEW_TOKENS more, within the context (a
 *  pretrained model's context of thousands would size its KV cache for nothing). */
export const sampleLength = (model: Pick<ModelConfig, 'maxSeqLen'>, T: number): number => Math.min(model.maxSeqLen, Math.floor(T / 2) + SAMPLE_NEW_TOKENS);

/** Bytes of the activations and batch buffers of one (config, B, T) training model. */
function activationParts(c: ModelConfig, B: number, T: number, recompute = false): { total: number; logits: number } {
  const N = B * T, C = c.hidden, FF = c.intermediate, HD = c.heads * c.headDim, KD = c.kvHeads * c.headDim;
  // qkNorm (Qwen3) keeps q/k before the per-head norm and its 1/rms per layer, and their gradients in the scratch;
  // attentionBias (Qwen2) adds N ones (the bias gradients' column sums).
  const qk = c.qkNorm ? N * HD + N * KD + N * c.heads + N * c.kvHeads : 0;
  const perLayer = N * C * 2 + N * 2 + N * HD * 2 + N * KD * 2 + B * c.heads * T + N * FF * 3 + qk;
  const resid = (2 * c.layers + 1) * N * C;
  const scratch = N * C * 5 + N * HD * 2 + N * KD * 2 + B * c.heads * T + N * FF * 3 + N * 2
    + (c.qkNorm ? N * HD + N * KD : 0) + (c.attentionBias ? N : 0);
  const batch = N * 5 + 2 * Math.min(N, c.vocabSize) + 1;
  // The student's logits are one chunk of R rows (gpu-classifier.ts, the same rule at the default budget).
  const logits = logitsChunkRows(N, c.vocabSize) * c.vocabSize;
  // Under recompute one layer's activations are kept (the backward recomputes each layer's before using them).
  return { total: ((recompute ? 1 : c.layers) * perLayer + resid + scratch + batch + logits) * F, logits: logits * F };
}

export interface EstimateInput {
  model: ModelConfig;
  B: number;
  T: number;
  /** The teacher's input per batch: none, dense logits (N, V) or top-k (N, k). */
  teacher: { kind: 'none' } | { kind: 'dense' } | { kind: 'topk'; k: number };
  /** A teacher model held on the GPU (dense KD, on-policy): its config. */
  teacherModel?: ModelConfig;
  /** A teacher mixture's other teachers, each held on the GPU beside teacherModel (forward only): their configs. */
  mixtureModels?: ModelConfig[];
  /** RL: the reward model scoring the samples (weights and forward buffers; its config). */
  rewardModel?: ModelConfig;
  /** DPO/IPO: the frozen reference copy of the student. */
  reference?: boolean;
  /** LoRA: a frozen base (weights only) and the adapters trained (with their gradients and moments). */
  lora?: LoraConfig;
  /** One layer's activations kept, recomputed in the backward. */
  recompute?: boolean;
  /** KD across tokenizers: the ULD term's teacher rows (B·T, k of the top-k teacher) and a gradient chunk as large as
   *  the logits chunk, the two sharing the logits budget (gpu-uld.ts). */
  uld?: boolean;
}

export function estimateMemory(x: EstimateInput): MemoryEstimate {
  const { model: c, B, T } = x;
  const P = countParams(c);
  const parts: { name: string; bytes: number }[] = [];
  if (x.lora) {
    // The base has no gradients and no moments; each adapted linear keeps x·Aᵀ (N, r) for its backward.
    const ll = loraLayout(c, x.lora), adapted = ll.entries.length / 2, r = x.lora.rank;
    const baseBytes = baseLayout(c, x.lora.base).entries.reduce((s, e) => s + e.words * F, 0);
    parts.push({ name: `weights (frozen base${x.lora.base === 'f32' ? '' : `, linears in ${x.lora.base}`})`, bytes: baseBytes }, { name: `LoRA adapters, their gradients and AdamW moments (${ll.count.toLocaleString('en')} trained)`, bytes: 4 * ll.count * F });
    parts.push({ name: 'LoRA activations (x·Aᵀ per adapted linear)', bytes: (adapted + 1) * B * T * r * F });
    // LoRA dropout: one scratch (B·T, widest adapted input) for drop(x), shared by every linear.
    const maxIn = Math.max(...ll.entries.map((e) => (e.part === 'a' ? e.shape[1] : 0)));
    if (x.lora.dropout > 0) parts.push({ name: 'LoRA dropout scratch (drop(x) of the widest adapted input)', bytes: B * T * maxIn * F });
  } else {
    parts.push({ name: 'weights', bytes: P * F }, { name: 'gradients', bytes: P * F }, { name: 'AdamW moments (m, v)', bytes: 2 * P * F });
  }
  const acts = activationParts(c, B, T, x.recompute);
  const uld = x.uld && x.teacher.kind === 'topk' ? x.teacher.k : 0;
  const R = logitsChunkRows(B * T, c.vocabSize, uld ? DEFAULT_LOGITS_BUDGET_BYTES / 2 : DEFAULT_LOGITS_BUDGET_BYTES);
  const logitsBytes = R * c.vocabSize * F;
  parts.push({ name: `activations (B·T = ${B * T}${x.recompute ? ', one layer kept, the others recomputed' : ''})`, bytes: acts.total - acts.logits }, { name: `logits (chunk of ${R} of B·T = ${B * T} rows × V = ${c.vocabSize})`, bytes: logitsBytes });
  if (uld) parts.push({ name: `ULD term (its gradient chunk of ${R} rows × V, teacher rows B·T × ${uld}, weights and losses)`, bytes: logitsBytes + B * T * (uld + 2) * F });
  // A dense teacher's logits are the batch's input, (B·T, V) whole: the largest buffer of a KD run at a real vocabulary.
  const teacherLogits = x.teacher.kind === 'dense' ? B * T * c.vocabSize * F : 0;
  if (x.teacher.kind === 'dense') parts.push({ name: 'teacher logits (B·T × V)', bytes: teacherLogits });
  if (x.teacher.kind === 'topk') parts.push({ name: `teacher top-${x.teacher.k}`, bytes: B * T * x.teacher.k * 2 * F });
  // The slabs are split between tensors (slab-shards.ts): their largest buffer is the largest tensor.
  let largest = Math.max(largestTensor(c) * F, logitsBytes, teacherLogits);
  if (x.teacherModel) {
    const ta = activationParts(x.teacherModel, B, T);
    parts.push({ name: 'teacher model (weights and forward buffers)', bytes: 4 * countParams(x.teacherModel) * F + ta.total });
    largest = Math.max(largest, largestTensor(x.teacherModel) * F, ta.logits);
  }
  for (const [i, m] of (x.mixtureModels ?? []).entries()) {
    const ta = activationParts(m, B, T);
    parts.push({ name: `mixture teacher ${i + 2} (weights and forward buffers)`, bytes: 4 * countParams(m) * F + ta.total });
    largest = Math.max(largest, largestTensor(m) * F, ta.logits);
  }
  if (x.rewardModel) {
    const ra = activationParts(x.rewardModel, B + (B % 2), T);
    parts.push({ name: 'reward model (weights and forward buffers)', bytes: 4 * countParams(x.rewardModel) * F + ra.total });
    largest = Math.max(largest, largestTensor(x.rewardModel) * F, ra.logits);
  }
  if (x.reference && x.lora) {
    // The base with zero adapters, on the policy's base: its own activations and a zero adapter slab ×4.
    parts.push({ name: 'frozen reference (the shared base, adapters off)', bytes: 4 * loraLayout(c, x.lora).count * F + acts.total });
  } else if (x.reference) {
    parts.push({ name: 'frozen reference model', bytes: 4 * P * F + acts.total });
  }
  const L = sampleLength(c, T), KD = c.kvHeads * c.headDim;
  const genQk = c.qkNorm ? L * (c.heads * c.headDim + KD + c.heads) : 0; // q/k before their norms, 1/rms
  parts.push({ name: 'sample generator (KV cache)', bytes: (2 * c.layers * L * KD + L * (c.hidden * 4 + c.heads * c.headDim * 2 + KD * 2 + c.intermediate * 3 + c.vocabSize) + genQk) * F });
  return { bytes: parts.reduce((s, p) => s + p.bytes, 0), largestBuffer: largest, parts };
}

/** What a run's GPU memory is checked against: a budget most laptop GPUs (integrated ones too) can give a tab. */
export const MEMORY_BUDGET = 2 * 1024 ** 3;

/**
 * What would make a run fit (its largest buffer under the adapter's limit, its total under the budget), in words:
 * the batch and sequence length that would, read off the estimate's parts (logits and activations scale with B·T;
 * the weights, gradients and moments do not), or a smaller model when even one token a step does not fit.
 */
export function fitAdvice(x: EstimateInput, maxBuffer: number, budget = MEMORY_BUDGET): string | undefined {
  const at = (B: number, T: number) => estimateMemory({ ...x, B, T });
  const fits = (m: MemoryEstimate) => m.largestBuffer <= maxBuffer && m.bytes <= budget;
  if (fits(at(x.B, x.T))) return undefined;
  // Keeping the batch: recomputing the activations in the backward costs compute, not tokens.
  const again = estimateMemory({ ...x, recompute: true });
  if (!x.recompute && fits(again)) return `recomputing each layer's activations in the backward would fit at this batch (${(again.bytes / 1024 ** 3).toFixed(2)} GiB, about a third more compute)`;
  for (let B = x.B; B >= 1; B = Math.floor(B / 2)) {
    for (let T = x.T; T >= 8; T = Math.floor(T / 2)) if (fits(at(B, T))) return `batch ${B} × sequence length ${T} would fit (${(at(B, T).bytes / 1024 ** 3).toFixed(2)} GiB)`;
    if (B === 1) break;
  }
  const GiB = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (x.lora) return `the frozen base alone takes ${GiB(estimateMemory(x).parts[0]!.bytes)}: ${x.lora.base === 'f32' ? 'hold it in 16 bits (bf16), or ' : ''}pick a smaller model`;
  const fixed = 4 * countParams(x.model) * F;
  // Full training does not fit even at one short sequence: would LoRA (PEFT's default targets and rank, a bf16 base)?
  const lora = { ...x, lora: { ...DEFAULT_LORA, targets: [...DEFAULT_LORA.targets], base: 'bf16' as const } };
  const withLora = fitAdvice(lora, maxBuffer, budget);
  const verdict = withLora === undefined ? `${GiB(estimateMemory(lora).bytes)} at this batch: fits`
    : /^(batch|recomputing)/.test(withLora) ? withLora : 'does not fit either';
  return `the weights, gradients and AdamW moments alone take ${GiB(fixed)}: train LoRA adapters on a frozen bf16 base instead (${verdict}), or pick a smaller model`;
}
