// LoRA adapters out (src/model/lora.ts, src/export/lora.ts) against the runtimes that load them:
//   - PEFT (.venv-torch), for a small random model of each family (Llama; Qwen2 with q/k/v biases; Qwen3 with
//     per-head q/k norms), adapters on q/k/v (beside the biases and norms) and the MLP: PeftModel.from_pretrained
//     loads our adapter folder onto our HF export of the base and gives the logits of our CPU reference model on the
//     merged weights (W + α/r·B·A) within 1e-4; PEFT's own merge_and_unload gives our merged weights; one CE step's
//     loss and every lora_A/lora_B gradient by torch autograd equal our reference (loraGradFromMerged of
//     refLossAndGrad on the merged weights);
//   - llama.cpp (node-llama-cpp), Llama only: our base GGUF + our LoRA GGUF give those logits within 1e-3, visibly
//     different from the base's own (the adapter is applied, Q/K rows of B permuted like the base's);
//   - configs that make no sense are refused with what to change.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { exportGguf } from '../../src/export/gguf.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { exportLoraGguf, exportPeftAdapter, peftName } from '../../src/export/lora.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { initLora, loraGradFromMerged, loraLayout, makeLoraConfig, mergeLora, type LoraConfig } from '../../src/model/lora.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward, refLossAndGrad } from '../../src/model/ref-model.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { closeLlamaCpp, loadLlamaCppModel } from '../support/llama-cpp.ts';
import { tinyTeacher } from '../support/tiny-teacher.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

const PY = `
import json, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
req = json.load(sys.stdin)
base = AutoModelForCausalLM.from_pretrained(req['base'], dtype=torch.float32).eval()
m = PeftModel.from_pretrained(base, req['adapter']).eval()
out = {'class': type(m).__name__, 'r': m.peft_config['default'].r, 'alpha': m.peft_config['default'].lora_alpha,
       'targets': sorted(m.peft_config['default'].target_modules)}
with torch.no_grad():
    x = torch.tensor([req['ids']], dtype=torch.long)
    out['logits'] = m(input_ids=x).logits.reshape(-1).tolist()
    merged = m.merge_and_unload()
    sd = merged.state_dict()
    out['merged'] = {k: sd[k].reshape(-1).tolist() for k in req['weights']}
# One CE step through PEFT with torch autograd: the gradients of every lora_A / lora_B (base frozen).
base = AutoModelForCausalLM.from_pretrained(req['base'], dtype=torch.float32).eval()
m = PeftModel.from_pretrained(base, req['adapter'], is_trainable=True).eval()
x = torch.tensor([req['ids']], dtype=torch.long)
logits = m(input_ids=x).logits[0, :-1]
loss = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction='mean')
loss.backward()
out['loss'] = loss.item()
out['grads'] = {n: p.grad.reshape(-1).tolist() for n, p in m.named_parameters() if 'lora_' in n}
out['frozen'] = sum(1 for n, p in m.named_parameters() if 'lora_' not in n and p.requires_grad)
print(json.dumps(out))
`;

/** One base model with an adapter on it: the reference's merged weights and logits, and the folders PEFT loads. */
interface Case {
  family: string;
  config: ModelConfig;
  params: Float32Array;
  lora: LoraConfig;
  /** PEFT's target_modules, sorted. */
  targets: string[];
  /** Weights whose merge_and_unload is compared. */
  weights: string[];
}

const t = tinyTeacher();
const text = 'The teacher reads the book and the student writes the answer.';
/** Qwen-family base: V = 301 > the tokenizer's 300, weights N(0, 0.3), norm gains 1 ± 0.3 and biases N(0, 0.3) so
 * every q/k/v bias and q/k norm moves the logits. */
