// The student on the GPU: the Llama-style decoder's forward, loss and backward as explicit lists of dispatches
// over our kernels (llm.c style: forward keeps what backward needs, backward walks the layers in reverse by hand,
// parameter gradients accumulate, activation gradients assign), plus AdamW over the slab. A step is one command
// encoder; nothing is read back inside it. The CPU oracle of the same computation is ref-model.ts.
//   x = wte[ids]; per layer: x += attn(rope(rms(x)·Wq/k/vᵀ))·Woᵀ; x += (silu(rms(x)·Wgᵀ) ⊙ rms(x)·Wuᵀ)·Wdᵀ
//   logits = rms(x)·W_lmᵀ (W_lm = wte when tied), with its loss and backward chunk by chunk over rows so the logits
//   buffer stays within a byte budget (gpu-classifier.ts; the `logitsBudgetBytes` option)
// Family switches (config.ts): attentionBias adds bq/bk/bv in the projections' matmul epilogue (gradient: 1ᵀ·dq as
// a (1, N) matmul); qkNorm runs the RMSNorm kernels on rows N·heads of width D between projection and RoPE;
// ropeScaling gives RoPE an explicit inverse-frequency table.
// Optional hidden-state distillation (the `hidden` option): p = x_L·W_hᵀ (N, Ct), x_L = resid[2L] (before the final
// norm), pulled toward the teacher's hidden (N, Ct) by src/kernels/hidden (mse or cosine). W_h (Ct, C) lives in
// the trained params/grads/m/v slabs AFTER the trained tensors (at trainedFloats), so grad-norm clipping and AdamW
// cover it while the slab prefix (exports, checkpoints) keeps its layout.
// The trained slabs (train-state.ts) are split across buffers at tensor starts, none over maxBufferSize.
// LoRA (the `lora` option, gpu-adapters.ts): the model's weights are a frozen base (parameters only: no gradients,
// no moments, no dW products, norm-gain gradients into a scratch, no embedding backward); the trained slab holds the
// adapters (loraLayout), each adding s·(x·Aᵀ)·Bᵀ after its weight's base product and its share of dx after the base
// dx product. uploadParams/readParams are the weights (the base under LoRA); readStateInto is the trained slab.
// LoRA dropout (lora.dropout > 0) is on only in a run given a dropoutSeed (training); logits() and runs without one see none.
import { encodeDispatches, readF32, writeArray, type Binding, type Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf, type KernelPlan } from '../gpu/launch.ts';
import { planResidualAccumulate, planResidualAdd, planSwigluBackward, planSwigluForward } from '../kernels/activation/activation.ts';
import { planAttentionBackward, planAttentionForward } from '../kernels/attention/attention.ts';
import { buildEmbeddingBuckets, planEmbeddingBackward, planEmbeddingForward, type EmbeddingBuckets } from '../kernels/embedding/embedding.ts';
import { planHiddenLoss } from '../kernels/hidden/hidden.ts';
import { autotuneMatmul, tunedVariant } from '../kernels/matmul/autotune.ts';
import { planMatmul, type MatmulArgs, type MatmulProblem } from '../kernels/matmul/matmul.ts';
import { planRmsNormBackward, planRmsNormForward } from '../kernels/norm/norm.ts';
import { planRopeBackward, planRopeForward } from '../kernels/rope/rope.ts';
import { allocActivations, allocBatch, allocBuffer, destroyAll, type Activations, type BatchBuffers } from './activations.ts';
import { realVocab, ropeInvFreq, type ModelConfig } from './config.ts';
import { DEFAULT_LOGITS_BUDGET_BYTES, logitsChunkRows, planClassifier, readLogitsChunks, type ClassifierPlan } from './gpu-classifier.ts';
import { UldBuffers } from './gpu-uld.ts';
import { paramLayout, SLAB_ALIGN_FLOATS, type ParamLayout } from './params.ts';
import { initHiddenProjection } from './ref-model.ts';
import { GpuAdapters } from './gpu-adapters.ts';
import { loraLayout } from './lora.ts';
import type { SlabShards } from './slab-shards.ts';
import type { BaseSource } from './base-layout.ts';
import { FrozenBase } from './frozen-base.ts';
import type { HalfFormat } from '../util/half.ts';
import { TrainState } from './train-state.ts';
import { checkBatch, checkModelOptions, maskPaddingLogits, runDropout, type GpuModelOptions, type HiddenSpec, type ObjectiveSpec, type OptimizerSpec, type RunOptions, type StepReadback, type TrainBatch } from './gpu-model-types.ts';
export { maskPaddingLogits, PADDING_LOGIT, type GpuModelOptions, type HiddenSpec, type ObjectiveSpec, type OptimizerSpec, type RunOptions, type StepReadback, type TrainBatch } from './gpu-model-types.ts';

