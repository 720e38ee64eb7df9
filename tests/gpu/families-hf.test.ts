// The pretrained families of issue #20 against HF transformers itself: random-weight Qwen2ForCausalLM,
// Qwen3ForCausalLM and LlamaForCausalLM with llama3 RoPE scaling, written by `save_pretrained` (float32, 2 layers,
// small odd widths, norms and biases away from their init), imported with our importer. Then:
//   - the CPU reference's and the GPU model's logits equal HF's within 1e-4 (abs + rel);
//   - one training step: the CE loss and EVERY parameter gradient equal torch autograd's;
//   - after an AdamW step, our HF-folder export loads back in transformers with the family's architecture and
//     fields, and its logits equal the GPU model's.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFolder, writeFiles } from '../../src/cli/export.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { hfName } from '../../src/export/hf-names.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const tok = trainBpe(['a small text for a small tokenizer, with some words repeated: small words, small text.'], { vocabSize: 270, specialTokens: ['<|endoftext|>'] });
const V = 283; // > the tokenizer's 270, not a multiple of anything
const B = 2, T = 9, N = B * T;
const LOGITS_TOL = { atol: 1e-4, rtol: 1e-4 };

/** HF configs (Python kwargs) of each family: GPU head dims (8/16), Qwen3 with H·D = 64 ≠ C = 24, tied and untied. */
const FAMILIES = {
  qwen2: { cls: 'Qwen2', kw: { vocab_size: V, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, max_position_embeddings: 32, rope_theta: 1000, rms_norm_eps: 1e-6, tie_word_embeddings: true, initializer_range: 0.2 } },
  qwen3: { cls: 'Qwen3', kw: { vocab_size: V, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, max_position_embeddings: 32, rope_theta: 1000, rms_norm_eps: 1e-6, tie_word_embeddings: false, initializer_range: 0.2 } },
  llama3: { cls: 'Llama', kw: { vocab_size: V, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: true, initializer_range: 0.2, rope_scaling: { rope_type: 'llama3', rope_theta: 5000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } } },
} as const;
type Family = keyof typeof FAMILIES;

// Makes each family's random model, saves it, and returns its logits, CE loss and every gradient on the batch.
const MAKE = `
import json, sys, torch, transformers
import torch.nn.functional as F
torch.use_deterministic_algorithms(True)
req = json.load(sys.stdin)
out = {}
for name, spec in req['families'].items():
    torch.manual_seed(7)
    kw = dict(spec['kw'])
    rs = kw.pop('rope_scaling', None)
    if rs is not None:
        kw['rope_parameters'] = rs
    cfg = getattr(transformers, spec['cls'] + 'Config')(**kw)
    m = getattr(transformers, spec['cls'] + 'ForCausalLM')(cfg).float()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith('norm.weight'):
                p.add_(0.3 * (torch.rand_like(p) - 0.5))
            elif n.endswith('.bias'):
                p.normal_(0, 0.3)
    d = req['root'] + '/' + name
    m.save_pretrained(d, safe_serialization=True)
    m.train()
    ids = torch.tensor(req['ids'], dtype=torch.long)
    labels = torch.tensor(req['labels'], dtype=torch.long)
    logits = m(input_ids=ids).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    out[name] = {'dir': d, 'logits': logits.detach().reshape(-1).tolist(), 'loss': loss.item(),
                 'grads': {n: p.grad.reshape(-1).tolist() for n, p in m.named_parameters()}}
print(json.dumps(out))
`;

// Loads an exported folder with AutoModelForCausalLM and returns its class, config fields and logits.
const LOAD = `
import json, sys, torch
from transformers import AutoModelForCausalLM
req = json.load(sys.stdin)
m = AutoModelForCausalLM.from_pretrained(req['dir'], dtype=torch.float32).eval()
with torch.no_grad():
    logits = m(input_ids=torch.tensor(req['ids'], dtype=torch.long)).logits
rp = m.config.rope_parameters
print(json.dumps({'cls': type(m).__name__, 'logits': logits.reshape(-1).tolist(), 'rope_type': rp.get('rope_type') if isinstance(rp, dict) else None,
                  'names': [n for n, _ in m.named_parameters()]}))
`;

type MadeFamily = { dir: string; logits: number[]; loss: number; grads: Record<string, number[]> };

const rng = new Rng(9);
const ids = Uint32Array.from({ length: N }, () => rng.int(V));
const labels = Uint32Array.from({ length: N }, () => rng.int(V));
labels[4] = NO_LABEL; labels[11] = NO_LABEL;
const weights = Float32Array.from(labels, (l) => (l === NO_LABEL ? 0 : 1));
const rows = <X>(a: ArrayLike<X>, f: (x: X) => number = Number) => [...Array(B)].map((_, b) => Array.from({ length: T }, (_, t) => f(a[b * T + t]!)));

