import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, PRESETS, makeConfig, presetConfig } from '../../src/model/config.ts';
import { countParams, paramLayout, SLAB_ALIGN_FLOATS } from '../../src/model/params.ts';

describe('model config', () => {
  it('fills defaults and rejects unknown keys, bad values and impossible shapes', () => {
    expect(makeConfig()).toEqual(DEFAULT_CONFIG);
    expect(() => makeConfig({ hiden: 3 })).toThrow(/unknown key\(s\) 'hiden'/);
    expect(() => makeConfig({ layers: 0 })).toThrow(/layers must be a positive integer, got 0/);
    expect(() => makeConfig({ heads: 6, kvHeads: 4 })).toThrow(/heads \(6\) must be a multiple of kvHeads \(4\)/);
    expect(() => makeConfig({ headDim: 33 })).toThrow(/headDim \(33\) must be even/);
    expect(() => makeConfig({ ropeTheta: -1 })).toThrow(/ropeTheta must be a positive number/);
    expect(() => makeConfig({ tieEmbeddings: 'yes' })).toThrow(/tieEmbeddings must be true or false/);
    expect(() => presetConfig('huge')).toThrow(/unknown model preset 'huge'/);
  });

  it('has presets from about 1M to about 60M parameters, and two below for software adapters', () => {
    const counts = Object.fromEntries(Object.keys(PRESETS).map((k) => [k, countParams(presetConfig(k))]));
    console.log('preset parameter counts', counts);
    const { nano, micro, ...standard } = counts;
    const values = Object.values(standard);
    expect(Math.min(...values)).toBeGreaterThan(0.8e6);
    expect(Math.min(...values)).toBeLessThan(1.5e6);
    expect(Math.max(...values)).toBeGreaterThan(45e6);
    expect(Math.max(...values)).toBeLessThan(70e6);
    expect(nano).toBeLessThan(60e3);
    expect(micro).toBeGreaterThan(nano!);
    expect(micro).toBeLessThan(0.3e6);
  });
});

describe('parameter slab layout', () => {
  it('places every tensor at a 256-byte-aligned offset without overlap and counts exactly', () => {
    const c = makeConfig({ vocabSize: 97, hidden: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 6, intermediate: 40, tieEmbeddings: false });
    const L = paramLayout(c);
    let end = 0;
    for (const e of L.entries) {
      expect(e.offset % SLAB_ALIGN_FLOATS).toBe(0);
      expect(e.offset).toBeGreaterThanOrEqual(end);
      end = e.offset + e.size;
    }
    expect(L.slabFloats).toBeGreaterThanOrEqual(end);
    // wte + lm_head 2·97·24; per layer: 2 norms 2·24, q 24·24, k,v 2·12·24, o 24·24, mlp 3·40·24; final norm 24.
    const perLayer = 2 * 24 + 24 * 24 + 2 * 12 * 24 + 24 * 24 + 3 * 40 * 24;
    expect(L.count).toBe(2 * 97 * 24 + 2 * perLayer + 24);
    expect(L.byName.get('layers.1.wk')?.shape).toEqual([12, 24]);
    expect(paramLayout({ ...c, tieEmbeddings: true }).byName.has('lm_head')).toBe(false);
  });
});