export class GpuModel {
  readonly layout: ParamLayout;
  readonly N: number;
  /** What trains — the model's weights, or under LoRA the adapters — then W_h: parameters, gradients and AdamW
   *  moments, split across buffers within the adapter's maxBufferSize. */
  readonly state: TrainState;
  /** LoRA only: the model's weights, frozen (parameters only), and the adapters' plans. */
  private readonly base?: FrozenBase;
  readonly adapters?: GpuAdapters;
  /** Floats of the trained slab before W_h (the model's slab, or the adapters'). */
  private readonly trainedFloats: number;
  /** LoRA only: where the frozen norms' weight gradients go (max(C, D) floats, never read). */
  private readonly discard?: GPUBuffer;
  /** The activations (read by gpu-reward.ts: the final norm's output lnf and its gradient dln). */
  readonly acts: Activations;
  /** One layer's activations kept, the others recomputed in the backward (option recompute). */
  readonly recompute: boolean;
  private readonly batch: BatchBuffers;
  /** Embedding → layers → final norm (→ W_h); then the classifier chunks, or a reward model's host-side head. */
  readonly forward: Dispatch[];
  /** Classifier, loss and classifier backward per chunk of rows (gpu-classifier.ts). */
  private readonly classifier: ClassifierPlan;
  /** Rows R of the logits buffer (R, V): N, or a multiple of 64 when the batch's logits exceed the budget. */
  readonly logitsRows: number;
  /** From dln (the final norm's output gradient) back to the embedding. */
  readonly backward: Dispatch[];
  private readonly embBackward?: KernelPlan<EmbeddingBuckets>;
  readonly hidden?: HiddenSpec;
  /** Floats of the trained slab's tail at trainedFloats in params/grads/m/v: W_h (Ct·C) with the hidden option, the
   *  reward model's score head (C) with scoreHead; 0 otherwise. */
  private readonly tailFloats: number;
  private readonly hiddenLoss?: KernelPlan<{ lossScale: number }>;
  /** The ULD term's inputs, losses and chunk gradient (objective.uld: cross-tokenizer KD). */
  private readonly uld?: UldBuffers;
  private lossScale = 1;
  private weightSum = 0;
  /** RoPE's inverse frequencies when they are not θ^(−2j/D) (llama3 scaling). */
  private readonly invFreq?: Float64Array;

  constructor(
    readonly device: GPUDevice,
    readonly config: ModelConfig,
    readonly B: number,
    readonly T: number,
    readonly objective: ObjectiveSpec,
    readonly optimizer: OptimizerSpec = { weightDecay: 0.1, clipNorm: 1 },
    options: GpuModelOptions = {},
  ) {
    if (T > config.maxSeqLen) throw new Error(`GpuModel: T = ${T} exceeds the config's maxSeqLen ${config.maxSeqLen}`);
    checkModelOptions(options);
    this.hidden = options.hidden;
    const Ct = this.hidden?.teacherWidth;
    this.layout = paramLayout(config);
    this.N = B * T;
    this.tailFloats = Ct ? Ct * config.hidden : options.scoreHead ? config.hidden : 0;
    // The trained slab (the model's, or the adapters' under LoRA), then W_h (aligned) when the hidden objective is
    // on; AdamW over every tensor (decay on matrices and adapters, not on norm gains and biases).
    const maxBufferBytes = options.maxBufferBytes ?? device.limits.maxBufferSize;
    const trained = options.lora ? loraLayout(config, options.lora) : this.layout;
    this.trainedFloats = trained.slabFloats;
    const P = trained.slabFloats + Math.ceil(this.tailFloats / SLAB_ALIGN_FLOATS) * SLAB_ALIGN_FLOATS;
    this.state = new TrainState(device, {
      cuts: [...trained.entries, ...(this.tailFloats ? [{ offset: trained.slabFloats, name: this.hidden ? 'hidden projection W_h' : 'reward score head' }] : [])],
      floats: P,
      regions: [
        ...trained.entries.map((e) => ({ offset: e.offset, count: e.size, weightDecay: !('decay' in e) || e.decay ? optimizer.weightDecay : 0 })),
        ...(this.tailFloats ? [{ offset: trained.slabFloats, count: this.tailFloats, weightDecay: optimizer.weightDecay }] : []),
      ],
      maxBufferBytes,
      optimizer,
    });
    if (options.lora) {
      this.base = new FrozenBase(device, config, options.lora.base, maxBufferBytes, options.sharedBase);
      this.adapters = new GpuAdapters(device, config, options.lora, this.N, this.state);
      this.discard = allocBuffer(device, Math.max(config.hidden, config.headDim), 'frozen norm grads');
    }
    // A ULD term (cross-tokenizer KD) needs a gradient buffer as large as the logits chunk: the budget is shared.
    const budget = options.logitsBudgetBytes ?? DEFAULT_LOGITS_BUDGET_BYTES;
    this.logitsRows = logitsChunkRows(this.N, config.vocabSize, objective.uld ? budget / 2 : budget);
    this.uld = objective.uld && new UldBuffers(device, objective.uld, this.N, this.logitsRows, config.vocabSize);
    this.recompute = options.recompute ?? false;
    this.acts = allocActivations(device, config, B, T, Ct, this.logitsRows, this.recompute);
    this.batch = allocBatch(device, config, B, T, objective.teacher, Ct);
    if (this.acts.ones) writeArray(device, this.acts.ones, new Float32Array(this.N).fill(1));
    this.invFreq = config.ropeScaling ? ropeInvFreq(config) : undefined;
    this.forward = this.planForward();
    this.classifier = this.planClassifier();
    if (this.hidden) {
      this.hiddenLoss = planHiddenLoss(device, {
        N: this.N, Cs: Ct!, p: this.acts.hiddenP!, h: this.batch.teacherHidden!, weights: this.batch.weights,
        kind: this.hidden.kind, lossScale: this.hidden.weight, losses: this.batch.hiddenLosses!, dp: this.acts.dHiddenP!,
      });
      this.uploadHiddenProjection(initHiddenProjection(config, Ct!, this.hidden.seed ?? 0));
    }
    // The embedding trains unless it is part of a frozen base.
    this.embBackward = this.base ? undefined : planEmbeddingBackward(device, {
      dx: this.acts.dresid, dwte: this.g('wte'), unique: this.batch.bucketUnique, offsets: this.batch.bucketOffsets,
      positions: this.batch.bucketPositions, N: this.N, V: config.vocabSize, C: config.hidden,
    });
    this.backward = [...this.planBackward(), ...(this.embBackward?.dispatches ?? [])];
  }

