// The GPU buffers a training step of the student needs besides the parameter slab: the batch inputs, every
// activation the backward pass reads (one buffer per tensor per layer, so no binding exceeds the per-binding
// limit at realistic sizes), and the gradient scratch that backward reuses layer after layer (llm.c style).
// Kernels never allocate: everything a step touches is created here once per (config, B, T).
import type { ModelConfig } from './config.ts';

export interface LayerActs {
  ln1: GPUBuffer; // (N, C) rmsnorm(x; attn_norm)
  rstd1: GPUBuffer; // (N)
  q: GPUBuffer; // (N, H·D) after RoPE
  k: GPUBuffer; // (N, Hkv·D) after RoPE
  v: GPUBuffer; // (N, Hkv·D)
  att: GPUBuffer; // (N, H·D) attention output
  lse: GPUBuffer; // (B, H, T) log-sum-exp per query row
  ln2: GPUBuffer; // (N, C) rmsnorm(x_mid; mlp_norm)
  rstd2: GPUBuffer; // (N)
  gate: GPUBuffer; // (N, F) ln2·W_gateᵀ
  up: GPUBuffer; // (N, F) ln2·W_upᵀ
  h: GPUBuffer; // (N, F) silu(gate) ⊙ up
  // qkNorm only (Qwen3): the projections before the per-head RMSNorm, and its 1/rms per (row, head).
  qRaw?: GPUBuffer; // (N, H·D) ln1·Wqᵀ
  kRaw?: GPUBuffer; // (N, Hkv·D) ln1·Wkᵀ
  rstdQ?: GPUBuffer; // (N·H)
  rstdK?: GPUBuffer; // (N·Hkv)
}

export interface Activations {
  /** resid[0] = embedding output; resid[2l+1] = layer l after attention; resid[2l+2] = after the MLP. (N, C) each. */
  resid: GPUBuffer[];
  layers: LayerActs[];
  lnf: GPUBuffer; // (N, C) final rmsnorm
  rstdf: GPUBuffer; // (N)
  /** (R, V): the logits of one chunk of R rows (gpu-classifier.ts; R = N when the batch fits the logits budget),
   *  overwritten in place by d(loss)/d(logits) when the chunk's loss runs. */
  logits: GPUBuffer;
  proj: GPUBuffer; // (N, C) scratch: attention/MLP output projection before the residual add
  // Backward scratch, reused by every layer.
  dresid: GPUBuffer; // (N, C) gradient of the residual stream
  dtmp: GPUBuffer; // (N, C)
  dln: GPUBuffer; // (N, C)
  datt: GPUBuffer; // (N, H·D)
  dq: GPUBuffer; // (N, H·D)
  dk: GPUBuffer; // (N, Hkv·D)
  dv: GPUBuffer; // (N, Hkv·D)
  delta: GPUBuffer; // (B, H, T)
  dh: GPUBuffer; // (N, F)
  dgate: GPUBuffer; // (N, F)
  dup: GPUBuffer; // (N, F)
  /** qkNorm only: gradients of qRaw / kRaw. */
  dqRaw?: GPUBuffer; // (N, H·D)
  dkRaw?: GPUBuffer; // (N, Hkv·D)
  /** attentionBias only: N ones, the left operand of the bias gradients' column sums (1ᵀ·dq). Filled by the model. */
  ones?: GPUBuffer; // (N)
  // Hidden-state distillation only (the model's `hidden` option), Ct = the teacher's hidden width:
  hiddenP?: GPUBuffer; // (N, Ct) resid[2L]·W_hᵀ, the projected student hidden
  dHiddenP?: GPUBuffer; // (N, Ct) its gradient, written by the hidden loss
}

export interface BatchBuffers {
  ids: GPUBuffer; // (N) u32
  labels: GPUBuffer; // (N) u32, NO_LABEL where no CE target
  weights: GPUBuffer; // (N) f32 row weights (0 = masked)
  losses: GPUBuffer; // (N, 2) [w·KD, w·CE]
  bucketUnique: GPUBuffer; // embedding backward buckets (written per batch)
  bucketOffsets: GPUBuffer;
  bucketPositions: GPUBuffer;
  teacherLogits?: GPUBuffer; // (N, V) dense teacher: the batch's input, whole (only the student's logits are chunked)
  teacherIds?: GPUBuffer; // (N, k) u32 top-k teacher
  teacherLogprobs?: GPUBuffer; // (N, k) f32
  teacherHidden?: GPUBuffer; // (N, Ct) teacher hidden states (hidden-state distillation)
  hiddenLosses?: GPUBuffer; // (N) w·hiddenLoss_n
}

export type TeacherInput = { kind: 'none' } | { kind: 'dense' } | { kind: 'topk'; k: number };

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function allocBuffer(device: GPUDevice, floats: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, Math.ceil((floats * 4) / 16) * 16), usage: USAGE() });
}

