// CPU reference of the whole student (Hugging Face LlamaForCausalLM), forward and backward in f64, llm.c style:
// the oracle the GPU model is tested against, and the plain statement of what one training step computes.
// Built from the kernel CPU references (norm, rope, attention, activation, loss, matmul, embedding), so the model
// oracle and the kernel oracles agree by construction. Rows n < N = B·T, token ids (B, T):
//   x = wte[ids]                                                                  (N, C)
//   per layer l:  h = rmsnorm(x; attn_norm)                                       (N, C)
//                 q = rope(h·Wqᵀ) (N, H·D),  k = rope(h·Wkᵀ), v = h·Wvᵀ (N, Hkv·D)   positions t = 0..T−1
//                 (attentionBias: + bq/bk/bv; qkNorm: q = rope(rmsnorm_head(h·Wqᵀ; q_norm)), same for k;
//                  ropeScaling: RoPE at config.ts ropeInvFreq's frequencies)
//                 o = causal_gqa_attention(q, k, v), scale 1/√D                  (N, H·D)
//                 x = x + o·Woᵀ
//                 h2 = rmsnorm(x; mlp_norm);  a = silu(h2·W_gateᵀ) ⊙ (h2·W_upᵀ)  (N, F)
//                 x = x + a·W_downᵀ
//   hf = rmsnorm(x; final_norm);  logits = hf·W_lmᵀ (N, V), W_lm = wte when tieEmbeddings, else lm_head.
// Optional hidden-state distillation (RefBatch.hidden): p = x·W_hᵀ (N, Ct) with a projection W_h (Ct, C) kept
// OUTSIDE the slab, compared with the teacher's hidden (N, Ct) by src/kernels/hidden (mse or cosine), weighted
// by hidden.weight and scaled by the same lossScale as the logit loss; x is the residual stream after the last
// layer (before the final norm).
// The backward walks the layers in reverse by hand; parameter gradients accumulate (+=) into a slab-shaped
// gradient (same offsets as the parameters, padding 0), activation gradients are assigned.
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from '../kernels/attention/attention.ref.ts';
import { swigluBackwardRef, swigluForwardRef } from '../kernels/activation/activation.ref.ts';
import { embeddingBackwardRef, embeddingForwardRef } from '../kernels/embedding/embedding.ref.ts';
import { validateTopK } from '../kernels/loss/loss.config.ts';
import { hiddenLossRef, type HiddenLossKind } from '../kernels/hidden/hidden.ref.ts';
import { classifierLossRef, type ClassifierLossSettings } from '../kernels/loss/loss.ref.ts';
import { matmulRefGeneral } from '../kernels/matmul/matmul.ref.ts';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../kernels/norm/norm.ref.ts';
import { ropeBackwardRef, ropeForwardRef } from '../kernels/rope/rope.ref.ts';
import { Rng } from '../util/rng.ts';
import { realVocab, ropeInvFreq, type ModelConfig } from './config.ts';
import { paramLayout, type ParamLayout } from './params.ts';

/** What the forward keeps of one layer for the backward (all row-major f64). */
export interface RefLayerActs {
  /** Residual stream entering the layer. */
  xIn: Float64Array; // (N, C)
  /** rmsnorm(xIn; attn_norm). */
  h: Float64Array; // (N, C)
  /** Queries as projected (+ bias), before the q norm and RoPE (qkNorm only; else q's RoPE input is not kept). */
  qPre?: Float64Array; // (N, H·D)
  kPre?: Float64Array; // (N, Hkv·D)
  /** Queries after RoPE. */
  q: Float64Array; // (N, H·D) = (B, T, H, D)
  /** Keys after RoPE. */
  k: Float64Array; // (N, Hkv·D) = (B, T, Hkv, D)
  v: Float64Array; // (N, Hkv·D)
  /** Attention output, before Wo. */
  o: Float64Array; // (N, H·D)
  /** Residual stream after the attention block. */
  xMid: Float64Array; // (N, C)
  /** rmsnorm(xMid; mlp_norm). */
  h2: Float64Array; // (N, C)
  gate: Float64Array; // (N, F) = h2·W_gateᵀ
  up: Float64Array; // (N, F) = h2·W_upᵀ
  /** silu(gate) ⊙ up. */
  a: Float64Array; // (N, F)
}