  /** The model's weights (their shards; the frozen base under LoRA): a Generator reads them in place. */
  get params(): SlabShards {
    return this.base?.slab ?? this.state.params;
  }

  /** The parameter tensor `name` as a binding into the slab (under LoRA the base, where it may be 16-bit words). */
  p(name: string): Binding {
    if (this.base?.has(name)) return this.base.binding(name);
    const e = this.layout.byName.get(name);
    if (!e) throw new Error(`GpuModel: no parameter '${name}'`);
    return this.params.binding(e.offset, e.size);
  }

  /** A weight as a matmul's B operand: its binding, and its 16-bit format when the base stores it so. */
  w(name: string): { b: Binding; bFormat?: HalfFormat } {
    const half = this.base?.half(name);
    return { b: this.p(name), ...(half ? { bFormat: half } : {}) };
  }

  /** The gradient of parameter `name` (same layout as the slab); under LoRA the weights have none. */
  g(name: string): Binding {
    if (this.base) throw new Error(`GpuModel: '${name}' is part of the frozen LoRA base: it has no gradient`);
    const e = this.layout.byName.get(name)!;
    return this.state.grads.binding(e.offset, e.size);
  }

  /** dW += dyᵀ·x for a weight that trains (transA, beta 1); nothing under LoRA (the base is frozen). */
  private dW(name: string, dy: Binding, x: Binding, M: number, N: number, K: number): KernelPlan[] {
    return this.base ? [] : [this.mm({ a: dy, b: x, c: this.g(name), M, N, K, transA: true, beta: 1 })];
  }

  /** Where a norm's weight gradient goes: its gradient, or under LoRA a scratch never read. */
  private gNorm(name: string): Binding {
    return this.discard ? { buffer: this.discard, size: this.layout.byName.get(name)!.size * 4 } : this.g(name);
  }

  /** The slab's tail — W_h (Ct, C), or a reward model's score head (C) — after the model's (or the adapters') floats. */
  get tail(): Binding {
    return this.state.params.binding(this.trainedFloats, this.tailFloats);
  }

  get tailGrad(): Binding {
    return this.state.grads.binding(this.trainedFloats, this.tailFloats);
  }

  /** Every matmul problem this model plans (shape and transposes), for the autotuner. */
  readonly matmulProblems: MatmulProblem[] = [];

  private mm(a: Omit<MatmulArgs, 'variant'>): KernelPlan {
    this.matmulProblems.push({ M: a.M, N: a.N, K: a.K, transA: a.transA, transB: a.transB, ...(a.bFormat ? { bFormat: a.bFormat } : {}) });
    return planMatmul(this.device, { ...a, variant: tunedVariant(this.device, a) });
  }

  /**
   * Builds the model after timing every lab variant on each distinct matmul problem of the step on this device
   * (autotuneMatmul), so every matmul is planned with its fastest correct variant. Costs a few seconds on a GPU.
   */
  static async tuned(...args: ConstructorParameters<typeof GpuModel>): Promise<GpuModel> {
    const probe = new GpuModel(...args);
    const problems = probe.matmulProblems;
    probe.destroy();
    const seen = new Set<string>();
    for (const p of problems) {
      const key = JSON.stringify(p);
      if (seen.has(key)) continue;
      seen.add(key);
      await autotuneMatmul(args[0], p);
    }
    return new GpuModel(...args);
  }

  private planForward(): Dispatch[] {
    const { device, config: c, acts, N } = this;
    const C = c.hidden;
    const out: KernelPlan[] = [planEmbeddingForward(device, { ids: this.batch.ids, wte: this.p('wte'), x: acts.resid[0]!, N, V: c.vocabSize, C })];
    for (let l = 0; l < c.layers; l++) out.push(...this.layerForward(l));
    out.push(
      planRmsNormForward(device, { x: acts.resid[2 * c.layers]!, weight: this.p('final_norm'), y: acts.lnf, rstd: acts.rstdf, N, C, eps: c.rmsNormEps }),
    );
    // The classifier (logits = lnf·W_lmᵀ) is not here: it runs per chunk of rows with its loss (this.classifier).
    // Hidden-state distillation: p (N, Ct) = x_L (N, C) · W_hᵀ.
    if (this.hidden) out.push(this.mm({ a: acts.resid[2 * c.layers]!, b: this.tail, c: acts.hiddenP!, M: N, N: this.hidden.teacherWidth, K: C, transB: true }));
    return dispatchesOf(...out);
  }