/** `hiddenWidth` (the teacher's hidden width Ct) adds the hidden-state loss buffers; `logitsRows` (R, default N: the
 *  whole batch) sizes the logits buffer (R, V) of the chunked classifier. */
export function allocActivations(device: GPUDevice, c: ModelConfig, B: number, T: number, hiddenWidth?: number, logitsRows = B * T, recompute = false): Activations {
  const N = B * T, C = c.hidden, F = c.intermediate, HD = c.heads * c.headDim, KD = c.kvHeads * c.headDim;
  const buf = (floats: number, label: string) => allocBuffer(device, floats, label);
  const layer = (l: number): LayerActs => ({
      ln1: buf(N * C, `l${l}.ln1`), rstd1: buf(N, `l${l}.rstd1`),
      q: buf(N * HD, `l${l}.q`), k: buf(N * KD, `l${l}.k`), v: buf(N * KD, `l${l}.v`),
      att: buf(N * HD, `l${l}.att`), lse: buf(B * c.heads * T, `l${l}.lse`),
      ln2: buf(N * C, `l${l}.ln2`), rstd2: buf(N, `l${l}.rstd2`),
      gate: buf(N * F, `l${l}.gate`), up: buf(N * F, `l${l}.up`), h: buf(N * F, `l${l}.h`),
      ...(c.qkNorm ? {
        qRaw: buf(N * HD, `l${l}.qRaw`), kRaw: buf(N * KD, `l${l}.kRaw`), rstdQ: buf(N * c.heads, `l${l}.rstdQ`), rstdK: buf(N * c.kvHeads, `l${l}.rstdK`),
      } : {}),
  });
  // Under recompute every layer uses the same set (the backward recomputes each layer's before using it).
  const shared = recompute ? layer(0) : undefined;
  return {
    resid: Array.from({ length: 2 * c.layers + 1 }, (_, i) => buf(N * C, `resid.${i}`)),
    layers: Array.from({ length: c.layers }, (_, l) => shared ?? layer(l)),
    lnf: buf(N * C, 'lnf'), rstdf: buf(N, 'rstdf'), logits: buf(logitsRows * c.vocabSize, 'logits'), proj: buf(N * C, 'proj'),
    dresid: buf(N * C, 'dresid'), dtmp: buf(N * C, 'dtmp'), dln: buf(N * C, 'dln'), datt: buf(N * HD, 'datt'),
    dq: buf(N * HD, 'dq'), dk: buf(N * KD, 'dk'), dv: buf(N * KD, 'dv'), delta: buf(B * c.heads * T, 'delta'),
    dh: buf(N * F, 'dh'), dgate: buf(N * F, 'dgate'), dup: buf(N * F, 'dup'),
    ...(c.qkNorm ? { dqRaw: buf(N * HD, 'dqRaw'), dkRaw: buf(N * KD, 'dkRaw') } : {}),
    ...(c.attentionBias ? { ones: buf(N, 'ones') } : {}),
    ...(hiddenWidth ? { hiddenP: buf(N * hiddenWidth, 'hidden.p'), dHiddenP: buf(N * hiddenWidth, 'hidden.dp') } : {}),
  };
}

export function allocBatch(device: GPUDevice, c: ModelConfig, B: number, T: number, teacher: TeacherInput, hiddenWidth?: number): BatchBuffers {
  const N = B * T;
  const U = Math.min(N, c.vocabSize);
  const buf = (floats: number, label: string) => allocBuffer(device, floats, label);
  return {
    ids: buf(N, 'ids'), labels: buf(N, 'labels'), weights: buf(N, 'weights'), losses: buf(2 * N, 'losses'),
    bucketUnique: buf(U, 'bucket.unique'), bucketOffsets: buf(U + 1, 'bucket.offsets'), bucketPositions: buf(N, 'bucket.positions'),
    ...(teacher.kind === 'dense' ? { teacherLogits: buf(N * c.vocabSize, 'teacher.logits') } : {}),
    ...(teacher.kind === 'topk' ? { teacherIds: buf(N * teacher.k, 'teacher.ids'), teacherLogprobs: buf(N * teacher.k, 'teacher.logprobs') } : {}),
    ...(hiddenWidth ? { teacherHidden: buf(N * hiddenWidth, 'teacher.hidden'), hiddenLosses: buf(N, 'hidden.losses') } : {}),
  };
}

export function destroyAll(x: Activations | BatchBuffers): void {
  for (const v of Object.values(x)) {
    if (Array.isArray(v)) v.forEach((e) => ('destroy' in e ? e.destroy() : Object.values(e).forEach((b) => (b as GPUBuffer).destroy())));
    else (v as GPUBuffer | undefined)?.destroy();
  }
}
