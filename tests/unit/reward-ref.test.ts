// The reward model's CPU reference (src/model/reward.ref.ts) and its HF export (src/export/reward-folder.ts), issue
// #24: the Bradley–Terry loss and its derivative; the model's loss gradient (every head value and parameters of every
// tensor) against central differences; a row's score ignores its padding; and HF transformers'
// AutoModelForSequenceClassification loads the exported folder of each family (Llama; Qwen2 with q/k/v biases,
// tied; Qwen3 with q/k norms, untied) and scores right-padded rows as our reference does.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { exportRewardFolder } from '../../src/export/reward-folder.ts';
import { makeConfig, type ModelConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { bradleyTerry, refRewardLossAndGrad, refRewardScores, softplus } from '../../src/model/reward.ref.ts';
import { Rng } from '../../src/util/rng.ts';
import { tinyTeacher } from '../support/tiny-teacher.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

describe('Bradley–Terry', () => {
  it('is mean softplus(−(s_c − s_r − m)); its derivative is −σ(−Δ)/P; stable far out; accuracy counts wins', () => {
    const c = [1.5, -0.25, 3], r = [0.5, 0.75, 3];
    const bt = bradleyTerry(c, r, 0.2);
    const want = [1.5 - 0.5 - 0.2, -0.25 - 0.75 - 0.2, -0.2].reduce((a, d) => a + Math.log(1 + Math.exp(-d)), 0) / 3;
    expect(bt.loss).toBeCloseTo(want, 14);
    expect(bt.accuracy).toBeCloseTo(1 / 3, 14);
    for (let p = 0; p < 3; p++) {
      const h = 1e-6, up = [...c], dn = [...c];
      up[p]! += h; dn[p]! -= h;
      expect(bt.dChosen[p]).toBeCloseTo((bradleyTerry(up, r, 0.2).loss - bradleyTerry(dn, r, 0.2).loss) / (2 * h), 8);
    }
    expect(bradleyTerry([1000], [0]).loss).toBe(0);
    expect(bradleyTerry([0], [1000]).loss).toBe(1000);
    expect(softplus(-30)).toBeCloseTo(Math.exp(-30), 25);
    expect(() => bradleyTerry([1], [1, 2])).toThrow(/1 chosen scores but 2 rejected/);
  });
});

/** A small model whose every parameter moves the score: weights N(0, 0.3), norm gains 1 ± 0.3, biases N(0, 0.3). */
function model(over: Record<string, unknown>, seed: number): { config: ModelConfig; params: Float32Array; w: Float64Array } {
  const config = makeConfig({ vocabSize: 23, hidden: 12, layers: 2, heads: 3, kvHeads: 1, headDim: 4, intermediate: 14, maxSeqLen: 16, initStd: 0.3, ...over });
  const params = initParams(config, seed);
  const rng = new Rng(seed + 1);
  for (const e of paramLayout(config).entries) {
    if (e.init === 'ones') for (let i = 0; i < e.size; i++) params[e.offset + i] = 1 + 0.6 * (rng.next() - 0.5);
    if (e.init === 'zeros') for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.3 * rng.normal();
  }
  return { config, params, w: Float64Array.from({ length: config.hidden }, () => rng.normal()) };
}

describe('reward model reference', () => {
  it('gradient = central differences for the head and for parameters of every tensor (Qwen3-shaped, untied, with margins)', () => {
    const { config, params, w } = model({ qkNorm: true, tieEmbeddings: false }, 3);
    const P = 2, T = 6, rng = new Rng(5);
    const ids = Uint32Array.from({ length: 2 * P * T }, () => rng.int(config.vocabSize));
    const batch = { ids, T, P, lengths: [6, 3, 4, 5], margin: [0.1, -0.3] };
    const slab = Float64Array.from(params);
    const g = refRewardLossAndGrad(config, slab, w, batch);
    const lossAt = (s: ArrayLike<number>, ww: ArrayLike<number>) => refRewardLossAndGrad(config, s, ww, batch).loss;
    const h = 1e-5;
    for (let c = 0; c < config.hidden; c++) {
      const up = Float64Array.from(w), dn = Float64Array.from(w);
      up[c]! += h; dn[c]! -= h;
      expect(Math.abs(g.dw[c]! - (lossAt(slab, up) - lossAt(slab, dn)) / (2 * h))).toBeLessThan(1e-7 + 1e-5 * Math.abs(g.dw[c]!));
    }
    let checked = 0, nonzero = 0;
    for (const e of paramLayout(config).entries) {
      for (const i of [e.offset, e.offset + Math.floor(e.size / 2), e.offset + e.size - 1]) {
        const up = Float64Array.from(slab), dn = Float64Array.from(slab);
        up[i]! += h; dn[i]! -= h;
        const fd = (lossAt(up, w) - lossAt(dn, w)) / (2 * h);
        expect(Math.abs(g.grad[i]! - fd), `${e.name}[${i - e.offset}]`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        checked++;
        if (Math.abs(fd) > 1e-9) nonzero++;
      }
    }
    expect(checked).toBeGreaterThan(40);
    expect(nonzero).toBeGreaterThan(checked / 2);
  });

  it('a row\'s score is its last real token\'s: padding after it changes nothing; lengths are checked', () => {
    const { config, params, w } = model({}, 7);
    const T = 8;
    const a = Uint32Array.from([3, 9, 4, 1, 1, 1, 1, 1]);
    const b = Uint32Array.from([3, 9, 4, 17, 2, 5, 0, 8]);
    const sa = refRewardScores(config, params, w, a, 1, T, [3]).scores[0]!;
    expect(refRewardScores(config, params, w, b, 1, T, [3]).scores[0]).toBe(sa);
    expect(refRewardScores(config, params, w, b, 1, T, [4]).scores[0]).not.toBe(sa);
    expect(() => refRewardScores(config, params, w, a, 1, T, [0])).toThrow(/row 0 has length 0, expected 1\.\.8/);
    expect(() => refRewardScores(config, params, w.subarray(1), a, 1, T, [3])).toThrow(/score head has 11 values, the model is 12 wide/);
  });
});

const PY = `
import json, sys, torch
from transformers import AutoModelForSequenceClassification
req = json.load(sys.stdin)
out = []
for case in req['cases']:
    m = AutoModelForSequenceClassification.from_pretrained(case['dir'], torch_dtype=torch.float32)
    m.eval()
    ids = torch.tensor(case['ids'])
    with torch.no_grad():
        logits = m(input_ids=ids, attention_mask=torch.tensor(case['mask'])).logits
    out.append({'class': type(m).__name__, 'shape': list(logits.shape), 'scores': logits[:, 0].tolist(), 'pad': m.config.pad_token_id})
print(json.dumps(out))
`;

describe('reward model export → HF transformers', () => {
  it('AutoModelForSequenceClassification loads each family\'s folder and scores right-padded rows as our reference, within 1e-4', () => {
    const t = tinyTeacher();
    const V = t.tokenizer.vocabSize;
    const families = [
      { name: 'LlamaForSequenceClassification', config: t.config, params: t.params, w: Float64Array.from({ length: t.config.hidden }, (_, c) => Math.sin(c + 1)) },
      { name: 'Qwen2ForSequenceClassification', ...model({ vocabSize: V, attentionBias: true, tieEmbeddings: true }, 21) },
      { name: 'Qwen3ForSequenceClassification', ...model({ vocabSize: V, qkNorm: true, tieEmbeddings: false, hidden: 18, heads: 4, kvHeads: 2, headDim: 6 }, 31) },
    ];
    const pad = t.tokenizer.tokenToId('<|endoftext|>')!;
    const texts = ['The teacher reads the book.', 'A student', 'The answer is written down by the student today.'];
    const enc = texts.map((s) => t.tokenizer.encode(s).slice(0, 12));
    const T = Math.max(...enc.map((e) => e.length));
    const ids = enc.map((e) => [...e, ...Array(T - e.length).fill(pad)]);
    const mask = enc.map((e) => [...Array(e.length).fill(1), ...Array(T - e.length).fill(0)]);
    const root = mkdtempSync(join(tmpdir(), 'reward-'));
    const cases = families.map((f, i) => {
      const dir = join(root, `f${i}`);
      writeFiles(dir, exportRewardFolder({ config: f.config, params: f.params, tokenizer: t.tokenizer }, f.w));
      return { dir, ids, mask };
    });
    const got = runPythonJson<{ class: string; shape: number[]; scores: number[]; pad: number }[]>(torchPython(), PY, { cases });
    families.forEach((f, i) => {
      expect(got[i]!.class).toBe(f.name);
      expect(got[i]!.shape).toEqual([3, 1]);
      expect(got[i]!.pad).toBe(pad);
      const ours = refRewardScores(f.config, f.params, f.w, Uint32Array.from(ids.flat()), 3, T, enc.map((e) => e.length)).scores;
      ours.forEach((s, b) => expect(Math.abs(got[i]!.scores[b]! - s), `${f.name} row ${b}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(s))));
      expect(new Set(ours).size).toBe(3); // the rows differ: the comparison is not vacuous
    });
  }, 120_000);

  it('refuses a head of the wrong width or with a non-finite value', () => {
    const t = tinyTeacher();
    expect(() => exportRewardFolder(t, new Float32Array(3))).toThrow(/3 values, the model is 32 wide/);
    const bad = new Float32Array(32); bad[5] = Number.NaN;
    expect(() => exportRewardFolder(t, bad)).toThrow(/value 5 is NaN \(not finite\)/);
  });
});