  /** Layer l's forward, from resid[2l] to resid[2l + 2], keeping what its backward reads in acts.layers[l] (one shared
   *  set under `recompute`: the backward runs this again just before layer l's backward). */
  private layerForward(l: number): KernelPlan[] {
    const { device, config: c, acts, B, T, N } = this;
    const C = c.hidden, F = c.intermediate, H = c.heads, Hkv = c.kvHeads, D = c.headDim;
    const L = acts.layers[l]!, pre = `layers.${l}.`;
    const x = acts.resid[2 * l]!, mid = acts.resid[2 * l + 1]!, next = acts.resid[2 * l + 2]!;
    return [
      planRmsNormForward(device, { x, weight: this.p(`${pre}attn_norm`), y: L.ln1, rstd: L.rstd1, N, C, eps: c.rmsNormEps }),
      // q/k/v = ln1·Wq/k/vᵀ (+ bq/bk/bv: Qwen2); Qwen3 writes q/k raw, then RMSNorm per head into L.q / L.k.
      ...this.linear(`${pre}wq`, L.ln1, L.qRaw ?? L.q, H * D, C, this.bias(`${pre}bq`)),
      ...this.linear(`${pre}wk`, L.ln1, L.kRaw ?? L.k, Hkv * D, C, this.bias(`${pre}bk`)),
      ...this.linear(`${pre}wv`, L.ln1, L.v, Hkv * D, C, this.bias(`${pre}bv`)),
      ...(c.qkNorm ? [
        planRmsNormForward(device, { x: L.qRaw!, weight: this.p(`${pre}q_norm`), y: L.q, rstd: L.rstdQ!, N: N * H, C: D, eps: c.rmsNormEps }),
        planRmsNormForward(device, { x: L.kRaw!, weight: this.p(`${pre}k_norm`), y: L.k, rstd: L.rstdK!, N: N * Hkv, C: D, eps: c.rmsNormEps }),
      ] : []),
      planRopeForward(device, { x: L.q, B, T, H, D, theta: c.ropeTheta, ...this.rope }),
      planRopeForward(device, { x: L.k, B, T, H: Hkv, D, theta: c.ropeTheta, ...this.rope }),
      planAttentionForward(device, { B, T, H, Hkv, D, q: L.q, k: L.k, v: L.v, o: L.att, lse: L.lse }),
      ...this.linear(`${pre}wo`, L.att, acts.proj, C, H * D),
      planResidualAdd(device, { a: x, b: acts.proj, out: mid, N: N * C }),
      planRmsNormForward(device, { x: mid, weight: this.p(`${pre}mlp_norm`), y: L.ln2, rstd: L.rstd2, N, C, eps: c.rmsNormEps }),
      ...this.linear(`${pre}w_gate`, L.ln2, L.gate, F, C),
      ...this.linear(`${pre}w_up`, L.ln2, L.up, F, C),
      planSwigluForward(device, { gate: L.gate, up: L.up, h: L.h, N, F }),
      ...this.linear(`${pre}w_down`, L.h, acts.proj, C, F),
      planResidualAdd(device, { a: mid, b: acts.proj, out: next, N: N * C }),
    ];
  }

  /** y (N, out) = x·Wᵀ (+ bias), then + s·(x·Aᵀ)·Bᵀ when W has a LoRA adapter. */
  private linear(name: string, x: Binding, y: Binding, out: number, inp: number, extra: { bias?: Binding } = {}): KernelPlan[] {
    return [
      this.mm({ a: x, ...this.w(name), c: y, M: this.N, N: out, K: inp, transB: true, ...extra }),
      ...(this.adapters?.forward((a) => this.mm(a), name, x, y) ?? []),
    ];
  }

  /** The adapter's share of a linear's backward (after its base dx = dy·W): dx += du·A, dA and dB accumulated. */
  private adapterBackward(name: string, x: Binding, dy: Binding, dx: Binding): KernelPlan[] {
    return this.adapters?.backward((a) => this.mm(a), name, x, dy, dx) ?? [];
  }

  /** The `bias` matmul argument of a q/k/v projection: the slab's bias tensor with attentionBias, else nothing. */
  private bias(name: string): { bias?: Binding } {
    return this.config.attentionBias ? { bias: this.p(name) } : {};
  }

  /** RoPE's explicit inverse frequencies (llama3 scaling), else nothing (θ^(−2j/D) from theta). */
  private get rope(): { invFreq?: Float64Array } {
    return this.invFreq ? { invFreq: this.invFreq } : {};
  }

  private get lmHead(): string {
    return this.config.tieEmbeddings ? 'wte' : 'lm_head';
  }