let made: Record<Family, MadeFamily> | undefined;
function makeAll(): Record<Family, MadeFamily> {
  made ??= runPythonJson<Record<Family, MadeFamily>>(torchPython(), MAKE, {
    root: mkdtempSync(join(tmpdir(), 'families-hf-')), families: FAMILIES,
    ids: rows(ids), labels: rows(labels, (l) => (l === NO_LABEL ? -100 : l)),
  });
  return made;
}

describe('pretrained families vs HF transformers (random weights written by save_pretrained)', () => {
  it.each(Object.keys(FAMILIES) as Family[])('%s: import, logits (CPU reference and GPU), loss and every gradient, export that HF loads back', async (family) => {
    const { device } = gpu();
    const hf = makeAll()[family];
    const imp = importHfFolder(readFolder(hf.dir), `import ${family}`);
    const c = imp.config;
    expect(!!c.attentionBias).toBe(family === 'qwen2');
    expect(!!c.qkNorm).toBe(family === 'qwen3');
    expect(c.ropeScaling?.type).toBe(family === 'llama3' ? 'llama3' : undefined);
    const hfLogits = Float32Array.from(hf.logits);

    const ref = compareArrays(refForward(c, imp.params, ids, B, T).logits, hfLogits, LOGITS_TOL);
    expect(ref.ok, `CPU reference logits vs HF: ${describeComparison(ref)}`).toBe(true);

    const objective = { objective: 'none' as const, temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' as const } };
    const model = new GpuModel(device, c, B, T, objective, { weightDecay: 0.1, clipNorm: 0 });
    try {
      model.uploadParams(imp.params);
      model.setBatch({ ids, labels, weights });
      const gl = compareArrays(await model.logits(), hfLogits, LOGITS_TOL);
      expect(gl.ok, `GPU logits vs HF: ${describeComparison(gl)}`).toBe(true);

      const r = await model.run();
      expect(Math.abs(r.loss - hf.loss), `loss ${r.loss} vs torch ${hf.loss}`).toBeLessThan(1e-5 * (1 + Math.abs(hf.loss)));
      const grads = await model.readGrads();
      const maxG = Math.max(...Object.values(hf.grads).flat().map(Math.abs));
      const hfNames = new Set(Object.keys(hf.grads));
      let gradErr = 0;
      for (const e of model.layout.entries) {
        const want = hf.grads[hfName(e.name)];
        expect(want, `torch has no gradient for ${hfName(e.name)}`).toBeDefined();
        hfNames.delete(hfName(e.name));
        const cmp = compareArrays(grads.subarray(e.offset, e.offset + e.size), Float32Array.from(want!), { atol: 1e-5 * maxG, rtol: 1e-3 });
        expect(cmp.ok, `d${e.name}: ${describeComparison(cmp)}`).toBe(true);
        gradErr = Math.max(gradErr, cmp.maxAbsErr);
      }
      console.log(`${family} vs HF: max |Δlogit| CPU ${ref.maxAbsErr.toExponential(2)}, GPU ${gl.maxAbsErr.toExponential(2)}; loss ${r.loss.toFixed(6)} vs ${hf.loss.toFixed(6)}; max |Δgrad| ${gradErr.toExponential(2)} (max |grad| ${maxG.toExponential(2)})`);
      expect([...hfNames], 'HF parameters without one of ours').toEqual([]);

      // One AdamW step, then export: HF loads the folder as the same family and computes our logits.
      await model.run({ update: { lr: 0.02, step: 1 } });
      const trained = await model.readParams();
      const ours = await model.logits();
      const dir = mkdtempSync(join(tmpdir(), `families-export-${family}-`));
      writeFiles(dir, exportHfFolder({ config: c, params: trained, tokenizer: tok }));
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      const arch = { qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', llama3: 'LlamaForCausalLM' }[family];
      expect(cfg.architectures).toEqual([arch]);
      const back = runPythonJson<{ cls: string; logits: number[]; rope_type: string | null; names: string[] }>(torchPython(), LOAD, { dir, ids: rows(ids) });
      expect(back.cls).toBe(arch);
      expect(back.rope_type).toBe(family === 'llama3' ? 'llama3' : 'default');
      if (family === 'qwen2') expect(back.names).toContain('model.layers.1.self_attn.k_proj.bias');
      if (family === 'qwen3') expect(back.names).toContain('model.layers.1.self_attn.k_norm.weight');
      const el = compareArrays(Float32Array.from(back.logits), ours, LOGITS_TOL);
      console.log(`${family}: HF on our export after one AdamW step vs GPU: max |Δlogit| ${el.maxAbsErr.toExponential(2)}`);
      expect(el.ok, `HF logits of our export vs GPU after one step: ${describeComparison(el)}`).toBe(true);
      const moved = compareArrays(ours, hfLogits, { atol: 1e-3, rtol: 0 });
      expect(moved.ok, 'the AdamW step changed the logits').toBe(false);
    } finally {
      model.destroy();
    }
  }, 240_000);
});
