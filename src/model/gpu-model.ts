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
// the params/grads/m/v buffers AFTER the model slab (at layout.slabFloats), so grad-norm clipping and AdamW cover
// it while the slab prefix (uploadParams/readParams/readGrads, exports) keeps its layout.
import { encodeDispatches, readF32, readF32Into, writeArray, type Binding, type Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf, type KernelPlan } from '../gpu/launch.ts';
import { planResidualAccumulate, planResidualAdd, planSwigluBackward, planSwigluForward } from '../kernels/activation/activation.ts';
import { planAttentionBackward, planAttentionForward } from '../kernels/attention/attention.ts';
import { buildEmbeddingBuckets, checkTokenIds, planEmbeddingBackward, planEmbeddingForward, type EmbeddingBuckets } from '../kernels/embedding/embedding.ts';
import { planHiddenLoss, HIDDEN_LOSS_KINDS, type HiddenLossKind } from '../kernels/hidden/hidden.ts';
import { NO_LABEL, type KdObjective, type TopKPolicy } from '../kernels/loss/loss.ts';
import { autotuneMatmul, tunedVariant } from '../kernels/matmul/autotune.ts';
import { planMatmul, type MatmulArgs, type MatmulProblem } from '../kernels/matmul/matmul.ts';
import { planRmsNormBackward, planRmsNormForward } from '../kernels/norm/norm.ts';
import { gradNormPartialCount, planAdamW, planGradNorm, type AdamWPlan } from '../kernels/optim/optim.ts';
import { planRopeBackward, planRopeForward } from '../kernels/rope/rope.ts';
import { allocActivations, allocBatch, allocBuffer, destroyAll, type Activations, type BatchBuffers, type TeacherInput } from './activations.ts';
import { realVocab, ropeInvFreq, type ModelConfig } from './config.ts';
import { logitsChunkRows, planClassifier, readLogitsChunks, type ClassifierPlan } from './gpu-classifier.ts';
import { paramLayout, SLAB_ALIGN_FLOATS, type ParamLayout } from './params.ts';
import { initHiddenProjection } from './ref-model.ts';

/** The logit read back for a column of vocabulary padding: finite (so 0·log terms stay 0), exp() of it is 0. */
export const PADDING_LOGIT = Math.fround(-1e30);

/** Sets the vocabulary-padding columns of (rows, V) logits to PADDING_LOGIT, in place. */
export function maskPaddingLogits(logits: Float32Array, c: ModelConfig): Float32Array {
  const V = c.vocabSize, Vr = realVocab(c);
  if (Vr < V) for (let off = 0; off < logits.length; off += V) logits.fill(PADDING_LOGIT, off + Vr, off + V);
  return logits;
}

export interface ObjectiveSpec {
  objective: KdObjective; // 'none' = cross-entropy only
  temperature: number;
  kdWeight: number;
  ceWeight: number;
  beta?: number;
  lambda?: number;
  /** Teacher input the batches carry: none, dense logits (N, V), or top-k (N, k) with a missing-mass policy. */
  teacher: TeacherInput & { policy?: TopKPolicy };
}

export interface OptimizerSpec {
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global gradient-norm clip; ≤ 0 disables. */
  clipNorm: number;
}

/** Hidden-state distillation: the student's last hidden state, projected to the teacher's width, vs the teacher's. */
export interface HiddenSpec {
  /** The teacher's hidden width Ct (batches carry teacherHidden (B, T, Ct)). */
  teacherWidth: number;
  kind: HiddenLossKind;
  /** Multiplies the hidden loss next to the logit objectives (same 1/(Σw·accum) scale). */
  weight: number;
  /** Seed of W_h's initialisation normal(0, initStd) (initHiddenProjection); default 0. */
  seed?: number;
}

export interface GpuModelOptions {
  hidden?: HiddenSpec;
  /** Bytes the student's logits buffer may take (default DEFAULT_LOGITS_BUDGET_BYTES, 64 MiB): the classifier and
   *  its loss run over chunks of logitsChunkRows(N, V, budget) rows. */
  logitsBudgetBytes?: number;
}

