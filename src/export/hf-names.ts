// The one mapping table between our parameter names (src/model/params.ts) and Hugging Face's LlamaForCausalLM
// names (and Qwen2's q/k/v biases, Qwen3's q/k norms, under the same module names), with shapes asserted both ways. Every exporter (safetensors, ONNX, GGUF) and the importer walk this table.
// Layouts: our linear weights are stored (out, in), exactly HF's nn.Linear layout, so tensors copy unchanged; HF
// RoPE rotates pairs (j, j + D/2) like ours, so q/k need no permutation here (GGUF's does: see gguf.ts).
import type { ModelConfig } from '../model/config.ts';
import { paramLayout, type ParamEntry } from '../model/params.ts';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const LAYER_MAP: Record<string, string> = {
  attn_norm: 'input_layernorm.weight',
  wq: 'self_attn.q_proj.weight',
  wk: 'self_attn.k_proj.weight',
  wv: 'self_attn.v_proj.weight',
  bq: 'self_attn.q_proj.bias', // Qwen2
  bk: 'self_attn.k_proj.bias',
  bv: 'self_attn.v_proj.bias',
  q_norm: 'self_attn.q_norm.weight', // Qwen3
  k_norm: 'self_attn.k_norm.weight',
  wo: 'self_attn.o_proj.weight',
  mlp_norm: 'post_attention_layernorm.weight',
  w_gate: 'mlp.gate_proj.weight',
  w_up: 'mlp.up_proj.weight',
  w_down: 'mlp.down_proj.weight',
};
const TOP_MAP: Record<string, string> = {
  wte: 'model.embed_tokens.weight',
  final_norm: 'model.norm.weight',
  lm_head: 'lm_head.weight',
};

/** HF name of one of our parameters ('layers.3.wq' → 'model.layers.3.self_attn.q_proj.weight'). */
export function hfName(ours: string): string {
  const top = TOP_MAP[ours];
  if (top) return top;
  const m = /^layers\.(\d+)\.(\w+)$/.exec(ours);
  const inner = m ? LAYER_MAP[m[2]!] : undefined;
  if (!m || !inner) throw new Error(`hfName: no HF name for parameter '${ours}'`);
  return `model.layers.${m[1]}.${inner}`;
}

/** Our name of an HF LlamaForCausalLM tensor name, or undefined when it is not one of ours. */
export function ourName(hf: string): string | undefined {
  for (const [k, v] of Object.entries(TOP_MAP)) if (v === hf) return k;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (!m) return undefined;
  for (const [k, v] of Object.entries(LAYER_MAP)) if (v === m[2]) return `layers.${m[1]}.${k}`;
  return undefined;
}

/** The HF shape of a parameter: ours, asserted against the config (row-major, [out, in] for linears). */
function checkedShape(e: ParamEntry, c: ModelConfig): number[] {
  const { vocabSize: V, hidden: C, heads: H, kvHeads: K, headDim: D, intermediate: F } = c;
  const leaf = e.name.replace(/^layers\.\d+\./, '');
  const expect: Record<string, number[]> = {
    wte: [V, C], lm_head: [V, C], final_norm: [C], attn_norm: [C], mlp_norm: [C],
    wq: [H * D, C], wk: [K * D, C], wv: [K * D, C], wo: [C, H * D], bq: [H * D], bk: [K * D], bv: [K * D], q_norm: [D], k_norm: [D], w_gate: [F, C], w_up: [F, C], w_down: [C, F],
  };
  const want = expect[leaf];
  if (!want || want.join() !== e.shape.join()) {
    throw new Error(`export: parameter '${e.name}' has shape [${e.shape}], the mapping expects [${want ?? '?'}]`);
  }
  return e.shape;
}

/** The model's tensors under HF names, in slab order (views into `slab`, no copies). */
export function toHfTensors(c: ModelConfig, slab: Float32Array): NamedTensor[] {
  const layout = paramLayout(c);
  if (slab.length < layout.slabFloats) throw new Error(`export: parameter slab has ${slab.length} floats, the config needs ${layout.slabFloats}`);
  return layout.entries.map((e) => ({ name: hfName(e.name), shape: checkedShape(e, c), data: slab.subarray(e.offset, e.offset + e.size) }));
}

/**
 * Builds our slab from HF-named tensors: every parameter of the config must be present with its exact shape;
 * tensors we do not use are listed in `ignored` (e.g. rotary inv_freq buffers); a tied model accepts and drops an
 * `lm_head.weight` equal to the embedding, and rejects one that differs.
 */
export function fromHfTensors(c: ModelConfig, tensors: Map<string, { shape: number[]; data: Float32Array }>, where = 'import'): { slab: Float32Array; ignored: string[] } {
  const layout = paramLayout(c);
  const slab = new Float32Array(layout.slabFloats);
  const used = new Set<string>();
  for (const e of layout.entries) {
    const name = hfName(e.name);
    const t = tensors.get(name);
    if (!t) throw new Error(`${where}: tensor '${name}' is missing (needed for ${e.name} [${e.shape}])`);
    if (t.shape.join() !== checkedShape(e, c).join()) throw new Error(`${where}: tensor '${name}' has shape [${t.shape}], the config needs [${e.shape}]`);
    if (t.data.length !== e.size) throw new Error(`${where}: tensor '${name}' has ${t.data.length} values, shape [${t.shape}] needs ${e.size}`);
    slab.set(t.data, e.offset);
    used.add(name);
  }
  const ignored: string[] = [];
  for (const [name, t] of tensors) {
    if (used.has(name)) continue;
    if (name === 'lm_head.weight' && c.tieEmbeddings) {
      const emb = tensors.get('model.embed_tokens.weight')!;
      if (t.data.length !== emb.data.length || t.data.some((x, i) => x !== emb.data[i])) {
        throw new Error(`${where}: the config ties embeddings but 'lm_head.weight' differs from 'model.embed_tokens.weight'`);
      }
      continue;
    }
    if (ourName(name) !== undefined) throw new Error(`${where}: tensor '${name}' does not belong to a ${c.layers}-layer model`);
    ignored.push(name);
  }
  return { slab, ignored };
}
