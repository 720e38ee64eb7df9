// Generation with a KV cache on the GPU: the prompt is prefilled in one pass (S = prompt length), then one token
// per step (S = 1), each layer appending its new keys/values to the cache and attending to everything before.
// With `adapters` (LoRA), each adapted linear adds s·(x·Aᵀ)·Bᵀ after its base product, as the training model does.
// Only the last position's logits come back to the CPU, where sampling.ts picks the next token (temperature,
// top-k, top-p, seed) and stop conditions are checked. Shares the parameter slab with the trainer.
import { encodeDispatches, readF32, writeArray, type Binding, type Dispatch } from '../gpu/dispatch.ts';
import { dispatchesOf, type KernelPlan } from '../gpu/launch.ts';
import { planResidualAccumulate, planSwigluForward } from '../kernels/activation/activation.ts';
import { planAttentionDecode, planKvAppend } from '../kernels/attention/decode.ts';
import { planEmbeddingForward } from '../kernels/embedding/embedding.ts';
import { planMatmul } from '../kernels/matmul/matmul.ts';
import { planRmsNormForward } from '../kernels/norm/norm.ts';
import { planRopeForward } from '../kernels/rope/rope.ts';
import { Rng } from '../util/rng.ts';
import { allocBuffer } from './activations.ts';
import { realVocab, ropeInvFreq, type ModelConfig } from './config.ts';
import { baseLayout, type BaseLayout } from './base-layout.ts';
import { planLoraForward, type LoraLinear } from './gpu-lora.ts';
import { loraLayout, loraScale, type LoraConfig, type LoraLayout } from './lora.ts';
import { paramLayout, type ParamLayout } from './params.ts';
import { sampleToken, type SamplingConfig } from './sampling.ts';
import type { SlabShards } from './slab-shards.ts';

export interface GenerateOptions extends Partial<SamplingConfig> {
  maxNewTokens: number;
  seed?: number;
  /** Stop when one of these token ids is produced (it is not included in the output). */
  stopTokens?: number[];
  /** Called with each new token id as it is produced; return false to stop. */
  onToken?: (id: number) => boolean | void;
}

interface StepPlan {
  S: number;
  dispatches: Dispatch[];
  /** The plans whose update(pos) sets the step's first position. */
  positional: KernelPlan<number>[];
}

/** LoRA adapters for a Generator: the config and the adapter slab (loraLayout), e.g. a LoRA GpuModel's trained slab. */
export interface GeneratorAdapters {
  lora: LoraConfig;
  slab: SlabShards;
}

export class Generator {
  readonly layout: ParamLayout;
  private readonly kcache: GPUBuffer[];
  private readonly vcache: GPUBuffer[];
  private readonly scratch: Record<'ids' | 'x' | 'ln' | 'q' | 'k' | 'v' | 'att' | 'proj' | 'gate' | 'up' | 'h' | 'logits', GPUBuffer>;
  private readonly plans = new Map<number, StepPlan>();
  /** qkNorm only: q/k before the per-head norm and the norm's 1/rms (per row and head). */
  private readonly qkRaw?: { q: GPUBuffer; k: GPUBuffer; rstd: GPUBuffer };
  private readonly loraLayout?: LoraLayout;
  /** With adapters: the LoRA base's layout (its linears may be 16-bit words). */
  private readonly baseLayout?: BaseLayout;
  /** LoRA only: x·Aᵀ (S, r) of the linear being computed. */
  private readonly loraU?: GPUBuffer;