  /** Classifier + loss (+ backward: dlnf, dW_lm) chunk by chunk over rows (gpu-classifier.ts). */
  private planClassifier(): ClassifierPlan {
    const o = this.objective, b = this.batch, c = this.config;
    const teacher = o.teacher.kind === 'dense' ? { kind: 'dense' as const, logits: b.teacherLogits! }
      : o.teacher.kind === 'topk' ? { kind: 'topk' as const, k: o.teacher.k, ids: b.teacherIds!, logprobs: b.teacherLogprobs!, policy: o.teacher.policy ?? 'renormalize' }
        : undefined;
    return planClassifier({
      device: this.device, N: this.N, V: c.vocabSize, C: c.hidden, realVocab: realVocab(c), rows: this.logitsRows,
      lnf: this.acts.lnf, dln: this.acts.dln, weight: this.p(this.lmHead), ...(this.base ? {} : { dweight: this.g(this.lmHead) }), logits: this.acts.logits,
      labels: b.labels, weights: b.weights, losses: b.losses, teacher, mm: (a) => this.mm(a), ...(this.uld ? { uld: this.uld.bindings } : {}),
      loss: { objective: o.objective, temperature: o.temperature, kdWeight: o.kdWeight, ceWeight: o.ceWeight, lossScale: 1, beta: o.beta, lambda: o.lambda },
    });
  }

  private planBackward(): Dispatch[] {
    const { device, config: c, acts, B, T, N } = this;
    const C = c.hidden, F = c.intermediate, H = c.heads, Hkv = c.kvHeads, D = c.headDim;
    const acc = (x: Binding, y: Binding) => planResidualAccumulate(device, { x, y, N: N * C });
    // The classifier's backward (dlnf into acts.dln, dW_lm) ran chunk by chunk after each chunk's loss.
    const out: KernelPlan[] = [
      planRmsNormBackward(device, { dy: acts.dln, x: acts.resid[2 * c.layers]!, weight: this.p('final_norm'), rstd: acts.rstdf, dx: acts.dresid, dweight: this.gNorm('final_norm'), N, C }),
    ];
    if (this.hidden) {
      // p = x_L·W_hᵀ: dx_L += dp·W_h (onto the assigned dresid); dW_h += dpᵀ·x_L. The hidden loss left dp in dHiddenP.
      const Ct = this.hidden.teacherWidth;
      out.push(
        this.mm({ a: acts.dHiddenP!, b: this.tail, c: acts.dresid, M: N, N: C, K: Ct, beta: 1 }),
        this.mm({ a: acts.dHiddenP!, b: acts.resid[2 * c.layers]!, c: this.tailGrad, M: Ct, N: C, K: N, transA: true, beta: 1 }),
      );
    }
    for (let l = c.layers - 1; l >= 0; l--) {
      const Lc = acts.layers[l]!, pre = `layers.${l}.`;
      const x = acts.resid[2 * l]!, mid = acts.resid[2 * l + 1]!;
      // Gradients of q/k as the projections wrote them: after RoPE's (and the q/k norms') backward.
      const dqPre = acts.dqRaw ?? acts.dq, dkPre = acts.dkRaw ?? acts.dk;
      // Under recompute the layers share one set of activations: layer l's forward runs again first.
      if (this.recompute) out.push(...this.layerForward(l));
      out.push(
        // MLP: next = mid + h·W_downᵀ, h = silu(gate) ⊙ up, gate/up = ln2·W_gate/upᵀ, ln2 = rms(mid).
        // (Under LoRA the base's dW products are left out and each adapter's backward follows its base dx product.)
        this.mm({ a: acts.dresid, ...this.w(`${pre}w_down`), c: acts.dh, M: N, N: F, K: C }),
        ...this.adapterBackward(`${pre}w_down`, Lc.h, acts.dresid, acts.dh),
        ...this.dW(`${pre}w_down`, acts.dresid, Lc.h, C, F, N),
        planSwigluBackward(device, { gate: Lc.gate, up: Lc.up, dh: acts.dh, dgate: acts.dgate, dup: acts.dup, N, F }),
        this.mm({ a: acts.dgate, ...this.w(`${pre}w_gate`), c: acts.dln, M: N, N: C, K: F }),
        this.mm({ a: acts.dup, ...this.w(`${pre}w_up`), c: acts.dln, M: N, N: C, K: F, beta: 1 }),
        ...this.adapterBackward(`${pre}w_gate`, Lc.ln2, acts.dgate, acts.dln),
        ...this.adapterBackward(`${pre}w_up`, Lc.ln2, acts.dup, acts.dln),
        ...this.dW(`${pre}w_gate`, acts.dgate, Lc.ln2, F, C, N),
        ...this.dW(`${pre}w_up`, acts.dup, Lc.ln2, F, C, N),
        planRmsNormBackward(device, { dy: acts.dln, x: mid, weight: this.p(`${pre}mlp_norm`), rstd: Lc.rstd2, dx: acts.dtmp, dweight: this.gNorm(`${pre}mlp_norm`), N, C }),
        acc(acts.dtmp, acts.dresid),
        // Attention: mid = x + att·Woᵀ, att = attn(rope(q), rope(k), v), q/k/v = ln1·Wq/k/vᵀ, ln1 = rms(x).
        this.mm({ a: acts.dresid, ...this.w(`${pre}wo`), c: acts.datt, M: N, N: H * D, K: C }),
        ...this.adapterBackward(`${pre}wo`, Lc.att, acts.dresid, acts.datt),
        ...this.dW(`${pre}wo`, acts.dresid, Lc.att, C, H * D, N),
        planAttentionBackward(device, { B, T, H, Hkv, D, q: Lc.q, k: Lc.k, v: Lc.v, o: Lc.att, lse: Lc.lse, dout: acts.datt, delta: acts.delta, dq: acts.dq, dk: acts.dk, dv: acts.dv }),
        planRopeBackward(device, { x: acts.dq, B, T, H, D, theta: c.ropeTheta, ...this.rope }),
        planRopeBackward(device, { x: acts.dk, B, T, H: Hkv, D, theta: c.ropeTheta, ...this.rope }),
        ...(c.qkNorm ? [
          // q = rms_head(qRaw; q_norm): dqRaw (assigned), dq_norm += Σ over rows·heads.
          planRmsNormBackward(device, { dy: acts.dq, x: Lc.qRaw!, weight: this.p(`${pre}q_norm`), rstd: Lc.rstdQ!, dx: acts.dqRaw!, dweight: this.gNorm(`${pre}q_norm`), N: N * H, C: D }),
          planRmsNormBackward(device, { dy: acts.dk, x: Lc.kRaw!, weight: this.p(`${pre}k_norm`), rstd: Lc.rstdK!, dx: acts.dkRaw!, dweight: this.gNorm(`${pre}k_norm`), N: N * Hkv, C: D }),
        ] : []),
        ...(c.attentionBias && !this.base ? [
          // q/k/v = ln1·Wᵀ + b: db += 1ᵀ·d(q/k/v before RoPE), a (1, N)·(N, width) product.
          this.mm({ a: acts.ones!, b: dqPre, c: this.g(`${pre}bq`), M: 1, N: H * D, K: N, beta: 1 }),
          this.mm({ a: acts.ones!, b: dkPre, c: this.g(`${pre}bk`), M: 1, N: Hkv * D, K: N, beta: 1 }),
          this.mm({ a: acts.ones!, b: acts.dv, c: this.g(`${pre}bv`), M: 1, N: Hkv * D, K: N, beta: 1 }),
        ] : []),
        this.mm({ a: dqPre, ...this.w(`${pre}wq`), c: acts.dln, M: N, N: C, K: H * D }),
        this.mm({ a: dkPre, ...this.w(`${pre}wk`), c: acts.dln, M: N, N: C, K: Hkv * D, beta: 1 }),
        this.mm({ a: acts.dv, ...this.w(`${pre}wv`), c: acts.dln, M: N, N: C, K: Hkv * D, beta: 1 }),
        ...this.adapterBackward(`${pre}wq`, Lc.ln1, dqPre, acts.dln),
        ...this.adapterBackward(`${pre}wk`, Lc.ln1, dkPre, acts.dln),
        ...this.adapterBackward(`${pre}wv`, Lc.ln1, acts.dv, acts.dln),
        ...this.dW(`${pre}wq`, dqPre, Lc.ln1, H * D, C, N),
        ...this.dW(`${pre}wk`, dkPre, Lc.ln1, Hkv * D, C, N),
        ...this.dW(`${pre}wv`, acts.dv, Lc.ln1, Hkv * D, C, N),
        planRmsNormBackward(device, { dy: acts.dln, x, weight: this.p(`${pre}attn_norm`), rstd: Lc.rstd1, dx: acts.dtmp, dweight: this.gNorm(`${pre}attn_norm`), N, C }),
        acc(acts.dtmp, acts.dresid),
      );
    }
    return dispatchesOf(...out);
  }

