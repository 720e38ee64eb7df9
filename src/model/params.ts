// The student's parameters declared as a table {name, shape(config)}, laid out in one f32 slab with every tensor
// at a 256-byte-aligned offset (64 floats): the optimizer is one pass over the slab, gradients use the same
// layout, and export walks the same table. Names follow our own convention; the export mapping to HF/GGUF names
// lives with each exporter. Linear weights are stored (out, in) as in HF, so y = x·Wᵀ.
import type { ModelConfig } from './config.ts';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Decoupled weight decay applies (matrices and embeddings), or not (norm gains). */
  decay: boolean;
  /** How it is initialised. */
  init: 'normal' | 'ones' | 'zeros';
}

export interface ParamEntry extends ParamSpec {
  /** Offset in floats from the start of the slab (a multiple of 64). */
  offset: number;
  /** Number of floats. */
  size: number;
}

export interface ParamLayout {
  entries: ParamEntry[];
  byName: Map<string, ParamEntry>;
  /** Total floats in the slab, padding included. */
  slabFloats: number;
  /** Real parameters (no padding). */
  count: number;
}

export const SLAB_ALIGN_FLOATS = 64;

/** The parameter table of a config, in slab order. */
export function paramTable(c: ModelConfig): ParamSpec[] {
  const { vocabSize: V, hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: F } = c;
  const t: ParamSpec[] = [{ name: 'wte', shape: [V, C], decay: true, init: 'normal' }];
  for (let l = 0; l < c.layers; l++) {
    const p = `layers.${l}.`;
    t.push(
      { name: `${p}attn_norm`, shape: [C], decay: false, init: 'ones' },
      { name: `${p}wq`, shape: [H * D, C], decay: true, init: 'normal' },
      { name: `${p}wk`, shape: [Hkv * D, C], decay: true, init: 'normal' },
      { name: `${p}wv`, shape: [Hkv * D, C], decay: true, init: 'normal' },
    );
    // Family switches (config.ts): q/k/v biases (Qwen2) and per-head q/k RMSNorm gains (Qwen3), no decay.
    if (c.attentionBias) {
      t.push(
        { name: `${p}bq`, shape: [H * D], decay: false, init: 'zeros' },
        { name: `${p}bk`, shape: [Hkv * D], decay: false, init: 'zeros' },
        { name: `${p}bv`, shape: [Hkv * D], decay: false, init: 'zeros' },
      );
    }
    if (c.qkNorm) {
      t.push(
        { name: `${p}q_norm`, shape: [D], decay: false, init: 'ones' },
        { name: `${p}k_norm`, shape: [D], decay: false, init: 'ones' },
      );
    }
    t.push(
      { name: `${p}wo`, shape: [C, H * D], decay: true, init: 'normal' },
      { name: `${p}mlp_norm`, shape: [C], decay: false, init: 'ones' },
      { name: `${p}w_gate`, shape: [F, C], decay: true, init: 'normal' },
      { name: `${p}w_up`, shape: [F, C], decay: true, init: 'normal' },
      { name: `${p}w_down`, shape: [C, F], decay: true, init: 'normal' },
    );
  }
  t.push({ name: 'final_norm', shape: [C], decay: false, init: 'ones' });
  if (!c.tieEmbeddings) t.push({ name: 'lm_head', shape: [V, C], decay: true, init: 'normal' });
  return t;
}

export function paramLayout(c: ModelConfig): ParamLayout {
  const entries: ParamEntry[] = [];
  let offset = 0;
  let count = 0;
  for (const spec of paramTable(c)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    entries.push({ ...spec, offset, size });
    offset += Math.ceil(size / SLAB_ALIGN_FLOATS) * SLAB_ALIGN_FLOATS;
    count += size;
  }
  return { entries, byName: new Map(entries.map((e) => [e.name, e])), slabFloats: offset, count };
}

export const countParams = (c: ModelConfig): number => paramLayout(c).count;

/** Floats of the largest tensor: the largest buffer the parameter slabs need (they are split between tensors). */
export const largestTensor = (c: ModelConfig): number => paramLayout(c).entries.reduce((m, e) => Math.max(m, e.size), 0);

/**
 * The same model without its vocabulary padding (config.vocabPadding rows of wte / lm_head dropped): what every
 * export writes, so that no runtime can produce a padding id. Returns the input itself when there is no padding.
 */
export function unpadVocab(c: ModelConfig, slab: Float32Array): { config: ModelConfig; params: Float32Array } {
  const pad = c.vocabPadding ?? 0;
  if (pad === 0) return { config: c, params: slab };
  const from = paramLayout(c);
  if (slab.length !== from.slabFloats) throw new Error(`unpadVocab: ${slab.length} parameter floats, the config's layout has ${from.slabFloats}`);
  const { vocabPadding: _, ...rest } = c;
  const config: ModelConfig = { ...rest, vocabSize: c.vocabSize - pad };
  const to = paramLayout(config);
  const params = new Float32Array(to.slabFloats);
  for (const e of to.entries) params.set(slab.subarray(from.byName.get(e.name)!.offset, from.byName.get(e.name)!.offset + e.size), e.offset);
  return { config, params };
}
