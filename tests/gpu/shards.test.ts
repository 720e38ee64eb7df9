// Parameters, gradients and AdamW moments split across buffers (src/model/slab-shards.ts, train-state.ts) compute
// what one buffer computes: the same model built with a small maxBufferBytes (several shards, W_h of the hidden
// objective in one of them) and with the device's limit (one buffer) gives the same loss, every gradient, the same
// clipped gradient norm, and the same weights and moments after AdamW steps; state written and read back across
// shards is the state. No buffer of the sharded model passes the limit.
import { describe, expect, it } from 'vitest';
import { NO_LABEL } from '../../src/kernels/loss/loss.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GpuModel, type GpuModelOptions, type ObjectiveSpec } from '../../src/model/gpu-model.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { shardRanges } from '../../src/model/slab-shards.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const B = 2, T = 5, N = B * T, Ct = 12;
const config = makeConfig({ vocabSize: 53, hidden: 24, layers: 3, heads: 4, kvHeads: 2, headDim: 8, intermediate: 40, maxSeqLen: 8, tieEmbeddings: false, initStd: 0.2, ropeTheta: 100, attentionBias: true });
const objective: ObjectiveSpec = { objective: 'fkl', temperature: 1.5, kdWeight: 0.6, ceWeight: 0.5, teacher: { kind: 'dense' } };

function close(name: string, a: Float32Array, b: Float32Array, rtol = 1e-6): void {
  const maxB = b.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const cmp = compareArrays(a, b, { atol: rtol * maxB, rtol });
  expect(cmp.ok, `${name}: ${describeComparison(cmp)}`).toBe(true);
}

describe('parameter slabs split across buffers', () => {
  it('shardRanges cuts only at tensor starts, keeps each shard within the limit, and names a tensor that cannot fit', () => {
    const cuts = [{ offset: 0, name: 'a' }, { offset: 64, name: 'b' }, { offset: 192, name: 'c' }, { offset: 256, name: 'd' }];
    expect(shardRanges(cuts, 320, 1000)).toEqual([{ start: 0, floats: 320 }]);
    expect(shardRanges(cuts, 320, 192)).toEqual([{ start: 0, floats: 192 }, { start: 192, floats: 128 }]);
    expect(shardRanges(cuts, 320, 128)).toEqual([{ start: 0, floats: 64 }, { start: 64, floats: 128 }, { start: 192, floats: 128 }]);
    expect(() => shardRanges(cuts, 320, 100)).toThrow(/tensor 'b' takes .* more than this GPU's largest buffer/);
  });

  it('trains the same with several shards as with one: loss, every gradient, norm, weights and moments', async () => {
    const { device } = gpu();
    const rng = new Rng(5);
    const slab = initParams(config, 3);
    const batch = {
      ids: Uint32Array.from({ length: N }, () => rng.int(config.vocabSize)),
      labels: Uint32Array.from({ length: N }, (_, i) => (i === 2 ? NO_LABEL : rng.int(config.vocabSize))),
      weights: Float32Array.from({ length: N }, () => 0.5 + rng.next()),
      teacherLogits: Float32Array.from({ length: N * config.vocabSize }, () => 2 * rng.normal()),
      teacherHidden: Float32Array.from({ length: N * Ct }, () => rng.normal()),
    };
    const hidden = { teacherWidth: Ct, kind: 'mse' as const, weight: 0.3, seed: 4 };
    // The largest tensor is wte/lm_head: 53·24 floats (~5 KiB): 8 KiB shards hold it alone or beside small ones.
    const build = (o: GpuModelOptions) => new GpuModel(device, config, B, T, objective, { weightDecay: 0.1, clipNorm: 0.5 }, { hidden, ...o });
    const one = build({}), many = build({ maxBufferBytes: 8192 });
    try {
      expect(one.state.shardCount).toBe(1);
      expect(many.state.shardCount).toBeGreaterThan(4);
      for (const b of many.state.params.buffers) expect(b.size).toBeLessThanOrEqual(8192);
      for (const m of [one, many]) { m.uploadParams(slab); m.setBatch(batch); }
      for (let step = 1; step <= 3; step++) {
        const [ra, rb] = [await one.run({ update: { lr: 0.01, step } }), await many.run({ update: { lr: 0.01, step } })];
        expect(rb.loss).toBeCloseTo(ra.loss, 6);
        expect(rb.hidden).toBeCloseTo(ra.hidden, 6);
        // The norm's partial sums are cut where the shards start: equal up to the order of a few additions.
        expect(Math.abs(rb.gradNorm - ra.gradNorm)).toBeLessThan(1e-6 * ra.gradNorm);
        expect(ra.gradNorm).toBeGreaterThan(0.5); // clipping is on: its scale matters
        close(`step ${step} gradients`, await many.readGrads(), await one.readGrads());
        close(`step ${step} W_h gradient`, await many.readHiddenProjectionGrad(), await one.readHiddenProjectionGrad());
      }
      close('weights after 3 steps', await many.readParams(), await one.readParams());
      close('W_h after 3 steps', await many.readHiddenProjection(), await one.readHiddenProjection());
      const sizes = many.stateSizes;
      const read = async (m: GpuModel) => {
        const s = { params: new Float32Array(sizes.params), m: new Float32Array(sizes.m), v: new Float32Array(sizes.v), tail: new Float32Array(sizes.wh) };
        await m.readStateInto(s);
        return s;
      };
      const [sa, sb] = [await read(one), await read(many)];
      close('AdamW m', sb.m, sa.m);
      close('AdamW v', sb.v, sa.v);
      // Written across shards and read back: the same state.
      const fresh = build({ maxBufferBytes: 8192 });
      try {
        fresh.uploadParams(sb.params);
        fresh.uploadHiddenProjection(sb.tail);
        fresh.writeOptimizerState(sb);
        const sc = await read(fresh);
        for (const k of ['params', 'm', 'v', 'tail'] as const) expect(sc[k]).toEqual(sb[k]);
      } finally {
        fresh.destroy();
      }
    } finally {
      one.destroy();
      many.destroy();
    }
  });
});