  /**
   * `params` is the slab, in one buffer or in shards (GpuModel.params); `maxLen` bounds prompt + generated tokens;
   * `adapters`: LoRA adapters applied after their weights' products (a LoRA student samples as it trains).
   */
  constructor(readonly device: GPUDevice, readonly config: ModelConfig, readonly params: GPUBuffer | SlabShards, readonly maxLen = config.maxSeqLen, readonly adapters?: GeneratorAdapters) {
    this.layout = paramLayout(config);
    if (adapters) {
      this.baseLayout = baseLayout(config, adapters.lora.base);
      this.loraLayout = loraLayout(config, adapters.lora);
      if (adapters.slab.floats < this.loraLayout.slabFloats) throw new Error(`Generator: the adapter slab has ${adapters.slab.floats} floats, the LoRA config needs ${this.loraLayout.slabFloats}`);
      this.loraU = allocBuffer(device, maxLen * adapters.lora.rank, 'gen.lora.u');
    }
    const c = config, KD = c.kvHeads * c.headDim, HD = c.heads * c.headDim, L = maxLen;
    this.kcache = Array.from({ length: c.layers }, (_, l) => allocBuffer(device, L * KD, `kcache.${l}`));
    this.vcache = Array.from({ length: c.layers }, (_, l) => allocBuffer(device, L * KD, `vcache.${l}`));
    const b = (n: number, label: string) => allocBuffer(device, n, label);
    this.scratch = {
      ids: b(L, 'gen.ids'), x: b(L * c.hidden, 'gen.x'), ln: b(L * c.hidden, 'gen.ln'), q: b(L * HD, 'gen.q'),
      k: b(L * KD, 'gen.k'), v: b(L * KD, 'gen.v'), att: b(L * HD, 'gen.att'), proj: b(L * c.hidden, 'gen.proj'),
      gate: b(L * c.intermediate, 'gen.gate'), up: b(L * c.intermediate, 'gen.up'), h: b(L * c.intermediate, 'gen.h'),
      logits: b(L * c.vocabSize, 'gen.logits'),
    };
    if (c.qkNorm) this.qkRaw = { q: b(L * HD, 'gen.qRaw'), k: b(L * KD, 'gen.kRaw'), rstd: b(L * c.heads, 'gen.rstdQK') };
  }

  /** y (S, out) += s·(x·Aᵀ)·Bᵀ when `name` has an adapter (u scratch shared: nothing is kept for a backward). */
  private adapt(name: string, x: Binding, y: Binding, S: number): KernelPlan[] {
    const A = this.loraLayout?.byName.get(`${name}.lora_a`), Bm = this.loraLayout?.byName.get(`${name}.lora_b`);
    if (!A || !Bm) return [];
    const { lora, slab } = this.adapters!;
    const u = { buffer: this.loraU! };
    const l: LoraLinear = {
      N: S, inF: A.shape[1], outF: Bm.shape[0], r: lora.rank, scale: loraScale(lora),
      a: slab.binding(A.offset, A.size), b: slab.binding(Bm.offset, Bm.size), da: u, db: u, u, du: u,
    };
    return planLoraForward((a) => planMatmul(this.device, a), l, x, y);
  }

  private p(name: string): Binding {
    // A LoRA base is laid out by its format (16-bit linears: fewer words); a plain slab by the parameter table.
    const b = this.baseLayout?.byName.get(name);
    const [offset, size] = b ? [b.offset, b.words] : [this.layout.byName.get(name)!.offset, this.layout.byName.get(name)!.size];
    return 'binding' in this.params ? this.params.binding(offset, size) : { buffer: this.params, offset: offset * 4, size: size * 4 };
  }