/** Everything the backward needs, by name. */
export interface RefActs {
  B: number;
  T: number;
  ids: Uint32Array; // (B, T)
  layers: RefLayerActs[];
  /** Residual stream after the last layer. */
  xFinal: Float64Array; // (N, C)
  /** rmsnorm(xFinal; final_norm). */
  hf: Float64Array; // (N, C)
}

export interface RefForwardResult {
  logits: Float64Array; // (N, V)
  acts: RefActs;
}

/** One training batch with its loss settings (the classifier loss of src/kernels/loss). */
export interface RefBatch extends ClassifierLossSettings {
  ids: Uint32Array; // (B, T)
  B: number;
  T: number;
  /** Next-token labels, NO_LABEL (0xffffffff) for rows without a CE term. */
  labels: ArrayLike<number>; // (N) u32
  /** Per-row weights; 0 masks the row entirely. */
  weights: ArrayLike<number>; // (N)
  /** Hidden-state distillation term, added to the loss as lossScale·weight·Σ_n w_n·hiddenLoss_n. */
  hidden?: RefHiddenObjective;
}

export interface RefHiddenObjective {
  /** The teacher's hidden width Ct. */
  teacherWidth: number;
  teacherHidden: ArrayLike<number>; // (N, Ct)
  /** Projection student → teacher width, stored (out, in) like every linear: p = x·W_hᵀ. */
  Wh: ArrayLike<number>; // (Ct, C)
  kind: HiddenLossKind;
  weight: number;
}

export interface RefLossResult {
  /** lossScale · Σ_n (kdWeight·w_n·KD_n + ceWeight·w_n·CE_n): the scalar whose gradient `grad` is. */
  loss: number;
  /** Unscaled weighted sums: kd = Σ_n w_n·KD_n, ce = Σ_n w_n·CE_n (so loss = lossScale·(kdWeight·kd + ceWeight·ce)). */
  lossTerms: { kd: number; ce: number; hidden?: number };
  /** Per-row [w_n·KD_n, w_n·CE_n], as classifierLossRef returns them. */
  losses: Float64Array; // (N, 2)
  logits: Float64Array; // (N, V)
}

export interface RefLossAndGradResult extends RefLossResult {
  /** ∂loss/∂slab in the slab layout (same offsets as the parameters, padding 0). */
  grad: Float64Array; // (slabFloats)
  /** ∂loss/∂W_h when the batch has a hidden objective. */
  hiddenGrad?: Float64Array; // (Ct, C)
}

// ---------------------------------------------------------------------------------------------------------------
// Slab access and small wrappers.

/** Copy of parameter `name` out of the slab, as f64. */
function param(slab: ArrayLike<number>, layout: ParamLayout, name: string): Float64Array {
  const e = layout.byName.get(name);
  if (!e) throw new Error(`ref-model: no parameter '${name}' in the layout`);
  const out = new Float64Array(e.size);
  for (let i = 0; i < e.size; i++) out[i] = slab[e.offset + i]!;
  return out;
}

/** grad[name] += g. */
function accumulate(grad: Float64Array, layout: ParamLayout, name: string, g: Float64Array): void {
  const e = layout.byName.get(name);
  if (!e) throw new Error(`ref-model: no parameter '${name}' in the layout`);
  if (g.length !== e.size) throw new Error(`ref-model: gradient of '${name}' has ${g.length} elements, expected ${e.size}`);
  for (let i = 0; i < e.size; i++) grad[e.offset + i]! += g[i]!;
}

/** y (N, out) = x (N, in) · Wᵀ with W stored (out, in). */
const linear = (x: Float64Array, w: Float64Array, N: number, nIn: number, nOut: number): Float64Array =>
  matmulRefGeneral(x, w, N, nOut, nIn, { transB: true });