  /**
   * Uploads a batch (ids, labels, weights, teacher) and the embedding-backward buckets; sets the loss scale
   * 1/(Σw · accumSteps), so that gradients accumulated over `accumSteps` micro-batches average them.
   */
  setBatch(b: TrainBatch, accumSteps = 1, lossScale?: number): void {
    const { N, config: c, device } = this;
    checkBatch(b, { N, B: this.B, T: this.T, config: c, teacher: this.objective.teacher, hiddenWidth: this.hidden?.teacherWidth });
    this.weightSum = b.weights.reduce((s, w) => s + w, 0);
    // An explicit lossScale (DPO: signed per-row coefficients) skips the mean over weights.
    if (lossScale === undefined && !(this.weightSum > 0)) throw new Error('batch: every row is masked (Σ weights = 0): nothing to learn from');
    writeArray(device, this.batch.ids, b.ids);
    writeArray(device, this.batch.labels, b.labels);
    writeArray(device, this.batch.weights, b.weights);
    if (b.teacherLogits && this.batch.teacherLogits) writeArray(device, this.batch.teacherLogits, b.teacherLogits);
    if (b.teacherIds && this.batch.teacherIds) writeArray(device, this.batch.teacherIds, b.teacherIds);
    if (b.teacherLogprobs && this.batch.teacherLogprobs) writeArray(device, this.batch.teacherLogprobs, b.teacherLogprobs);
    if (b.teacherHidden && this.batch.teacherHidden) writeArray(device, this.batch.teacherHidden, b.teacherHidden);
    this.uld?.write(b);
    if (this.embBackward) this.embBackward.update(buildEmbeddingBuckets(b.ids, c.vocabSize));
    this.lossScale = lossScale ?? 1 / (this.weightSum * accumSteps);
    this.classifier.update({ lossScale: this.lossScale });
    this.hiddenLoss?.update({ lossScale: this.lossScale * this.hidden!.weight });
  }