function qwenBase(over: Record<string, unknown>, seed: number): { config: ModelConfig; params: Float32Array } {
  const config = makeConfig({ vocabSize: t.tokenizer.vocabSize + 1, layers: 2, maxSeqLen: 64, initStd: 0.3, ropeTheta: 1000, ...over });
  const params = initParams(config, seed);
  const rng = new Rng(seed + 1);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) params[e.offset + i] = 1 + 0.6 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.3 * rng.normal();
  }
  return { config, params };
}
const CASES: Case[] = [
  {
    family: 'llama', ...t, lora: makeLoraConfig({ rank: 3, alpha: 7, targets: ['wq', 'wk', 'wv', 'wo', 'w_gate', 'w_up', 'w_down'] }),
    targets: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'], weights: ['layers.0.wq', 'layers.1.wk', 'layers.0.w_down', 'layers.1.wo'],
  },
  {
    // Qwen2 ties its small models' embeddings (0.5B, 1.5B); q/k/v carry biases beside the adapted weights.
    family: 'qwen2 (q/k/v biases, tied)', ...qwenBase({ hidden: 30, heads: 3, kvHeads: 1, headDim: 10, intermediate: 33, attentionBias: true, tieEmbeddings: true }, 21),
    lora: makeLoraConfig({ rank: 5, alpha: 3, targets: ['wq', 'wk', 'wv', 'w_up'] }),
    targets: ['k_proj', 'q_proj', 'up_proj', 'v_proj'], weights: ['layers.0.wq', 'layers.1.wk', 'layers.0.wv', 'layers.1.w_up'],
  },
  {
    // Qwen3 with untied embeddings (8B and up); per-head q/k RMSNorm after the adapted q/k, H·D = 24 ≠ C = 18.
    family: 'qwen3 (q/k norms, H·D ≠ C, untied)', ...qwenBase({ hidden: 18, heads: 4, kvHeads: 2, headDim: 6, intermediate: 29, qkNorm: true, tieEmbeddings: false, rmsNormEps: 1e-3 }, 31),
    lora: makeLoraConfig({ rank: 2, alpha: 5, targets: ['wq', 'wk', 'wv', 'wo', 'w_gate', 'w_down'] }),
    targets: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'v_proj'], weights: ['layers.0.wq', 'layers.1.wk', 'layers.1.wo', 'layers.0.w_gate', 'layers.1.w_down'],
  },
];

/** A trained adapter has B ≠ 0: B filled so the update shows in every adapted weight; the merged slab and its logits. */
function adapted(c: Case) {
  const adapter = initLora(c.config, c.lora, 5);
  const rng = new Rng(9);
  for (const e of loraLayout(c.config, c.lora).entries) if (e.part === 'b') for (let i = 0; i < e.size; i++) adapter[e.offset + i] = 0.4 * rng.normal();
  const merged = mergeLora(c.config, c.params, c.lora, adapter);
  const ids = Uint32Array.from(t.tokenizer.encode(text));
  const T = ids.length;
  return { adapter, merged, ids, T, ours: refForward(c.config, merged, ids, 1, T).logits, baseLogits: refForward(c.config, c.params, ids, 1, T).logits };
}

const root = mkdtempSync(join(tmpdir(), 'lora-'));
afterAll(() => { closeLlamaCpp(); rmSync(root, { recursive: true, force: true }); });

describe.each(CASES.map((c, i) => [c.family, i] as const))('LoRA export, %s', (_family, i) => {
  const c = CASES[i]!;
  const { adapter, merged, ids, T, ours, baseLogits } = adapted(c);
  const dir = join(root, String(i));
  beforeAll(() => {
    writeFiles(join(dir, 'base'), exportHfFolder({ config: c.config, params: c.params, tokenizer: t.tokenizer }));
    writeFiles(join(dir, 'adapter'), exportPeftAdapter({ config: c.config, lora: c.lora, params: adapter, baseModel: 'tiny-base' }));
  });

  it('the merge really changes every adapted weight (else the checks below prove nothing)', () => {
    const pl = paramLayout(c.config);
    for (const e of loraLayout(c.config, c.lora).entries.filter((x) => x.part === 'a')) {
      const p = pl.byName.get(e.base)!;
      const d = merged.subarray(p.offset, p.offset + p.size).reduce((m, v, j) => Math.max(m, Math.abs(v - c.params[p.offset + j]!)), 0);
      expect(d, e.base).toBeGreaterThan(0.05);
    }
    expect(Math.max(...ours.map((v, j) => Math.abs(v - baseLogits[j]!)))).toBeGreaterThan(0.5);
  });

  it('PEFT loads the adapter onto the HF base: our logits, its merge_and_unload our merged weights, torch autograd our LoRA gradients', () => {
    const hf = (n: string) => peftName(n, 'a').replace(/^base_model\.model\./, '').replace(/\.lora_A\.weight$/, '.weight');
    const r = runPythonJson<{ class: string; r: number; alpha: number; targets: string[]; logits: number[]; merged: Record<string, number[]>; loss: number; grads: Record<string, number[]>; frozen: number }>(
      torchPython(), PY, { base: join(dir, 'base'), adapter: join(dir, 'adapter'), ids: [...ids], weights: c.weights.map(hf) });
    expect([r.class, r.r, r.alpha]).toEqual(['PeftModelForCausalLM', c.lora.rank, c.lora.alpha]);
    expect(r.targets).toEqual(c.targets);
    const cmp = compareArrays(Float64Array.from(r.logits), ours, { atol: 1e-4, rtol: 1e-4 });
    expect(cmp.ok, describeComparison(cmp)).toBe(true);
    const pl = paramLayout(c.config);
    for (const n of c.weights) {
      const e = pl.byName.get(n)!;
      const d = compareArrays(Float64Array.from(r.merged[hf(n)]!), merged.subarray(e.offset, e.offset + e.size), { atol: 1e-6, rtol: 1e-6 });
      expect(d.ok, `${n}: ${describeComparison(d)}`).toBe(true);
    }
    // The training step: mean CE over the T − 1 next tokens of the sequence.
    const labels = new Uint32Array(T).fill(NO_LABEL), rowWeights = new Float32Array(T);
    for (let j = 0; j + 1 < T; j++) { labels[j] = ids[j + 1]!; rowWeights[j] = 1; }
    const ref = refLossAndGrad(c.config, merged, { ids, B: 1, T, labels, weights: rowWeights, objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, lossScale: 1 / (T - 1) });
    expect(ref.loss).toBeCloseTo(r.loss, 5);
    const grad = loraGradFromMerged(c.config, c.lora, adapter, ref.grad);
    expect(r.frozen).toBe(0);
    const entries = loraLayout(c.config, c.lora).entries;
    expect(Object.keys(r.grads)).toHaveLength(entries.length);
    for (const e of entries) {
      const name = peftName(e.base, e.part).replace(/\.weight$/, '.default.weight');
      const theirs = r.grads[name];
      expect(theirs, name).toBeDefined();
      const d = compareArrays(Float64Array.from(theirs!), grad.subarray(e.offset, e.offset + e.size), { atol: 1e-5, rtol: 1e-4 });
      expect(d.ok, `${e.name}: ${describeComparison(d)}`).toBe(true);
    }
  }, 180_000);
});

