// HF transformers (PyTorch, CPU) loads our safetensors export with AutoModelForCausalLM / AutoTokenizer: the same
// token ids on mixed text, logits equal to our CPU reference model (and so to the GPU model it is matched against),
// and greedy `generate()` equal to our greedy loop — tied and untied, grouped-query attention, non-default RoPE θ.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { makeConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

const TEXT = 'It was the best of times, it was the worst of times; it was the age of wisdom, it was the age of '
  + 'foolishness. 1,234 apples — naïve café! Tabs\tand  double  spaces.\nNew line: "quoted" (parenthesised) [x].';
const tok = trainBpe([TEXT, TEXT.toLowerCase(), TEXT.toUpperCase()], { vocabSize: 400, specialTokens: ['<|endoftext|>'] });

const SCRIPT = `
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
req = json.load(sys.stdin)
torch.manual_seed(0)
tk = AutoTokenizer.from_pretrained(req['dir'])
m = AutoModelForCausalLM.from_pretrained(req['dir'], dtype=torch.float32).eval()
out = {'class': type(m).__name__, 'tokenizer': type(tk).__name__}
out['ids'] = [tk(t, add_special_tokens=True)['input_ids'] for t in req['texts']]
with torch.no_grad():
    x = torch.tensor(req['batch'], dtype=torch.long)
    out['logits'] = m(input_ids=x).logits.reshape(-1).tolist()
    g = m.generate(torch.tensor([req['prompt']]), attention_mask=torch.ones(1, len(req['prompt']), dtype=torch.long),
                   max_new_tokens=req['new'], do_sample=False)
    out['generated'] = g[0, len(req['prompt']):].tolist()
print(json.dumps(out))
`;

let py: string;
// torchPython() imports torch in a child process: seconds, and more on a loaded 2-core machine.
beforeAll(() => { py = torchPython(); }, 120_000);

function model(tied: boolean) {
  const config = makeConfig({
    vocabSize: tok.vocabSize + 5, hidden: 48, layers: 2, heads: 6, kvHeads: 2, headDim: 8, intermediate: 80,
    maxSeqLen: 64, tieEmbeddings: tied, initStd: 0.3, ropeTheta: 500, rmsNormEps: 1e-6,
  });
  const slab = initParams(config, tied ? 31 : 32);
  const rng = new Rng(9);
  for (const e of paramLayout(config).entries) if (e.init === 'ones') for (let i = 0; i < e.size; i++) slab[e.offset + i] = 1 + 0.4 * (rng.next() - 0.5);
  return { config, slab };
}

function writeFolder(files: { path: string; bytes: Uint8Array }[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'hf-tf-'));
  writeFiles(dir, files);
  return dir;
}

describe('HF transformers loads the safetensors export', () => {
  it.each([true, false])('tied = %s: tokenizer ids, logits and greedy generate equal ours', (tied) => {
    const { config, slab } = model(tied);
    const dir = writeFolder(exportHfFolder({ config, params: slab, tokenizer: tok }));
    const B = 2, T = 13;
    const rng = new Rng(tied ? 1 : 2);
    const batch = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(tok.vocabSize)));
    const texts = [TEXT, 'the worst of times', ' leading space', 'naïve café — 99 problems<|endoftext|>after'];
    const prompt = tok.encode('it was the age of');
    const NEW = 12;
    const r = runPythonJson<{ class: string; tokenizer: string; ids: number[][]; logits: number[]; generated: number[] }>(py, SCRIPT, { dir, texts, batch, prompt, new: NEW });
    expect(r.class).toBe('LlamaForCausalLM');
    expect(r.ids).toEqual(texts.map((t) => tok.encode(t)));

    const ref = refForward(config, slab, Uint32Array.from(batch.flat()), B, T).logits;
    const cmp = compareArrays(Float32Array.from(r.logits), ref, { atol: 1e-4, rtol: 1e-4 });
    expect(cmp.ok, describeComparison(cmp)).toBe(true);

    const eos = tok.tokenToId('<|endoftext|>')!;
    const seq = [...prompt];
    const want: number[] = [];
    for (let i = 0; i < NEW; i++) {
      const L = seq.length, V = config.vocabSize;
      const last = refForward(config, slab, Uint32Array.from(seq), 1, L).logits.subarray((L - 1) * V, L * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v]! > last[best]!) best = v;
      const sorted = Array.from(last).sort((a, b) => b - a);
      expect(sorted[0]! - sorted[1]!, `near-tie at step ${i}`).toBeGreaterThan(1e-3);
      want.push(best);
      seq.push(best);
      if (best === eos) break;
    }
    expect(r.generated.slice(0, want.length)).toEqual(want);
  }, 120_000);
});