  /**
   * Encodes and submits one step on the current batch: forward, loss, and (unless `backward` is false)
   * backward into the gradients (zeroed first unless `zeroGrads` is false: gradient accumulation), and (if
   * `update` is given) clipping + AdamW; LoRA dropout only with `dropoutSeed`. One command encoder; resolves once the
   * GPU has finished it.
   */
  async run(opts: RunOptions = {}): Promise<StepReadback> {
    const { device } = this;
    const backward = opts.backward ?? true;
    this.adapters?.setDropout(runDropout(opts));
    if (opts.update) this.state.setStep(opts.update);
    const enc = device.createCommandEncoder({ label: 'train step' });
    if (backward && (opts.zeroGrads ?? true)) this.state.grads.clear(enc);
    const pass = enc.beginComputePass({ label: 'train step' });
    encodeDispatches(pass, [...this.forward, ...this.lossDispatches(backward), ...(backward ? this.backward : []), ...(backward && opts.update ? this.state.optimize : [])]);
    pass.end();
    const nLoss = 2 * this.N, nHidden = this.hidden ? this.N : 0, nUld = this.uld ? this.N : 0;
    const staging = device.createBuffer({ size: (nLoss + 4 + nHidden + nUld) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(this.batch.losses, 0, staging, 0, nLoss * 4);
    enc.copyBufferToBuffer(this.state.stats, 0, staging, nLoss * 4, 16);
    if (nHidden) enc.copyBufferToBuffer(this.batch.hiddenLosses!, 0, staging, (nLoss + 4) * 4, nHidden * 4);
    if (nUld) enc.copyBufferToBuffer(this.uld!.losses, 0, staging, (nLoss + 4 + nHidden) * 4, nUld * 4);
    device.queue.submit([enc.finish()]);
    const scale = this.lossScale, wsum = this.weightSum, o = this.objective;
    await staging.mapAsync(GPUMapMode.READ);
    const r = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    let kd = 0, ce = 0;
    for (let n = 0; n < this.N; n++) { kd += r[2 * n]!; ce += r[2 * n + 1]!; }
    let hid = 0, uld = 0;
    for (let n = 0; n < nHidden; n++) hid += r[nLoss + 4 + n]!;
    for (let n = 0; n < nUld; n++) uld += r[nLoss + 4 + nHidden + n]!;
    const didUpdate = backward && !!opts.update;
    return {
      loss: scale * (o.kdWeight * kd + o.ceWeight * ce + (this.hidden?.weight ?? 0) * hid + (o.uld?.weight ?? 0) * uld),
      kd: kd / wsum, ce: ce / wsum, hidden: hid / wsum, uld: uld / wsum,
      gradNorm: didUpdate ? r[nLoss]! : NaN, skipped: didUpdate && r[nLoss + 2]! !== 0,
      rowLosses: r.subarray(0, nLoss),
    };
  }

  /** Writes the model's weights (the frozen base under LoRA: tensor by tensor, 16-bit ones rounded to nearest even). */
  uploadParams(slab: Float32Array): void {
    if (this.base) return this.base.uploadSlab(slab);
    if (slab.length !== this.layout.slabFloats) throw new Error(`uploadParams: ${slab.length} floats, the layout has ${this.layout.slabFloats}`);
    this.params.write(slab);
  }

  /** Writes a LoRA base: a whole f32 slab, or tensor by tensor (baseTensorsOf: 16-bit weights as their words). */
  uploadBase(base: BaseSource): void {
    this.loraOnly('uploadBase');
    this.base!.upload(base);
  }

  /** Writes one weight of a LoRA base: f32 values, or its packed 16-bit words (a bf16/f16 safetensors tensor's). */
  uploadBaseTensor(name: string, data: Float32Array | Uint32Array): void {
    this.loraOnly('uploadBaseTensor');
    this.base!.uploadTensor(name, data);
  }

  /** Reads the model's weights (the frozen base under LoRA, 16-bit tensors widened to f32). */
  readParams(): Promise<Float32Array> {
    return this.base ? this.base.read() : this.params.read(this.layout.slabFloats);
  }

  /** ∂loss/∂weights of the last backward; under LoRA the weights are frozen: readAdapterGrads. */
  readGrads(): Promise<Float32Array> {
    if (this.base) throw new Error('readGrads: the LoRA base is frozen and has no gradients (readAdapterGrads gives the adapters\')');
    return this.state.grads.read(this.layout.slabFloats);
  }

  private loraOnly(what: string): void {
    if (!this.base) throw new Error(`${what}: the model was built without the lora option`);
  }

  /** Writes the adapters (LoRA only; loraLayout's slab). */
  uploadAdapters(slab: Float32Array): void {
    this.loraOnly('uploadAdapters');
    if (slab.length !== this.trainedFloats) throw new Error(`uploadAdapters: ${slab.length} floats, the LoRA layout has ${this.trainedFloats}`);
    this.state.params.write(slab);
  }

  readAdapters = (): Promise<Float32Array> => (this.loraOnly('readAdapters'), this.state.params.read(this.trainedFloats));
  readAdapterGrads = (): Promise<Float32Array> => (this.loraOnly('readAdapterGrads'), this.state.grads.read(this.trainedFloats));

  /** Writes W_h (Ct, C) (hidden option only). */
  uploadHiddenProjection(w: Float32Array): void {
    if (!this.hidden) throw new Error('uploadHiddenProjection: the model was built without the hidden option');
    if (w.length !== this.tailFloats) throw new Error(`uploadHiddenProjection: ${w.length} floats, W_h (Ct=${this.hidden.teacherWidth}, C=${this.config.hidden}) has ${this.tailFloats}`);
    this.state.params.write(w, this.trainedFloats);
  }

  /** Reads W_h (Ct, C) (hidden option only). */
  async readHiddenProjection(): Promise<Float32Array> {
    if (!this.hidden) throw new Error('readHiddenProjection: the model was built without the hidden option');
    return this.state.params.read(this.tailFloats, this.trainedFloats);
  }

  /** Reads ∂loss/∂W_h (Ct, C) of the last backward (hidden option only). */
  async readHiddenProjectionGrad(): Promise<Float32Array> {
    if (!this.hidden) throw new Error('readHiddenProjectionGrad: the model was built without the hidden option');
    return this.state.grads.read(this.tailFloats, this.trainedFloats);
  }

  /** Clears the AdamW moments (a fresh optimizer). */
  resetOptimizer(): void {
    this.state.resetOptimizer();
  }

  /**
   * What a checkpoint keeps, read straight into `into`'s views (a checkpoint blob's): the trained slab as `params` —
   * the model's weights, or under LoRA the adapters (the base is the run's starting model) —, W_h when present, and
   * the moments of both.
   */
  async readStateInto(into: { params: Float32Array; m: Float32Array; v: Float32Array; tail?: Float32Array }): Promise<void> {
    const s = this.stateSizes;
    if (into.params.length !== s.params || into.m.length !== s.m || into.v.length !== s.v || (into.tail?.length ?? 0) !== s.wh) {
      throw new Error(`readStateInto: views of ${into.params.length}/${into.m.length}/${into.v.length}/${into.tail?.length ?? 0} floats, this model has ${s.params}/${s.m}/${s.v}/${s.wh}`);
    }
    await this.state.params.readInto(into.params);
    if (into.tail) await this.state.params.readInto(into.tail, this.trainedFloats);
    await this.state.m.readInto(into.m);
    await this.state.v.readInto(into.v);
  }

  /** Float counts of a checkpoint of this model's state (readStateInto). */
  get stateSizes(): { params: number; m: number; v: number; wh: number } {
    const n = this.trainedFloats + this.tailFloats;
    return { params: this.trainedFloats, m: n, v: n, wh: this.tailFloats };
  }

  writeOptimizerState(s: { m: Float32Array; v: Float32Array }): void {
    const n = this.trainedFloats + this.tailFloats;
    if (s.m.length !== n || s.v.length !== n) throw new Error(`writeOptimizerState: moments of ${s.m.length}/${s.v.length} floats, this model trains ${n}`);
    this.state.m.write(s.m);
    this.state.v.write(s.v);
  }

  /** Whether the model carries the hidden-state projection W_h. */
  get hasHiddenProjection(): boolean {
    return !!this.hidden;
  }

  /**
   * Runs the forward pass on the current batch and reads the logits (N, V) (read chunk by chunk: see
   * forEachLogitsChunk): for tests, evaluation and a teacher's dense logits. Columns of vocabulary padding read
   * back as PADDING_LOGIT (probability 0 in any softmax, never an argmax).
   */
  async logits(): Promise<Float32Array> {
    const V = this.config.vocabSize, out = new Float32Array(this.N * V);
    await this.forEachLogitsChunk((r0, _rows, z) => out.set(z, r0 * V));
    return out;
  }

  /**
   * Runs the forward pass on the current batch and hands the logits over chunk by chunk of rows: fn(rowStart, rows,
   * logits (rows, V), padding masked as in logits()). Host and GPU memory hold one chunk (logitsRows rows) at a time.
   */
  async forEachLogitsChunk(fn: (rowStart: number, rows: number, logits: Float32Array) => void | Promise<void>): Promise<void> {
    this.adapters?.setDropout({ active: false, seed: 0 });
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeDispatches(pass, this.forward);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    await readLogitsChunks(this.device, this.classifier, this.acts.logits, this.config.vocabSize, (r0, rows, z) => fn(r0, rows, maskPaddingLogits(z, this.config)));
  }

  /** Every dispatch of one training step in order (forward, loss, backward, optimizer): for benchmarks. */
  stepDispatches(): Dispatch[] {
    return [...this.forward, ...this.lossDispatches(true), ...this.backward, ...this.state.optimize];
  }

  /** The classifier chunks (matmul, loss, and with `backward` their gradient matmuls), then the hidden-state loss. */
  private lossDispatches(backward: boolean): Dispatch[] {
    return [...this.classifier.dispatches(backward), ...(this.hiddenLoss ? this.hiddenLoss.dispatches : [])];
  }

  /** Dispatches per training step (forward + classifier chunks + loss + backward + optimizer). */
  get dispatchesPerStep(): number {
    return this.stepDispatches().length;
  }

  destroy(): void {
    this.state.destroy();
    this.base?.destroy();
    this.adapters?.destroy();
    this.discard?.destroy();
    this.uld?.destroy();
    destroyAll(this.acts);
    destroyAll(this.batch);
  }
}
