// LoRA: low-rank adapters on the student's linear layers (issue #21). For a target weight W (out, in) the adapted
// layer computes y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with A (r, in), B (out, r) and s = α / r — PEFT's LoRA, whose tensor shapes
// (lora_A.weight (r, in), lora_B.weight (out, r)) these are. The base W stays frozen; only A and B train.
// The adapters live in their own slab, laid out like the model's (every tensor at a 64-float offset), so the
// optimizer, checkpoints and exports walk one table. Initialisation as PEFT's default: A ~ U(−1/√in, 1/√in)
// (kaiming_uniform with a = √5), B = 0, so an untrained adapter leaves the model unchanged.
// mergeLora is the CPU reference of W' = W + s·B·A (float64 sums), what every merged export writes.
import { BASE_FORMATS, type BaseFormat } from './base-layout.ts';
import type { ModelConfig } from './config.ts';
import { paramLayout, SLAB_ALIGN_FLOATS, type ParamEntry } from './params.ts';
import { Rng } from '../util/rng.ts';

/** Our names of the linear weights LoRA can adapt, and PEFT's module names for them. */
export const LORA_TARGETS = { wq: 'q_proj', wk: 'k_proj', wv: 'v_proj', wo: 'o_proj', w_gate: 'gate_proj', w_up: 'up_proj', w_down: 'down_proj' } as const;
export type LoraTarget = keyof typeof LORA_TARGETS;

export interface LoraConfig {
  /** Rank r of A (r, in) and B (out, r). */
  rank: number;
  /** α: the update is scaled by α / r. */
  alpha: number;
  /** Which linear weights of every layer get an adapter. */
  targets: LoraTarget[];
  /** Dropout on the adapter's input during training (0 = none). */
  dropout: number;
  /** How the frozen base's linear weights are held on the GPU: f32, or 16 bits (bf16 / f16: half the bytes). */
  base: BaseFormat;
}

export const DEFAULT_LORA: Readonly<LoraConfig> = Object.freeze({ rank: 16, alpha: 32, targets: Object.keys(LORA_TARGETS) as LoraTarget[], dropout: 0, base: 'f32' as BaseFormat });