/** dx (N, in) = dy (N, out) · W (out, in). */
const linearDx = (dy: Float64Array, w: Float64Array, N: number, nIn: number, nOut: number): Float64Array =>
  matmulRefGeneral(dy, w, N, nIn, nOut);

/** dW (out, in) = dyᵀ (out, N) · x (N, in). */
const linearDw = (dy: Float64Array, x: Float64Array, N: number, nIn: number, nOut: number): Float64Array =>
  matmulRefGeneral(dy, x, nOut, nIn, N, { transA: true });

function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
  return out;
}

/** y (N, W) += b (W) on every row. */
function addBias(y: Float64Array, b: Float64Array): Float64Array {
  for (let i = 0; i < y.length; i++) y[i]! += b[i % b.length]!;
  return y;
}

/** Column sums of dy (N, W): a bias's gradient. */
function columnSums(dy: Float64Array, W: number): Float64Array {
  const out = new Float64Array(W);
  for (let i = 0; i < dy.length; i++) out[i % W]! += dy[i]!;
  return out;
}

/** RoPE options of a config: explicit frequencies when scaled, else θ. */
function ropeOptions(c: ModelConfig): { theta: number; invFreq?: Float64Array } {
  return c.ropeScaling ? { theta: c.ropeTheta, invFreq: ropeInvFreq(c) } : { theta: c.ropeTheta };
}

function addInto(a: Float64Array, b: Float64Array): void {
  for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
}