  /** The dispatches of one step over S new tokens (built once per S; positions set through update()). */
  private plan(S: number): StepPlan {
    const hit = this.plans.get(S);
    if (hit) return hit;
    const { device, config: c, scratch: s } = this;
    const C = c.hidden, F = c.intermediate, H = c.heads, Hkv = c.kvHeads, D = c.headDim, V = c.vocabSize, Tmax = this.maxLen;
    // y = x·Wᵀ (+ bias) (+ the adapter's share), W = the slab's `name`.
    const mm = (a: Binding, name: string, out: Binding, N: number, K: number, bias?: string) => [
      planMatmul(device, { a, b: this.p(name), c: out, M: S, N, K, transB: true, ...(this.baseLayout?.byName.get(name)?.half ? { bFormat: this.baseLayout.byName.get(name)!.half } : {}), ...(bias && c.attentionBias ? { bias: this.p(bias) } : {}) }),
      ...this.adapt(name, a, out, S),
    ];
    const rope = c.ropeScaling ? { invFreq: ropeInvFreq(c) } : {};
    const raw = this.qkRaw;
    const positional: KernelPlan<number>[] = [];
    const d: KernelPlan[] = [planEmbeddingForward(device, { ids: s.ids, wte: this.p('wte'), x: s.x, N: S, V, C })];
    for (let l = 0; l < c.layers; l++) {
      const pre = `layers.${l}.`;
      const ropeQ = planRopeForward(device, { x: s.q, B: 1, T: S, H, D, theta: c.ropeTheta, ...rope });
      const ropeK = planRopeForward(device, { x: s.k, B: 1, T: S, H: Hkv, D, theta: c.ropeTheta, ...rope });
      const append = planKvAppend(device, { k: s.k, v: s.v, kcache: this.kcache[l]!, vcache: this.vcache[l]!, B: 1, S, Tmax, Hkv, D });
      const attend = planAttentionDecode(device, { q: s.q, kcache: this.kcache[l]!, vcache: this.vcache[l]!, o: s.att, B: 1, S, Tmax, H, Hkv, D });
      positional.push(ropeQ, ropeK, append, attend);
      d.push(
        planRmsNormForward(device, { x: s.x, weight: this.p(`${pre}attn_norm`), y: s.ln, rstd: s.proj, N: S, C, eps: c.rmsNormEps }),
        ...mm(s.ln, `${pre}wq`, raw?.q ?? s.q, H * D, C, `${pre}bq`),
        ...mm(s.ln, `${pre}wk`, raw?.k ?? s.k, Hkv * D, C, `${pre}bk`),
        ...mm(s.ln, `${pre}wv`, s.v, Hkv * D, C, `${pre}bv`),
        ...(raw ? [
          planRmsNormForward(device, { x: raw.q, weight: this.p(`${pre}q_norm`), y: s.q, rstd: raw.rstd, N: S * H, C: D, eps: c.rmsNormEps }),
          planRmsNormForward(device, { x: raw.k, weight: this.p(`${pre}k_norm`), y: s.k, rstd: raw.rstd, N: S * Hkv, C: D, eps: c.rmsNormEps }),
        ] : []),
        ropeQ, ropeK, append, attend,
        ...mm(s.att, `${pre}wo`, s.proj, C, H * D),
        planResidualAccumulate(device, { x: s.proj, y: s.x, N: S * C }),
        planRmsNormForward(device, { x: s.x, weight: this.p(`${pre}mlp_norm`), y: s.ln, rstd: s.proj, N: S, C, eps: c.rmsNormEps }),
        ...mm(s.ln, `${pre}w_gate`, s.gate, F, C),
        ...mm(s.ln, `${pre}w_up`, s.up, F, C),
        planSwigluForward(device, { gate: s.gate, up: s.up, h: s.h, N: S, F }),
        ...mm(s.h, `${pre}w_down`, s.proj, C, F),
        planResidualAccumulate(device, { x: s.proj, y: s.x, N: S * C }),
      );
    }
    d.push(
      planRmsNormForward(device, { x: s.x, weight: this.p('final_norm'), y: s.ln, rstd: s.proj, N: S, C, eps: c.rmsNormEps }),
      ...mm(s.ln, c.tieEmbeddings ? 'wte' : 'lm_head', s.logits, V, C),
    );
    const plan = { S, dispatches: dispatchesOf(...d), positional };
    this.plans.set(S, plan);
    return plan;
  }

  /** Runs S new tokens at positions pos.. and returns the logits of the last one (V). */
  private async step(ids: Uint32Array, pos: number): Promise<Float32Array> {
    const S = ids.length;
    const plan = this.plan(S);
    for (const p of plan.positional) p.update(pos);
    writeArray(this.device, this.scratch.ids, ids);
    const enc = this.device.createCommandEncoder({ label: 'generate step' });
    const pass = enc.beginComputePass();
    encodeDispatches(pass, plan.dispatches);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    const logits = await readF32(this.device, this.scratch.logits, this.config.vocabSize, (S - 1) * this.config.vocabSize);
    return logits.fill(-Infinity, realVocab(this.config)); // vocabulary padding is never sampled
  }

  /** Generates after `prompt` (token ids); returns the new ids (stop token excluded). */
  async generate(prompt: ArrayLike<number>, o: GenerateOptions): Promise<number[]> {
    const V = realVocab(this.config);
    if (prompt.length === 0) throw new Error('generate: the prompt is empty (start with at least one token, e.g. BOS/EOS)');
    for (let i = 0; i < prompt.length; i++) {
      const t = prompt[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: prompt token ${i} is ${t}, outside [0, ${V})`);
    }
    if (prompt.length + o.maxNewTokens > this.maxLen) {
      throw new Error(`generate: prompt (${prompt.length}) + maxNewTokens (${o.maxNewTokens}) exceeds the cache length ${this.maxLen}`);
    }
    const rng = new Rng(o.seed ?? 0);
    const sampling = { rng, temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1 };
    const out: number[] = [];
    let logits = await this.step(Uint32Array.from(prompt), 0);
    let pos = prompt.length;
    while (out.length < o.maxNewTokens) {
      const next = sampleToken(logits, sampling);
      if (o.stopTokens?.includes(next)) break;
      out.push(next);
      if (o.onToken?.(next) === false) break;
      if (out.length === o.maxNewTokens) break;
      logits = await this.step(Uint32Array.of(next), pos);
      pos++;
    }
    return out;
  }

  destroy(): void {
    for (const b of [...this.kcache, ...this.vcache, ...Object.values(this.scratch), ...Object.values(this.qkRaw ?? {})]) b.destroy();
    this.loraU?.destroy();
  }
}