/** A validated LoRA config (unknown keys, a rank that is not a positive integer, unknown targets: errors that say so). */
export function makeLoraConfig(partial: Partial<LoraConfig> = {}, where = 'lora'): LoraConfig {
  for (const k of Object.keys(partial)) if (!(k in DEFAULT_LORA)) throw new Error(`${where}: unknown key '${k}' (have: ${Object.keys(DEFAULT_LORA).join(', ')})`);
  const c: LoraConfig = { ...DEFAULT_LORA, ...partial, targets: [...(partial.targets ?? DEFAULT_LORA.targets)] };
  if (!Number.isInteger(c.rank) || c.rank < 1) throw new Error(`${where}: rank must be a positive integer, got ${c.rank}`);
  if (!Number.isFinite(c.alpha) || c.alpha <= 0) throw new Error(`${where}: alpha must be a positive number, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new Error(`${where}: dropout must be in [0, 1), got ${c.dropout}`);
  if (!BASE_FORMATS.includes(c.base)) throw new Error(`${where}: base must be one of ${BASE_FORMATS.join(', ')}, got ${JSON.stringify(c.base)}`);
  if (c.targets.length === 0) throw new Error(`${where}: no target modules (have: ${Object.keys(LORA_TARGETS).join(', ')})`);
  for (const t of c.targets) if (!(t in LORA_TARGETS)) throw new Error(`${where}: unknown target '${t}' (have: ${Object.keys(LORA_TARGETS).join(', ')})`);
  if (new Set(c.targets).size !== c.targets.length) throw new Error(`${where}: a target is listed twice: ${c.targets.join(', ')}`);
  return c;
}

/** α / r. */
export const loraScale = (l: Pick<LoraConfig, 'rank' | 'alpha'>): number => l.alpha / l.rank;

export interface LoraEntry {
  /** 'layers.3.wq.lora_a' / '…lora_b'. */
  name: string;
  /** The adapted weight, e.g. 'layers.3.wq'. */
  base: string;
  part: 'a' | 'b';
  /** (r, in) for A, (out, r) for B. */
  shape: [number, number];
  offset: number;
  size: number;
}

export interface LoraLayout {
  entries: LoraEntry[];
  byName: Map<string, LoraEntry>;
  slabFloats: number;
  /** Trainable parameters. */
  count: number;
}

/** The adapters of `l` on `c`, layer by layer, target by target in the model's table order, A before B. */
export function loraLayout(c: ModelConfig, l: LoraConfig): LoraLayout {
  const base = paramLayout(c);
  const entries: LoraEntry[] = [];
  let offset = 0, count = 0;
  const targets = new Set<string>(l.targets);
  for (const e of base.entries) {
    const m = /^layers\.\d+\.(\w+)$/.exec(e.name);
    if (!m || !targets.has(m[1]!)) continue;
    const [out, inp] = e.shape as [number, number];
    for (const [part, shape] of [['a', [l.rank, inp]], ['b', [out, l.rank]]] as const) {
      const size = shape[0] * shape[1];
      entries.push({ name: `${e.name}.lora_${part}`, base: e.name, part, shape: [shape[0], shape[1]], offset, size });
      offset += Math.ceil(size / SLAB_ALIGN_FLOATS) * SLAB_ALIGN_FLOATS;
      count += size;
    }
  }
  return { entries, byName: new Map(entries.map((e) => [e.name, e])), slabFloats: offset, count };
}

/** PEFT's default start: A uniform in ±1/√in, B zero. */
export function initLora(c: ModelConfig, l: LoraConfig, seed: number): Float32Array {
  const layout = loraLayout(c, l);
  const slab = new Float32Array(layout.slabFloats);
  const rng = new Rng(seed);
  for (const e of layout.entries) {
    if (e.part !== 'a') continue;
    const bound = 1 / Math.sqrt(e.shape[1]);
    for (let i = 0; i < e.size; i++) slab[e.offset + i] = (2 * rng.next() - 1) * bound;
  }
  return slab;
}

/** The (A, B) views of one adapted weight's adapter. */
export function loraPair(layout: LoraLayout, slab: Float32Array, base: string): { a: Float32Array; b: Float32Array; A: LoraEntry; B: LoraEntry } | undefined {
  const A = layout.byName.get(`${base}.lora_a`), B = layout.byName.get(`${base}.lora_b`);
  if (!A || !B) return undefined;
  return { a: slab.subarray(A.offset, A.offset + A.size), b: slab.subarray(B.offset, B.offset + B.size), A, B };
}

/** W + s·B·A for one weight (out, in), float64 sums: the CPU reference of a merge. */
export function mergedWeight(w: Float32Array, a: Float32Array, b: Float32Array, out: number, inp: number, r: number, s: number): Float32Array {
  const m = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += b[o * r + k]! * a[k * inp + i]!;
      m[o * inp + i] = w[o * inp + i]! + s * acc;
    }
  }
  return m;
}

/** The base slab with every adapter merged in (a new slab; the base is not touched). */
export function mergeLora(c: ModelConfig, base: Float32Array, l: LoraConfig, lora: Float32Array): Float32Array {
  const pl = paramLayout(c), ll = loraLayout(c, l);
  if (base.length !== pl.slabFloats) throw new Error(`mergeLora: the base slab has ${base.length} floats, the config needs ${pl.slabFloats}`);
  if (lora.length !== ll.slabFloats) throw new Error(`mergeLora: the adapter slab has ${lora.length} floats, the LoRA config needs ${ll.slabFloats}`);
  const merged = base.slice();
  const s = loraScale(l);
  for (const e of pl.entries) {
    const p = loraPair(ll, lora, e.name);
    if (!p) continue;
    const [out, inp] = e.shape as [number, number];
    merged.set(mergedWeight(base.subarray(e.offset, e.offset + e.size), p.a, p.b, out, inp, l.rank, s), e.offset);
  }
  return merged;
}

/** The base parameters an adapter layout adapts (for messages and exports). */
export function adaptedWeights(c: ModelConfig, l: LoraConfig): ParamEntry[] {
  const names = new Set(loraLayout(c, l).entries.map((e) => e.base));
  return paramLayout(c).entries.filter((e) => names.has(e.name));
}

/**
 * ∂loss/∂(A, B) in the adapter layout from ∂loss/∂W' of the merged weights (refLossAndGrad on mergeLora's slab):
 * W' = W + s·B·A gives dA = s·Bᵀ·dW' (r, in) and dB = s·dW'·Aᵀ (out, r). The CPU reference of LoRA's backward.
 */
export function loraGradFromMerged(c: ModelConfig, l: LoraConfig, lora: ArrayLike<number>, mergedGrad: ArrayLike<number>): Float64Array {
  const pl = paramLayout(c), ll = loraLayout(c, l);
  const out = new Float64Array(ll.slabFloats);
  const s = loraScale(l), r = l.rank;
  for (const e of pl.entries) {
    const A = ll.byName.get(`${e.name}.lora_a`), B = ll.byName.get(`${e.name}.lora_b`);
    if (!A || !B) continue;
    const [rows, cols] = e.shape as [number, number];
    for (let k = 0; k < r; k++) {
      for (let i = 0; i < cols; i++) {
        let acc = 0;
        for (let o = 0; o < rows; o++) acc += lora[B.offset + o * r + k]! * mergedGrad[e.offset + o * cols + i]!;
        out[A.offset + k * cols + i] = s * acc;
      }
    }
    for (let o = 0; o < rows; o++) {
      for (let k = 0; k < r; k++) {
        let acc = 0;
        for (let i = 0; i < cols; i++) acc += mergedGrad[e.offset + o * cols + i]! * lora[A.offset + k * cols + i]!;
        out[B.offset + o * r + k] = s * acc;
      }
    }
  }
  return out;
}