describe('LoRA export, llama.cpp and refusals (llama)', () => {
  const { lora } = CASES[0]!;
  const { adapter, ids, T, ours } = adapted(CASES[0]!);
  const V = t.config.vocabSize;
  const dir = join(root, 'gguf');
  beforeAll(() => {
    const x = { config: t.config, lora, params: adapter, baseModel: 'tiny-teacher' };
    mkdirSync(dir, { recursive: true });
    for (const f of [...exportGguf({ config: t.config, params: t.params, tokenizer: t.tokenizer }), ...exportLoraGguf(x)]) writeFileSync(join(dir, f.path), f.bytes);
  });

  it('llama.cpp applies our LoRA GGUF to our base GGUF: the merged model\'s logits within 1e-3', async () => {
    const m = await loadLlamaCppModel(join(dir, 'model.gguf'), V, 64, join(dir, 'adapter.gguf'));
    try {
      const pos = await m.evaluate([...ids]);
      let worst = 0;
      for (let i = 0; i < T; i++) {
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(pos[i]!.logits[v]! - ours[i * V + v]!) / (1 + Math.abs(ours[i * V + v]!)));
      }
      expect(worst).toBeLessThan(1e-3);
    } finally {
      await m.dispose();
    }
  }, 120_000);

  it('refuses configs that make no sense, saying what is allowed', () => {
    expect(() => makeLoraConfig({ rank: 0 })).toThrow(/rank must be a positive integer, got 0/);
    expect(() => makeLoraConfig({ alpha: -1 })).toThrow(/alpha must be a positive number/);
    expect(() => makeLoraConfig({ targets: ['wq', 'lm_head' as never] })).toThrow(/unknown target 'lm_head' \(have: wq, wk, wv, wo, w_gate, w_up, w_down\)/);
    expect(() => makeLoraConfig({ targets: [] })).toThrow(/no target modules/);
    expect(makeLoraConfig({ dropout: 0.1 }).dropout).toBe(0.1);
    expect(makeLoraConfig({ dropout: 0.95 }).dropout).toBe(0.95);
    expect(() => makeLoraConfig({ dropout: 1 })).toThrow(/dropout must be in \[0, 1\), got 1/);
    expect(() => makeLoraConfig({ dropout: -0.1 })).toThrow(/dropout must be in \[0, 1\), got -0.1/);
    expect(() => makeLoraConfig({ dropout: Number.NaN })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => makeLoraConfig({ rnak: 4 } as never)).toThrow(/unknown key 'rnak'/);
    expect(() => exportPeftAdapter({ config: t.config, lora, params: adapter.subarray(1), baseModel: 'x' })).toThrow(/adapter slab has/);
    const bad = adapter.slice();
    bad[loraLayout(t.config, lora).entries[1]!.offset + 2] = NaN;
    expect(() => exportLoraGguf({ config: t.config, lora, params: bad, baseModel: 'x' })).toThrow(/layers\.0\.wq\.lora_b has a non-finite value \(NaN\) at index 2/);
  });
});
