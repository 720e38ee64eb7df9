// Our GPU model against PyTorch on the same weights (HF transformers' LlamaForCausalLM loading our safetensors
// export, CPU, float32): cross-entropy loss, EVERY parameter gradient (autograd), and ten AdamW steps
// (torch.optim.AdamW, decay on matrices/embeddings only) — losses and final weights. The style guide's fixture
// test, run on the CPU here (the GPU machine runs the same Python on CUDA when it is lent).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { hfName } from '../../src/export/hf-names.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const tok = trainBpe(['a small text for a small tokenizer, with some words repeated: small words, small text.'], { vocabSize: 270, specialTokens: ['<|endoftext|>'] });

const SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM
torch.use_deterministic_algorithms(True)
req = json.load(sys.stdin)
m = AutoModelForCausalLM.from_pretrained(req['dir'], dtype=torch.float32)
m.train()
ids = torch.tensor(req['ids'], dtype=torch.long)
labels = torch.tensor(req['labels'], dtype=torch.long)
def loss_fn():
    logits = m(input_ids=ids).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
loss = loss_fn()
loss.backward()
out = {'loss': loss.item(), 'grads': {n: p.grad.reshape(-1).tolist() for n, p in m.named_parameters()}}
decay = [p for n, p in m.named_parameters() if p.dim() >= 2]
nodecay = [p for n, p in m.named_parameters() if p.dim() < 2]
h = req['hp']
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': h['wd']}, {'params': nodecay, 'weight_decay': 0.0}],
                        lr=h['lr'], betas=(h['b1'], h['b2']), eps=h['eps'])
losses = []
for step in range(req['steps']):
    opt.zero_grad()
    l = loss_fn()
    losses.append(l.item())
    l.backward()
    opt.step()
out['losses'] = losses
out['final'] = {n: p.detach().reshape(-1).tolist() for n, p in m.named_parameters()}
print(json.dumps(out))
`;

type TorchOut = { loss: number; grads: Record<string, number[]>; losses: number[]; final: Record<string, number[]> };

describe('GPU model vs PyTorch (HF LlamaForCausalLM on our export)', () => {
  it.each([true, false])('tied = %s: loss, every gradient, ten AdamW steps', async (tied) => {
    const { device } = gpu();
    const py = torchPython();
    const config = makeConfig({ vocabSize: tok.vocabSize + 3, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 56, maxSeqLen: 16, tieEmbeddings: tied, initStd: 0.2, ropeTheta: 1000 });
    const slab = initParams(config, tied ? 41 : 42);
    const rng = new Rng(5);
    for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.3 * (rng.next() - 0.5);
    const B = 2, T = 9, N = B * T;
    const ids = Uint32Array.from({ length: N }, () => rng.int(tok.vocabSize));
    const labels = Uint32Array.from({ length: N }, () => rng.int(tok.vocabSize));
    labels[4] = NO_LABEL; labels[11] = NO_LABEL; // ignored positions (prompt masks)
    const weights = Float32Array.from(labels, (l) => (l === NO_LABEL ? 0 : 1));
    const hp = { lr: 0.01, b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 };
    const STEPS = 10;

    const dir = mkdtempSync(join(tmpdir(), 'torch-fixture-'));
    writeFiles(dir, exportHfFolder({ config, params: slab, tokenizer: tok }));
    const torch = runPythonJson<TorchOut>(py, SCRIPT, {
      dir, ids: [...Array(B)].map((_, b) => Array.from(ids.subarray(b * T, (b + 1) * T))),
      labels: [...Array(B)].map((_, b) => Array.from(labels.subarray(b * T, (b + 1) * T), (l) => (l === NO_LABEL ? -100 : l))),
      hp, steps: STEPS,
    });

    const objective = { objective: 'none' as const, temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' as const } };
    const model = new GpuModel(device, config, B, T, objective, { weightDecay: hp.wd, beta1: hp.b1, beta2: hp.b2, eps: hp.eps, clipNorm: 0 });
    try {
      model.uploadParams(slab);
      model.setBatch({ ids, labels, weights });
      const r = await model.run();
      expect(r.loss).toBeCloseTo(torch.loss, 5);
      const grads = await model.readGrads();
      const maxG = Math.max(...Object.values(torch.grads).flat().map(Math.abs));
      for (const e of model.layout.entries) {
        const want = torch.grads[hfName(e.name)];
        expect(want, `torch has no gradient for ${hfName(e.name)}`).toBeDefined();
        const cmp = compareArrays(grads.subarray(e.offset, e.offset + e.size), Float32Array.from(want!), { atol: 1e-5 * maxG, rtol: 1e-3 });
        expect(cmp.ok, `d${e.name}: ${describeComparison(cmp)}`).toBe(true);
      }
      const losses: number[] = [];
      for (let step = 1; step <= STEPS; step++) losses.push((await model.run({ update: { lr: hp.lr, step } })).loss);
      for (let i = 0; i < STEPS; i++) expect(losses[i], `loss at step ${i + 1}`).toBeCloseTo(torch.losses[i]!, 4);
      expect(losses[STEPS - 1]!).toBeLessThan(losses[0]! - 0.1); // it trained
      const params = await model.readParams();
      for (const e of model.layout.entries) {
        const cmp = compareArrays(params.subarray(e.offset, e.offset + e.size), Float32Array.from(torch.final[hfName(e.name)]!), { atol: 2e-5, rtol: 1e-3 });
        expect(cmp.ok, `${e.name} after ${STEPS} steps: ${describeComparison(cmp)}`).toBe(true);
      }
    } finally {
      model.destroy();
    }
  }, 180_000);
});