const HIDDEN_KEYS = ['teacherWidth', 'kind', 'weight', 'seed'];

function checkHiddenSpec(h: HiddenSpec): void {
  const unknown = Object.keys(h).filter((k) => !HIDDEN_KEYS.includes(k));
  if (unknown.length) throw new Error(`GpuModel: unknown hidden option(s) ${unknown.join(', ')} (known: ${HIDDEN_KEYS.join(', ')})`);
  if (!Number.isInteger(h.teacherWidth) || h.teacherWidth < 1) throw new Error(`GpuModel: hidden.teacherWidth must be a positive integer, got ${h.teacherWidth}`);
  if (!HIDDEN_LOSS_KINDS.includes(h.kind)) throw new Error(`GpuModel: hidden.kind must be 'mse' or 'cosine', got '${h.kind}'`);
  if (!Number.isFinite(h.weight)) throw new Error(`GpuModel: hidden.weight must be a finite number, got ${h.weight}`);
  if (h.seed !== undefined && !Number.isInteger(h.seed)) throw new Error(`GpuModel: hidden.seed must be an integer, got ${h.seed}`);
}

export interface TrainBatch {
  ids: Uint32Array; // (B, T)
  labels: Uint32Array; // (B, T), NO_LABEL (0xFFFFFFFF) where there is no target
  weights: Float32Array; // (B, T), 0 = masked
  teacherLogits?: Float32Array; // (B, T, V)
  teacherIds?: Uint32Array; // (B, T, k)
  teacherLogprobs?: Float32Array; // (B, T, k)
  /** Teacher hidden states, required iff the model has the `hidden` option. */
  teacherHidden?: Float32Array; // (B, T, Ct)
}

export interface StepReadback {
  /** Σ over rows of lossScale·(kdWeight·w·KD + ceWeight·w·CE): the objective that was differentiated. */
  loss: number;
  /** Weighted means over the batch's weighted rows: Σ w·KD / Σ w and Σ w·CE / Σ w. */
  kd: number;
  ce: number;
  gradNorm: number;
  /** The step's gradient had a NaN/Inf: the GPU skipped the update. */
  skipped: boolean;
  /** Per row: [w·KD, w·CE] (N, 2), e.g. for sequence log-probabilities (DPO). */
  rowLosses: Float32Array;
  /** Hidden-state loss, weighted mean Σ w·loss_n / Σ w (0 without the `hidden` option). */
  hidden: number;
}