function checkInputs(fn: string, config: ModelConfig, layout: ParamLayout, slab: ArrayLike<number>, ids: ArrayLike<number>, B: number, T: number): void {
  if (slab.length !== layout.slabFloats) throw new Error(`${fn}: slab has ${slab.length} floats, the config's layout needs ${layout.slabFloats}`);
  for (const [name, v] of [['B', B], ['T', T]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
  }
  if (T > config.maxSeqLen) throw new Error(`${fn}: T = ${T} is longer than the config's maxSeqLen = ${config.maxSeqLen}`);
  if (ids.length !== B * T) throw new Error(`${fn}: ids has ${ids.length} elements, expected B·T = ${B}·${T}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

/** Logits (N, V) of token ids (B, T), and the activations the backward needs. */
export function refForward(config: ModelConfig, slab: ArrayLike<number>, ids: Uint32Array, B: number, T: number): RefForwardResult {
  const layout = paramLayout(config);
  checkInputs('refForward', config, layout, slab, ids, B, T);
  const { vocabSize: V, hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: F, rmsNormEps: eps } = config;
  const N = B * T;
  const dims: AttentionDims = { B, T, H, Hkv, D };
  const rope = ropeOptions(config);

  let x = embeddingForwardRef(ids, param(slab, layout, 'wte'), V, C); // (N, C)
  const layers: RefLayerActs[] = [];
  for (let l = 0; l < config.layers; l++) {
    const p = (n: string) => param(slab, layout, `layers.${l}.${n}`);
    const xIn = x;
    const h = rmsnormForwardRef(xIn, p('attn_norm'), N, C, eps).y; // (N, C)
    let qPre = linear(h, p('wq'), N, C, H * D); // (N, H·D)
    let kPre = linear(h, p('wk'), N, C, Hkv * D); // (N, Hkv·D)
    const v = linear(h, p('wv'), N, C, Hkv * D); // (N, Hkv·D)
    if (config.attentionBias) {
      qPre = addBias(qPre, p('bq'));
      kPre = addBias(kPre, p('bk'));
      addBias(v, p('bv'));
    }
    const qIn = config.qkNorm ? rmsnormForwardRef(qPre, p('q_norm'), N * H, D, eps).y : qPre;
    const kIn = config.qkNorm ? rmsnormForwardRef(kPre, p('k_norm'), N * Hkv, D, eps).y : kPre;
    const q = ropeForwardRef(qIn, B, T, H, D, rope); // (N, H·D)
    const k = ropeForwardRef(kIn, B, T, Hkv, D, rope); // (N, Hkv·D)
    const o = attentionForwardRef(q, k, v, dims).o; // (N, H·D)
    const xMid = add(xIn, linear(o, p('wo'), N, H * D, C)); // (N, C)
    const h2 = rmsnormForwardRef(xMid, p('mlp_norm'), N, C, eps).y; // (N, C)
    const gate = linear(h2, p('w_gate'), N, C, F); // (N, F)
    const up = linear(h2, p('w_up'), N, C, F); // (N, F)
    const a = swigluForwardRef(gate, up); // (N, F)
    x = add(xMid, linear(a, p('w_down'), N, F, C)); // (N, C)
    layers.push({ xIn, h, q, k, v, o, xMid, h2, gate, up, a, ...(config.qkNorm ? { qPre, kPre } : {}) });
  }
  const hf = rmsnormForwardRef(x, param(slab, layout, 'final_norm'), N, C, eps).y; // (N, C)
  const wLm = param(slab, layout, config.tieEmbeddings ? 'wte' : 'lm_head'); // (V, C)
  const logits = linear(hf, wLm, N, C, V); // (N, V)
  return { logits, acts: { B, T, ids, layers, xFinal: x, hf } };
}

// ---------------------------------------------------------------------------------------------------------------
// Loss.

function checkBatch(fn: string, V: number, batch: RefBatch, C: number, Vr = V): void {
  const N = batch.B * batch.T;
  if (batch.labels.length !== N) throw new Error(`${fn}: labels has ${batch.labels.length} elements, expected N = B·T = ${N}`);
  if (batch.weights.length !== N) throw new Error(`${fn}: weights has ${batch.weights.length} elements, expected N = B·T = ${N}`);
  for (let n = 0; n < N; n++) {
    const w = batch.weights[n]!;
    if (!(Number.isFinite(w) && w >= 0)) throw new Error(`${fn}: weights[${n}] = ${w} is not a finite number ≥ 0`);
  }
  for (const k of ['kdWeight', 'ceWeight', 'lossScale'] as const) {
    if (!Number.isFinite(batch[k])) throw new Error(`${fn}: ${k} must be a finite number, got ${batch[k]}`);
  }
  if (!(batch.temperature > 0 && Number.isFinite(batch.temperature))) throw new Error(`${fn}: temperature must be > 0, got ${batch.temperature}`);
  const t = batch.teacher;
  if (t?.kind === 'dense' && t.logits.length !== N * V) throw new Error(`${fn}: dense teacher logits has ${t.logits.length} elements, expected N·V = ${N}·${V}`);
  if (t?.kind === 'topk') {
    if (t.logprobs.length !== N * t.k) throw new Error(`${fn}: top-k teacher logprobs has ${t.logprobs.length} elements, expected N·k = ${N}·${t.k}`);
    validateTopK(t.ids, N, t.k, Vr, batch.weights);
  }
  const hd = batch.hidden;
  if (hd) {
    const Ct = hd.teacherWidth;
    if (!Number.isInteger(Ct) || Ct < 1) throw new Error(`${fn}: hidden.teacherWidth must be a positive integer, got ${Ct}`);
    if (hd.teacherHidden.length !== N * Ct) throw new Error(`${fn}: hidden.teacherHidden has ${hd.teacherHidden.length} elements, expected N·Ct = ${N}·${Ct}`);
    if (hd.Wh.length !== Ct * C) throw new Error(`${fn}: hidden.Wh has ${hd.Wh.length} elements, expected Ct·C = ${Ct}·${C}`);
    if (!Number.isFinite(hd.weight)) throw new Error(`${fn}: hidden.weight must be a finite number, got ${hd.weight}`);
  }
}

/** The hidden-state term on the final residual stream x (N, C): Σ w·loss_n and dx/dW_h of lossScale·weight·that. */
function hiddenTerm(config: ModelConfig, x: Float64Array, batch: RefBatch, hd: RefHiddenObjective) {
  const N = batch.B * batch.T, C = config.hidden, Ct = hd.teacherWidth;
  const Wh = Float64Array.from(hd.Wh);
  const p = linear(x, Wh, N, C, Ct); // (N, Ct)
  const { losses, dp } = hiddenLossRef({ N, Cs: Ct, p, h: hd.teacherHidden, weights: batch.weights, kind: hd.kind, lossScale: batch.lossScale * hd.weight });
  const sum = losses.reduce((a, b) => a + b, 0);
  return {
    sum,
    backward: () => ({ dx: linearDx(dp, Wh, N, C, Ct), dWh: linearDw(dp, x, N, C, Ct) }), // (N, C), (Ct, C)
  };
}

/** The classifier loss of the logits, per row and summed (see RefLossResult), and dlogits = ∂loss/∂logits. */
function lossOfLogits(config: ModelConfig, logits: Float64Array, batch: RefBatch): RefLossResult & { dlogits: Float64Array } {
  const N = batch.B * batch.T;
  const { losses, dz } = classifierLossRef({ ...batch, N, V: config.vocabSize, realVocab: realVocab(config), logits });
  let kd = 0;
  let ce = 0;
  for (let n = 0; n < N; n++) {
    kd += losses[2 * n]!;
    ce += losses[2 * n + 1]!;
  }
  const loss = batch.lossScale * (batch.kdWeight * kd + batch.ceWeight * ce);
  return { loss, lossTerms: { kd, ce }, losses, logits, dlogits: dz };
}

/** Forward and loss only (no backward): what finite differences of the loss evaluate. */
export function refLoss(config: ModelConfig, slab: ArrayLike<number>, batch: RefBatch): RefLossResult {
  checkBatch('refLoss', config.vocabSize, batch, config.hidden, realVocab(config));
  const { logits, acts } = refForward(config, slab, batch.ids, batch.B, batch.T);
  const { loss, lossTerms, losses } = lossOfLogits(config, logits, batch);
  if (!batch.hidden) return { loss, lossTerms, losses, logits };
  const h = hiddenTerm(config, acts.xFinal, batch, batch.hidden);
  return { loss: loss + batch.lossScale * batch.hidden.weight * h.sum, lossTerms: { ...lossTerms, hidden: h.sum }, losses, logits };
}

// ---------------------------------------------------------------------------------------------------------------
// Backward.

/**
 * ∂(Σ dlogits·logits)/∂slab from the forward's activations: the layers in reverse, by hand. The gradient is
 * ADDED into `grad` (slab layout) when given, else into a fresh zeroed slab, which is returned. `dxFinal` (N, C),
 * when given, is an extra gradient of the residual stream after the last layer (the hidden-state loss), added
 * after the final norm's backward.
 */
export function refBackward(config: ModelConfig, slab: ArrayLike<number>, acts: RefActs, dlogits: Float64Array, grad?: Float64Array, dxFinal?: Float64Array): Float64Array {
  const layout = paramLayout(config);
  const { B, T, ids } = acts;
  checkInputs('refBackward', config, layout, slab, ids, B, T);
  const { vocabSize: V, hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: F, rmsNormEps: eps } = config;
  const N = B * T;
  if (dlogits.length !== N * V) throw new Error(`refBackward: dlogits has ${dlogits.length} elements, expected N·V = ${N}·${V}`);
  if (acts.layers.length !== config.layers) throw new Error(`refBackward: acts has ${acts.layers.length} layers, the config ${config.layers}`);
  const g = grad ?? new Float64Array(layout.slabFloats);
  if (g.length !== layout.slabFloats) throw new Error(`refBackward: grad has ${g.length} floats, the layout needs ${layout.slabFloats}`);
  const dims: AttentionDims = { B, T, H, Hkv, D };
  const rope = ropeOptions(config);

  // logits = hf·W_lmᵀ; hf = rmsnorm(xFinal; final_norm).
  const lmName = config.tieEmbeddings ? 'wte' : 'lm_head';
  accumulate(g, layout, lmName, linearDw(dlogits, acts.hf, N, C, V)); // (V, C)
  const dhf = linearDx(dlogits, param(slab, layout, lmName), N, C, V); // (N, C)
  const fn = rmsnormBackwardRef(dhf, acts.xFinal, param(slab, layout, 'final_norm'), N, C, eps);
  accumulate(g, layout, 'final_norm', fn.dweight);
  let dx = fn.dx; // (N, C) gradient of the residual stream
  if (dxFinal) {
    if (dxFinal.length !== N * C) throw new Error(`refBackward: dxFinal has ${dxFinal.length} elements, expected N·C = ${N}·${C}`);
    addInto(dx, dxFinal);
  }

  for (let l = config.layers - 1; l >= 0; l--) {
    const a = acts.layers[l]!;
    const name = (n: string) => `layers.${l}.${n}`;
    const p = (n: string) => param(slab, layout, name(n));

    // x = xMid + a·W_downᵀ
    accumulate(g, layout, name('w_down'), linearDw(dx, a.a, N, F, C)); // (C, F)
    const da = linearDx(dx, p('w_down'), N, F, C); // (N, F)
    // a = silu(gate) ⊙ up; gate = h2·W_gateᵀ, up = h2·W_upᵀ
    const { dgate, dup } = swigluBackwardRef(a.gate, a.up, da); // (N, F) each
    accumulate(g, layout, name('w_gate'), linearDw(dgate, a.h2, N, C, F)); // (F, C)
    accumulate(g, layout, name('w_up'), linearDw(dup, a.h2, N, C, F)); // (F, C)
    const dh2 = linearDx(dgate, p('w_gate'), N, C, F); // (N, C)
    addInto(dh2, linearDx(dup, p('w_up'), N, C, F));
    // h2 = rmsnorm(xMid; mlp_norm); the residual passes dx through.
    const mn = rmsnormBackwardRef(dh2, a.xMid, p('mlp_norm'), N, C, eps);
    accumulate(g, layout, name('mlp_norm'), mn.dweight);
    const dxMid = add(dx, mn.dx); // (N, C)

    // xMid = xIn + o·Woᵀ
    accumulate(g, layout, name('wo'), linearDw(dxMid, a.o, N, H * D, C)); // (C, H·D)
    const dout = linearDx(dxMid, p('wo'), N, H * D, C); // (N, H·D)
    const att = attentionBackwardRef(a.q, a.k, a.v, dout, dims);
    let dq = ropeBackwardRef(att.dq, B, T, H, D, rope); // (N, H·D), before RoPE
    let dk = ropeBackwardRef(att.dk, B, T, Hkv, D, rope); // (N, Hkv·D), before RoPE
    if (config.qkNorm) {
      // q = rmsnorm per head (rows N·H of width D) of qPre; same for k.
      const qn = rmsnormBackwardRef(dq, a.qPre!, p('q_norm'), N * H, D, eps);
      const kn = rmsnormBackwardRef(dk, a.kPre!, p('k_norm'), N * Hkv, D, eps);
      accumulate(g, layout, name('q_norm'), qn.dweight);
      accumulate(g, layout, name('k_norm'), kn.dweight);
      dq = qn.dx;
      dk = kn.dx;
    }
    if (config.attentionBias) {
      accumulate(g, layout, name('bq'), columnSums(dq, H * D));
      accumulate(g, layout, name('bk'), columnSums(dk, Hkv * D));
      accumulate(g, layout, name('bv'), columnSums(att.dv, Hkv * D));
    }
    accumulate(g, layout, name('wq'), linearDw(dq, a.h, N, C, H * D));
    accumulate(g, layout, name('wk'), linearDw(dk, a.h, N, C, Hkv * D));
    accumulate(g, layout, name('wv'), linearDw(att.dv, a.h, N, C, Hkv * D));
    const dh = linearDx(dq, p('wq'), N, C, H * D); // (N, C)
    addInto(dh, linearDx(dk, p('wk'), N, C, Hkv * D));
    addInto(dh, linearDx(att.dv, p('wv'), N, C, Hkv * D));
    // h = rmsnorm(xIn; attn_norm)
    const an = rmsnormBackwardRef(dh, a.xIn, p('attn_norm'), N, C, eps);
    accumulate(g, layout, name('attn_norm'), an.dweight);
    dx = add(dxMid, an.dx);
  }

  // x = wte[ids]; with tied embeddings this adds onto the lm_head part already in grad[wte].
  accumulate(g, layout, 'wte', embeddingBackwardRef(ids, dx, V, C));
  return g;
}

/** Forward, classifier loss and the full backward: the loss, its terms and ∂loss/∂slab. */
export function refLossAndGrad(config: ModelConfig, slab: ArrayLike<number>, batch: RefBatch): RefLossAndGradResult {
  checkBatch('refLossAndGrad', config.vocabSize, batch, config.hidden, realVocab(config));
  const { logits, acts } = refForward(config, slab, batch.ids, batch.B, batch.T);
  const { loss, lossTerms, losses, dlogits } = lossOfLogits(config, logits, batch);
  if (!batch.hidden) return { loss, lossTerms, losses, logits, grad: refBackward(config, slab, acts, dlogits) };
  const h = hiddenTerm(config, acts.xFinal, batch, batch.hidden);
  const { dx, dWh } = h.backward();
  const grad = refBackward(config, slab, acts, dlogits, undefined, dx);
  return {
    loss: loss + batch.lossScale * batch.hidden.weight * h.sum, lossTerms: { ...lossTerms, hidden: h.sum }, losses, logits, grad, hiddenGrad: dWh,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Initialisation.

/**
 * The parameter slab initialised deterministically from `seed`. Exact order (the GPU path reproduces it by calling
 * this function): one Rng(seed) (src/util/rng.ts); the tensors of paramTable(config) in slab order (wte, then per
 * layer attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down, then final_norm, then lm_head when untied);
 * a 'normal' tensor takes its next `size` draws of rng.normal() in row-major order, each value
 * f32(initStd · rng.normal()); a 'ones' tensor is 1 everywhere and a 'zeros' tensor (biases) 0, drawing nothing; padding between tensors is 0.
 */
export function initParams(config: ModelConfig, seed: number): Float32Array {
  if (!Number.isInteger(seed)) throw new Error(`initParams: seed must be an integer, got ${seed}`);
  const layout = paramLayout(config);
  const rng = new Rng(seed);
  const slab = new Float32Array(layout.slabFloats);
  for (const e of layout.entries) {
    switch (e.init) {
      case 'ones':
        slab.fill(1, e.offset, e.offset + e.size);
        break;
      case 'zeros':
        break; // the slab is zero already; draws nothing
      case 'normal':
        for (let i = 0; i < e.size; i++) slab[e.offset + i] = config.initStd * rng.normal();
        break;
      default:
        throw new Error(`initParams: parameter '${(e as { name: string }).name}' has unknown init '${(e as { init: string }).init}'`);
    }
  }
  return slab;
}

/**
 * The hidden-state projection W_h (Ct, C) initialised deterministically: its own Rng(seed), Ct·C draws in
 * row-major order, each f32(initStd · rng.normal()) (never the identity, even when Ct = C).
 */
export function initHiddenProjection(config: ModelConfig, teacherWidth: number, seed: number): Float32Array {
  if (!Number.isInteger(seed)) throw new Error(`initHiddenProjection: seed must be an integer, got ${seed}`);
  if (!Number.isInteger(teacherWidth) || teacherWidth < 1) throw new Error(`initHiddenProjection: teacherWidth must be a positive integer, got ${teacherWidth}`);
  const rng = new Rng(seed);
  const out = new Float32Array(teacherWidth * config.hidden);
  for (let i = 0; i < out.length; i++) out[i] = config.initStd * rng.normal();
  return out;
}
