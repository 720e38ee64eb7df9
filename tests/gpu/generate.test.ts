// Generation with the KV cache against the CPU reference model: greedy tokens equal argmax of refForward over
// the growing sequence; the last-position logits of prefill and of each decode step equal the reference's.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { argmax } from '../../src/model/sampling.ts';
import { allocBuffer } from '../../src/model/activations.ts';
import { writeArray } from '../../src/gpu/dispatch.ts';
import { paramLayout } from '../../src/model/params.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const config = makeConfig({ vocabSize: 29, hidden: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 24, initStd: 0.5 });

function setup() {
  const { device } = gpu();
  const slab = initParams(config, 9);
  const params = allocBuffer(device, slab.length, 'params');
  writeArray(device, params, slab);
  return { device, slab, params };
}

describe('Generator', () => {
  it('greedy generation equals argmax of the reference model over the growing sequence', async () => {
    const { device, slab, params } = setup();
    const gen = new Generator(device, config, params, 24);
    const prompt = [3, 1, 4, 1, 5];
    const got = await gen.generate(prompt, { maxNewTokens: 10, temperature: 0 });
    const seq = [...prompt];
    const want: number[] = [];
    for (let i = 0; i < 10; i++) {
      const T = seq.length;
      const logits = refForward(config, slab, Uint32Array.from(seq), 1, T).logits.subarray((T - 1) * config.vocabSize, T * config.vocabSize);
      const next = argmax(Float32Array.from(logits));
      want.push(next);
      seq.push(next);
    }
    expect(got).toEqual(want);
    gen.destroy(); params.destroy();
  });

  it.each([
    ['Qwen2 (q/k/v biases)', { attentionBias: true }],
    ['Qwen3 (q/k norms, H·D ≠ C)', { qkNorm: true, headDim: 16 }],
    ['Llama-3 (llama3 RoPE scaling)', { ropeTheta: 5000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 } }],
  ] as const)('family %s: greedy generation equals argmax of the reference model', async (_, over) => {
    const { device } = gpu();
    const c = makeConfig({ ...config, ...over });
    const slab = initParams(c, 9);
    const rng = new Rng(3);
    for (const e of paramLayout(c).entries) {
      if (e.init !== 'normal') for (let i = 0; i < e.size; i++) slab[e.offset + i] = (e.init === 'ones' ? 1 : 0) + 0.5 * rng.normal();
    }
    const params = allocBuffer(device, slab.length, 'params');
    writeArray(device, params, slab);
    const gen = new Generator(device, c, params, 24);
    const prompt = [3, 1, 4, 1, 5];
    const got = await gen.generate(prompt, { maxNewTokens: 12, temperature: 0 });
    const seq = [...prompt];
    const want: number[] = [];
    for (let i = 0; i < 12; i++) {
      const T = seq.length;
      const logits = refForward(c, slab, Uint32Array.from(seq), 1, T).logits.subarray((T - 1) * c.vocabSize, T * c.vocabSize);
      want.push(argmax(Float32Array.from(logits)));
      seq.push(want[i]!);
    }
    expect(got).toEqual(want);
    gen.destroy(); params.destroy();
  });

  it('is deterministic given the seed, stops at a stop token, and checks its inputs', async () => {
    const { device, params } = setup();
    const gen = new Generator(device, config, params, 24);
    const a = await gen.generate([2, 7], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 4 });
    const b = await gen.generate([2, 7], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 4 });
    const c = await gen.generate([2, 7], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 5 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const stop = a[3]!;
    const cut = await gen.generate([2, 7], { maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 4, stopTokens: [stop] });
    expect(cut).toEqual(a.slice(0, a.indexOf(stop)));
    await expect(gen.generate([], { maxNewTokens: 1 })).rejects.toThrow(/prompt is empty/);
    await expect(gen.generate([29], { maxNewTokens: 1 })).rejects.toThrow(/prompt token 0 is 29, outside \[0, 29\)/);
    await expect(gen.generate([1, 2], { maxNewTokens: 23 })).rejects.toThrow(/exceeds the cache length 24/);
    gen.destroy(); params.destroy();
  });
});