export class GpuModel {
  readonly layout: ParamLayout;
  readonly N: number;
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  private readonly m: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly acts: Activations;
  private readonly batch: BatchBuffers;
  private readonly forward: Dispatch[];
  /** Classifier, loss and classifier backward per chunk of rows (gpu-classifier.ts). */
  private readonly classifier: ClassifierPlan;
  /** Rows R of the logits buffer (R, V): N, or a multiple of 64 when the batch's logits exceed the budget. */
  readonly logitsRows: number;
  private readonly backward: Dispatch[];
  private readonly embBackward: KernelPlan<EmbeddingBuckets>;
  private readonly optimize: Dispatch[];
  private readonly adamw: AdamWPlan;
  readonly hidden?: HiddenSpec;
  /** Floats of W_h (Ct·C) at layout.slabFloats in params/grads/m/v; 0 without the hidden option. */
  private readonly hiddenFloats: number;
  private readonly hiddenLoss?: KernelPlan<{ lossScale: number }>;
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
    const unknown = Object.keys(options).filter((k) => k !== 'hidden' && k !== 'logitsBudgetBytes');
    if (unknown.length) throw new Error(`GpuModel: unknown option(s) ${unknown.join(', ')} (known: hidden, logitsBudgetBytes)`);
    if (options.hidden) checkHiddenSpec(options.hidden);
    this.hidden = options.hidden;
    const Ct = this.hidden?.teacherWidth;
    this.layout = paramLayout(config);
    this.N = B * T;
    this.hiddenFloats = Ct ? Ct * config.hidden : 0;
    // Model slab, then W_h (aligned) when the hidden objective is on.
    const P = this.layout.slabFloats + Math.ceil(this.hiddenFloats / SLAB_ALIGN_FLOATS) * SLAB_ALIGN_FLOATS;
    this.params = allocBuffer(device, P, 'params');
    this.grads = allocBuffer(device, P, 'grads');
    this.m = allocBuffer(device, P, 'adam.m');
    this.v = allocBuffer(device, P, 'adam.v');
    this.partials = allocBuffer(device, gradNormPartialCount(P), 'gradnorm.partials');
    this.stats = allocBuffer(device, 4, 'gradnorm.stats');
    this.logitsRows = logitsChunkRows(this.N, config.vocabSize, options.logitsBudgetBytes);
    this.acts = allocActivations(device, config, B, T, Ct, this.logitsRows);
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
    this.embBackward = planEmbeddingBackward(device, {
      dx: this.acts.dresid, dwte: this.g('wte'), unique: this.batch.bucketUnique, offsets: this.batch.bucketOffsets,
      positions: this.batch.bucketPositions, N: this.N, V: config.vocabSize, C: config.hidden,
    });
    this.backward = [...this.planBackward(), ...this.embBackward.dispatches];
    const gn = planGradNorm(device, { grad: this.grads, P, partials: this.partials, stats: this.stats, maxNorm: optimizer.clipNorm });
    this.adamw = planAdamW(device, {
      params: this.params, grads: this.grads, m: this.m, v: this.v, stats: this.stats,
      regions: [
        ...this.layout.entries.map((e) => ({ offset: e.offset, count: e.size, weightDecay: e.decay ? optimizer.weightDecay : 0 })),
        ...(this.hiddenFloats ? [{ offset: this.layout.slabFloats, count: this.hiddenFloats, weightDecay: optimizer.weightDecay }] : []),
      ],
      lr: 0, step: 1, beta1: optimizer.beta1, beta2: optimizer.beta2, eps: optimizer.eps,
    });
    this.optimize = dispatchesOf(gn, this.adamw);
  }

  /** The parameter tensor `name` as a binding into the slab. */
  p(name: string): Binding {
    const e = this.layout.byName.get(name);
    if (!e) throw new Error(`GpuModel: no parameter '${name}'`);
    return { buffer: this.params, offset: e.offset * 4, size: e.size * 4 };
  }

  /** The gradient of parameter `name` (same layout as the slab). */
  g(name: string): Binding {
    const e = this.layout.byName.get(name)!;
    return { buffer: this.grads, offset: e.offset * 4, size: e.size * 4 };
  }

  /** W_h (Ct, C) in the params buffer after the slab. */
  private get hiddenProjection(): Binding {
    return { buffer: this.params, offset: this.layout.slabFloats * 4, size: this.hiddenFloats * 4 };
  }

  private get hiddenProjectionGrad(): Binding {
    return { buffer: this.grads, offset: this.layout.slabFloats * 4, size: this.hiddenFloats * 4 };
  }

  /** Every matmul problem this model plans (shape and transposes), for the autotuner. */
  readonly matmulProblems: MatmulProblem[] = [];

  private mm(a: Omit<MatmulArgs, 'variant'>): KernelPlan {
    this.matmulProblems.push({ M: a.M, N: a.N, K: a.K, transA: a.transA, transB: a.transB });
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
    const { device, config: c, acts, B, T, N } = this;
    const C = c.hidden, F = c.intermediate, H = c.heads, Hkv = c.kvHeads, D = c.headDim;
    const out: KernelPlan[] = [planEmbeddingForward(device, { ids: this.batch.ids, wte: this.p('wte'), x: acts.resid[0]!, N, V: c.vocabSize, C })];
    for (let l = 0; l < c.layers; l++) {
      const L = acts.layers[l]!, pre = `layers.${l}.`;
      const x = acts.resid[2 * l]!, mid = acts.resid[2 * l + 1]!, next = acts.resid[2 * l + 2]!;
      out.push(
        planRmsNormForward(device, { x, weight: this.p(`${pre}attn_norm`), y: L.ln1, rstd: L.rstd1, N, C, eps: c.rmsNormEps }),
        // q/k/v = ln1·Wq/k/vᵀ (+ bq/bk/bv: Qwen2); Qwen3 writes q/k raw, then RMSNorm per head into L.q / L.k.
        this.mm({ a: L.ln1, b: this.p(`${pre}wq`), c: L.qRaw ?? L.q, M: N, N: H * D, K: C, transB: true, ...this.bias(`${pre}bq`) }),
        this.mm({ a: L.ln1, b: this.p(`${pre}wk`), c: L.kRaw ?? L.k, M: N, N: Hkv * D, K: C, transB: true, ...this.bias(`${pre}bk`) }),
        this.mm({ a: L.ln1, b: this.p(`${pre}wv`), c: L.v, M: N, N: Hkv * D, K: C, transB: true, ...this.bias(`${pre}bv`) }),
        ...(c.qkNorm ? [
          planRmsNormForward(device, { x: L.qRaw!, weight: this.p(`${pre}q_norm`), y: L.q, rstd: L.rstdQ!, N: N * H, C: D, eps: c.rmsNormEps }),
          planRmsNormForward(device, { x: L.kRaw!, weight: this.p(`${pre}k_norm`), y: L.k, rstd: L.rstdK!, N: N * Hkv, C: D, eps: c.rmsNormEps }),
        ] : []),
        planRopeForward(device, { x: L.q, B, T, H, D, theta: c.ropeTheta, ...this.rope }),
        planRopeForward(device, { x: L.k, B, T, H: Hkv, D, theta: c.ropeTheta, ...this.rope }),
        planAttentionForward(device, { B, T, H, Hkv, D, q: L.q, k: L.k, v: L.v, o: L.att, lse: L.lse }),
        this.mm({ a: L.att, b: this.p(`${pre}wo`), c: acts.proj, M: N, N: C, K: H * D, transB: true }),
        planResidualAdd(device, { a: x, b: acts.proj, out: mid, N: N * C }),
        planRmsNormForward(device, { x: mid, weight: this.p(`${pre}mlp_norm`), y: L.ln2, rstd: L.rstd2, N, C, eps: c.rmsNormEps }),
        this.mm({ a: L.ln2, b: this.p(`${pre}w_gate`), c: L.gate, M: N, N: F, K: C, transB: true }),
        this.mm({ a: L.ln2, b: this.p(`${pre}w_up`), c: L.up, M: N, N: F, K: C, transB: true }),
        planSwigluForward(device, { gate: L.gate, up: L.up, h: L.h, N, F }),
        this.mm({ a: L.h, b: this.p(`${pre}w_down`), c: acts.proj, M: N, N: C, K: F, transB: true }),
        planResidualAdd(device, { a: mid, b: acts.proj, out: next, N: N * C }),
      );
    }
    out.push(
      planRmsNormForward(device, { x: acts.resid[2 * c.layers]!, weight: this.p('final_norm'), y: acts.lnf, rstd: acts.rstdf, N, C, eps: c.rmsNormEps }),
    );
    // The classifier (logits = lnf·W_lmᵀ) is not here: it runs per chunk of rows with its loss (this.classifier).
    // Hidden-state distillation: p (N, Ct) = x_L (N, C) · W_hᵀ.
    if (this.hidden) out.push(this.mm({ a: acts.resid[2 * c.layers]!, b: this.hiddenProjection, c: acts.hiddenP!, M: N, N: this.hidden.teacherWidth, K: C, transB: true }));
    return dispatchesOf(...out);
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
      lnf: this.acts.lnf, dln: this.acts.dln, weight: this.p(this.lmHead), dweight: this.g(this.lmHead), logits: this.acts.logits,
      labels: b.labels, weights: b.weights, losses: b.losses, teacher, mm: (a) => this.mm(a),
      loss: { objective: o.objective, temperature: o.temperature, kdWeight: o.kdWeight, ceWeight: o.ceWeight, lossScale: 1, beta: o.beta, lambda: o.lambda },
    });
  }

  private planBackward(): Dispatch[] {
    const { device, config: c, acts, B, T, N } = this;
    const C = c.hidden, F = c.intermediate, H = c.heads, Hkv = c.kvHeads, D = c.headDim;
    const acc = (x: Binding, y: Binding) => planResidualAccumulate(device, { x, y, N: N * C });
    // The classifier's backward (dlnf into acts.dln, dW_lm) ran chunk by chunk after each chunk's loss.
    const out: KernelPlan[] = [
      planRmsNormBackward(device, { dy: acts.dln, x: acts.resid[2 * c.layers]!, weight: this.p('final_norm'), rstd: acts.rstdf, dx: acts.dresid, dweight: this.g('final_norm'), N, C }),
    ];
    if (this.hidden) {
      // p = x_L·W_hᵀ: dx_L += dp·W_h (onto the assigned dresid); dW_h += dpᵀ·x_L. The hidden loss left dp in dHiddenP.
      const Ct = this.hidden.teacherWidth;
      out.push(
        this.mm({ a: acts.dHiddenP!, b: this.hiddenProjection, c: acts.dresid, M: N, N: C, K: Ct, beta: 1 }),
        this.mm({ a: acts.dHiddenP!, b: acts.resid[2 * c.layers]!, c: this.hiddenProjectionGrad, M: Ct, N: C, K: N, transA: true, beta: 1 }),
      );
    }
    for (let l = c.layers - 1; l >= 0; l--) {
      const Lc = acts.layers[l]!, pre = `layers.${l}.`;
      const x = acts.resid[2 * l]!, mid = acts.resid[2 * l + 1]!;
      // Gradients of q/k as the projections wrote them: after RoPE's (and the q/k norms') backward.
      const dqPre = acts.dqRaw ?? acts.dq, dkPre = acts.dkRaw ?? acts.dk;
      out.push(
        // MLP: next = mid + h·W_downᵀ, h = silu(gate) ⊙ up, gate/up = ln2·W_gate/upᵀ, ln2 = rms(mid).
        this.mm({ a: acts.dresid, b: this.p(`${pre}w_down`), c: acts.dh, M: N, N: F, K: C }),
        this.mm({ a: acts.dresid, b: Lc.h, c: this.g(`${pre}w_down`), M: C, N: F, K: N, transA: true, beta: 1 }),
        planSwigluBackward(device, { gate: Lc.gate, up: Lc.up, dh: acts.dh, dgate: acts.dgate, dup: acts.dup, N, F }),
        this.mm({ a: acts.dgate, b: this.p(`${pre}w_gate`), c: acts.dln, M: N, N: C, K: F }),
        this.mm({ a: acts.dup, b: this.p(`${pre}w_up`), c: acts.dln, M: N, N: C, K: F, beta: 1 }),
        this.mm({ a: acts.dgate, b: Lc.ln2, c: this.g(`${pre}w_gate`), M: F, N: C, K: N, transA: true, beta: 1 }),
        this.mm({ a: acts.dup, b: Lc.ln2, c: this.g(`${pre}w_up`), M: F, N: C, K: N, transA: true, beta: 1 }),
        planRmsNormBackward(device, { dy: acts.dln, x: mid, weight: this.p(`${pre}mlp_norm`), rstd: Lc.rstd2, dx: acts.dtmp, dweight: this.g(`${pre}mlp_norm`), N, C }),
        acc(acts.dtmp, acts.dresid),
        // Attention: mid = x + att·Woᵀ, att = attn(rope(q), rope(k), v), q/k/v = ln1·Wq/k/vᵀ, ln1 = rms(x).
        this.mm({ a: acts.dresid, b: this.p(`${pre}wo`), c: acts.datt, M: N, N: H * D, K: C }),
        this.mm({ a: acts.dresid, b: Lc.att, c: this.g(`${pre}wo`), M: C, N: H * D, K: N, transA: true, beta: 1 }),
        planAttentionBackward(device, { B, T, H, Hkv, D, q: Lc.q, k: Lc.k, v: Lc.v, o: Lc.att, lse: Lc.lse, dout: acts.datt, delta: acts.delta, dq: acts.dq, dk: acts.dk, dv: acts.dv }),
        planRopeBackward(device, { x: acts.dq, B, T, H, D, theta: c.ropeTheta, ...this.rope }),
        planRopeBackward(device, { x: acts.dk, B, T, H: Hkv, D, theta: c.ropeTheta, ...this.rope }),
        ...(c.qkNorm ? [
          // q = rms_head(qRaw; q_norm): dqRaw (assigned), dq_norm += Σ over rows·heads.
          planRmsNormBackward(device, { dy: acts.dq, x: Lc.qRaw!, weight: this.p(`${pre}q_norm`), rstd: Lc.rstdQ!, dx: acts.dqRaw!, dweight: this.g(`${pre}q_norm`), N: N * H, C: D }),
          planRmsNormBackward(device, { dy: acts.dk, x: Lc.kRaw!, weight: this.p(`${pre}k_norm`), rstd: Lc.rstdK!, dx: acts.dkRaw!, dweight: this.g(`${pre}k_norm`), N: N * Hkv, C: D }),
        ] : []),
        ...(c.attentionBias ? [
          // q/k/v = ln1·Wᵀ + b: db += 1ᵀ·d(q/k/v before RoPE), a (1, N)·(N, width) product.
          this.mm({ a: acts.ones!, b: dqPre, c: this.g(`${pre}bq`), M: 1, N: H * D, K: N, beta: 1 }),
          this.mm({ a: acts.ones!, b: dkPre, c: this.g(`${pre}bk`), M: 1, N: Hkv * D, K: N, beta: 1 }),
          this.mm({ a: acts.ones!, b: acts.dv, c: this.g(`${pre}bv`), M: 1, N: Hkv * D, K: N, beta: 1 }),
        ] : []),
        this.mm({ a: dqPre, b: this.p(`${pre}wq`), c: acts.dln, M: N, N: C, K: H * D }),
        this.mm({ a: dkPre, b: this.p(`${pre}wk`), c: acts.dln, M: N, N: C, K: Hkv * D, beta: 1 }),
        this.mm({ a: acts.dv, b: this.p(`${pre}wv`), c: acts.dln, M: N, N: C, K: Hkv * D, beta: 1 }),
        this.mm({ a: dqPre, b: Lc.ln1, c: this.g(`${pre}wq`), M: H * D, N: C, K: N, transA: true, beta: 1 }),
        this.mm({ a: dkPre, b: Lc.ln1, c: this.g(`${pre}wk`), M: Hkv * D, N: C, K: N, transA: true, beta: 1 }),
        this.mm({ a: acts.dv, b: Lc.ln1, c: this.g(`${pre}wv`), M: Hkv * D, N: C, K: N, transA: true, beta: 1 }),
        planRmsNormBackward(device, { dy: acts.dln, x, weight: this.p(`${pre}attn_norm`), rstd: Lc.rstd1, dx: acts.dtmp, dweight: this.g(`${pre}attn_norm`), N, C }),
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
    const need = (name: string, arr: { length: number } | undefined, n: number) => {
      if (!arr || arr.length !== n) throw new Error(`batch: ${name} has ${arr?.length ?? 'no'} elements, expected ${n} (B=${this.B}, T=${this.T})`);
    };
    need('ids', b.ids, N); need('labels', b.labels, N); need('weights', b.weights, N);
    const Vr = realVocab(c);
    checkTokenIds(b.ids, Vr);
    if (Vr < c.vocabSize) {
      const i = b.labels.findIndex((y) => y >= Vr && y !== NO_LABEL);
      if (i >= 0) throw new Error(`batch: label ${b.labels[i]} at ${i} is vocabulary padding (the model has ${Vr} real tokens of ${c.vocabSize})`);
    }
    const t = this.objective.teacher;
    if (t.kind === 'dense') need('teacherLogits', b.teacherLogits, N * c.vocabSize);
    if (t.kind === 'topk') { need('teacherIds', b.teacherIds, N * t.k); need('teacherLogprobs', b.teacherLogprobs, N * t.k); }
    if (this.hidden) need('teacherHidden', b.teacherHidden, N * this.hidden.teacherWidth);
    else if (b.teacherHidden) throw new Error('batch: teacherHidden given, but the model was built without the hidden option');
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
    this.embBackward.update(buildEmbeddingBuckets(b.ids, c.vocabSize));
    this.lossScale = lossScale ?? 1 / (this.weightSum * accumSteps);
    this.classifier.update({ lossScale: this.lossScale });
    this.hiddenLoss?.update({ lossScale: this.lossScale * this.hidden!.weight });
  }

  /**
   * Encodes and submits one step on the current batch: forward, loss, and (unless `backward` is false)
   * backward into the gradients (zeroed first unless `zeroGrads` is false: gradient accumulation), and (if
   * `update` is given) clipping + AdamW. One command encoder; resolves once the GPU has finished it.
   */
  async run(opts: { backward?: boolean; zeroGrads?: boolean; update?: { lr: number; step: number } } = {}): Promise<StepReadback> {
    const { device } = this;
    const backward = opts.backward ?? true;
    if (opts.update) this.adamw.update(opts.update);
    const enc = device.createCommandEncoder({ label: 'train step' });
    if (backward && (opts.zeroGrads ?? true)) enc.clearBuffer(this.grads);
    const pass = enc.beginComputePass({ label: 'train step' });
    encodeDispatches(pass, [...this.forward, ...this.lossDispatches(backward), ...(backward ? this.backward : []), ...(backward && opts.update ? this.optimize : [])]);
    pass.end();
    const nLoss = 2 * this.N, nHidden = this.hidden ? this.N : 0;
    const staging = device.createBuffer({ size: (nLoss + 4 + nHidden) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(this.batch.losses, 0, staging, 0, nLoss * 4);
    enc.copyBufferToBuffer(this.stats, 0, staging, nLoss * 4, 16);
    if (nHidden) enc.copyBufferToBuffer(this.batch.hiddenLosses!, 0, staging, (nLoss + 4) * 4, nHidden * 4);
    device.queue.submit([enc.finish()]);
    const scale = this.lossScale, wsum = this.weightSum, o = this.objective;
    await staging.mapAsync(GPUMapMode.READ);
    const r = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    let kd = 0, ce = 0;
    for (let n = 0; n < this.N; n++) { kd += r[2 * n]!; ce += r[2 * n + 1]!; }
    let hid = 0;
    for (let n = 0; n < nHidden; n++) hid += r[nLoss + 4 + n]!;
    const didUpdate = backward && !!opts.update;
    return {
      loss: scale * (o.kdWeight * kd + o.ceWeight * ce + (this.hidden?.weight ?? 0) * hid), kd: kd / wsum, ce: ce / wsum, hidden: hid / wsum,
      gradNorm: didUpdate ? r[nLoss]! : NaN, skipped: didUpdate && r[nLoss + 2]! !== 0,
      rowLosses: r.subarray(0, nLoss),
    };
  }

  uploadParams(slab: Float32Array): void {
    if (slab.length !== this.layout.slabFloats) throw new Error(`uploadParams: ${slab.length} floats, the layout has ${this.layout.slabFloats}`);
    writeArray(this.device, this.params, slab);
  }

  /** Writes W_h (Ct, C) (hidden option only). */
  uploadHiddenProjection(w: Float32Array): void {
    if (!this.hidden) throw new Error('uploadHiddenProjection: the model was built without the hidden option');
    if (w.length !== this.hiddenFloats) throw new Error(`uploadHiddenProjection: ${w.length} floats, W_h (Ct=${this.hidden.teacherWidth}, C=${this.config.hidden}) has ${this.hiddenFloats}`);
    writeArray(this.device, this.params, w, this.layout.slabFloats * 4);
  }

  /** Reads W_h (Ct, C) (hidden option only). */
  async readHiddenProjection(): Promise<Float32Array> {
    if (!this.hidden) throw new Error('readHiddenProjection: the model was built without the hidden option');
    return readF32(this.device, this.params, this.hiddenFloats, this.layout.slabFloats);
  }

  /** Reads ∂loss/∂W_h (Ct, C) of the last backward (hidden option only). */
  async readHiddenProjectionGrad(): Promise<Float32Array> {
    if (!this.hidden) throw new Error('readHiddenProjectionGrad: the model was built without the hidden option');
    return readF32(this.device, this.grads, this.hiddenFloats, this.layout.slabFloats);
  }

  /** Clears the AdamW moments (a fresh optimizer). */
  resetOptimizer(): void {
    const enc = this.device.createCommandEncoder();
    enc.clearBuffer(this.m);
    enc.clearBuffer(this.v);
    this.device.queue.submit([enc.finish()]);
  }

  readParams = (): Promise<Float32Array> => readF32(this.device, this.params, this.layout.slabFloats);
  /** The slab, W_h (when present), and the moments read straight into `into`'s views (a checkpoint blob's). */
  async readStateInto(into: { params: Float32Array; m: Float32Array; v: Float32Array; hiddenProjection?: Float32Array }): Promise<void> {
    const n = this.layout.slabFloats + this.hiddenFloats;
    if (into.params.length !== this.layout.slabFloats || into.m.length !== n || into.v.length !== n || (into.hiddenProjection?.length ?? 0) !== this.hiddenFloats) {
      throw new Error(`readStateInto: views of ${into.params.length}/${into.m.length}/${into.v.length}/${into.hiddenProjection?.length ?? 0} floats, this model has ${this.layout.slabFloats}/${n}/${n}/${this.hiddenFloats}`);
    }
    await readF32Into(this.device, this.params, into.params);
    if (into.hiddenProjection) await readF32Into(this.device, this.params, into.hiddenProjection, this.layout.slabFloats);
    await readF32Into(this.device, this.m, into.m);
    await readF32Into(this.device, this.v, into.v);
  }
  /** Float counts of a checkpoint of this model's state. */
  get stateSizes(): { params: number; m: number; v: number; wh: number } {
    const n = this.layout.slabFloats + this.hiddenFloats;
    return { params: this.layout.slabFloats, m: n, v: n, wh: this.hiddenFloats };
  }
  readGrads = (): Promise<Float32Array> => readF32(this.device, this.grads, this.layout.slabFloats);
  writeOptimizerState(s: { m: Float32Array; v: Float32Array }): void {
    const n = this.layout.slabFloats + this.hiddenFloats;
    if (s.m.length !== n || s.v.length !== n) throw new Error(`writeOptimizerState: moments of ${s.m.length}/${s.v.length} floats, this model trains ${n}`);
    writeArray(this.device, this.m, s.m);
    writeArray(this.device, this.v, s.v);
  }

  /** Whether the model carries the hidden-state projection W_h. */
  get hasHiddenProjection(): boolean {
    return this.hiddenFloats > 0;
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
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeDispatches(pass, this.forward);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    await readLogitsChunks(this.device, this.classifier, this.acts.logits, this.config.vocabSize, (r0, rows, z) => fn(r0, rows, maskPaddingLogits(z, this.config)));
  }

  /** Every dispatch of one training step in order (forward, loss, backward, optimizer): for benchmarks. */
  stepDispatches(): Dispatch[] {
    return [...this.forward, ...this.lossDispatches(true), ...this.backward, ...this.optimize];
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
    for (const b of [this.params, this.grads, this.m, this.v, this.partials, this.stats]) b.destroy();
    destroyAll(this.acts);
    destroyAll(this.batch);
  }
}
