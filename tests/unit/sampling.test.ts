// Next-token sampling and stop sequences: greedy ties, top-k = 1 = greedy, top-p extremes, the empirical
// distribution of 20,000 seeded draws against hand-derived renormalized probabilities (chi-square bound),
// reproducibility from the seed, option validation, and stop sequences split across tokens.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING, StopMatcher, argmax, resolveSampling, sampleToken, samplingDistribution } from '../../src/model/sampling.ts';
import { Rng } from '../../src/util/rng.ts';

// Six live tokens at scattered ids (2 and 5 can never be chosen); logits = log p + a constant.
const P: Record<number, number> = { 3: 0.4, 0: 0.25, 6: 0.15, 1: 0.1, 7: 0.06, 4: 0.04 };
const V = 8;
const LOGITS = Float32Array.from({ length: V }, (_, id) => (id in P ? Math.log(P[id]!) + 1.7 : -Infinity));

/** Renormalized probabilities of `ids` under weights w(id) (the hand-derived expectation). */
const renorm = (ids: number[], w: (id: number) => number): Map<number, number> => {
  const total = ids.reduce((s, id) => s + w(id), 0);
  return new Map(ids.map((id) => [id, w(id) / total]));
};

/** Chi-square critical values at α = 0.001 by degrees of freedom. */
const CHI2_999: Record<number, number> = { 1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52 };

function chiSquare(opts: { temperature: number; topK: number; topP: number }, expected: Map<number, number>, seed: number): { stat: number; counts: number[] } {
  const N = 20_000;
  const rng = new Rng(seed);
  const counts = new Array<number>(V).fill(0);
  for (let i = 0; i < N; i++) counts[sampleToken(LOGITS, { ...opts, rng })]!++;
  let stat = 0;
  for (const [id, p] of expected) stat += (counts[id]! - N * p) ** 2 / (N * p);
  return { stat, counts };
}

describe('sampleToken: empirical distribution of 20,000 seeded draws', () => {
  const cases: [string, { temperature: number; topK: number; topP: number }, Map<number, number>][] = [
    ['no cut: the softmax itself', { temperature: 1, topK: 0, topP: 1 }, renorm([3, 0, 6, 1, 7, 4], (id) => P[id]!)],
    ['top-k 4: the 4 best, renormalized', { temperature: 1, topK: 4, topP: 1 }, renorm([3, 0, 6, 1], (id) => P[id]!)],
    ['top-p 0.7: .4 + .25 < .7 ≤ .4 + .25 + .15 keeps 3', { temperature: 1, topK: 0, topP: 0.7 }, renorm([3, 0, 6], (id) => P[id]!)],
    // T = 0.5 squares p; top-5 drops id 4; of p²/Σ(top-5) = .619, .242, .087, .039, .014 the nucleus 0.9 keeps 3.
    ['temperature 0.5, top-k 5, top-p 0.9', { temperature: 0.5, topK: 5, topP: 0.9 }, renorm([3, 0, 6], (id) => P[id]! ** 2)],
    ['temperature 2: p^½ renormalized', { temperature: 2, topK: 0, topP: 1 }, renorm([3, 0, 6, 1, 7, 4], (id) => Math.sqrt(P[id]!))],
  ];
  it.each(cases)('%s', (_, opts, expected) => {
    const { stat, counts } = chiSquare(opts, expected, 1234);
    expect(stat).toBeLessThan(CHI2_999[expected.size - 1]!);
    for (let id = 0; id < V; id++) if (!expected.has(id)) expect(counts[id], `token ${id} is outside the kept set`).toBe(0);
  });

  it('samplingDistribution returns the same renormalized probabilities, most probable first', () => {
    const d = samplingDistribution(LOGITS, { temperature: 0.5, topK: 5, topP: 0.9 });
    expect([...d.ids]).toEqual([3, 0, 6]);
    const want = renorm([3, 0, 6], (id) => P[id]! ** 2);
    d.ids.forEach((id, i) => expect(d.probs[i]).toBeCloseTo(want.get(id)!, 6));
    expect([...samplingDistribution(LOGITS).ids]).toEqual([0, 1, 3, 4, 6, 7]); // no cut: id order, -Infinity dropped
  });
});

describe('sampleToken: greedy and extremes', () => {
  it('temperature 0 is argmax with the lowest id on ties, and draws nothing from the rng', () => {
    const rng = new Rng(5);
    expect(sampleToken(Float32Array.of(1, 3, -Infinity, 3, 2), { temperature: 0, rng })).toBe(1);
    expect(sampleToken(Float32Array.of(-Infinity, -2, -2), { temperature: 0, rng })).toBe(1);
    expect(sampleToken(Float32Array.of(7), { temperature: 0, rng })).toBe(0);
    expect(rng.next()).toBe(new Rng(5).next());
    expect(argmax(Float32Array.of(0, 5, 5, 5))).toBe(1);
  });

  it('top-k = 1 equals greedy on random logits full of ties, at any temperature', () => {
    const gen = new Rng(17);
    const rng = new Rng(18);
    for (let trial = 0; trial < 300; trial++) {
      const logits = Float32Array.from({ length: 1 + gen.int(40) }, () => Math.round(gen.normal() * 2));
      const greedy = sampleToken(logits, { temperature: 0, rng });
      expect(sampleToken(logits, { temperature: 0.1 + 3 * gen.next(), topK: 1, rng })).toBe(greedy);
    }
  });

  it('top-p → 0 keeps only the most probable token (lowest id on ties); top-p = 1 keeps every token', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) expect(sampleToken(LOGITS, { topP: 1e-9, rng })).toBe(3);
    const tied = Float32Array.of(0, 2, 1, 2);
    for (let i = 0; i < 200; i++) expect(sampleToken(tied, { topP: 1e-9, temperature: 5, rng })).toBe(1);
    expect([...samplingDistribution(LOGITS, { topP: 1 }).ids].sort()).toEqual([0, 1, 3, 4, 6, 7]);
    expect(samplingDistribution(LOGITS, { topP: 1e-9 }).probs[0]).toBe(1);
  });

  it('the same seed gives the same sequence; another seed gives another one', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 60 }, () => sampleToken(LOGITS, { temperature: 1.5, topK: 5, topP: 0.95, rng }));
    };
    expect(draw(9)).toEqual(draw(9));
    expect(draw(10)).not.toEqual(draw(9));
  });

  it('rejects bad options and logits with errors naming them', () => {
    const rng = new Rng(1);
    expect(() => sampleToken(LOGITS, { rng, topP: 0 })).toThrow(/sampleToken: topP must be in \(0, 1\], got 0/);
    expect(() => sampleToken(LOGITS, { rng, topP: 1.5 })).toThrow(/topP must be in/);
    expect(() => sampleToken(LOGITS, { rng, temperature: -1 })).toThrow(/temperature must be a finite number ≥ 0, got -1/);
    expect(() => sampleToken(LOGITS, { rng, topK: 2.5 })).toThrow(/topK must be an integer ≥ 0, got 2.5/);
    expect(() => sampleToken(LOGITS, { rng, topk: 3 } as never)).toThrow(/unknown option "topk"/);
    expect(() => sampleToken(LOGITS, {} as never)).toThrow(/rng \(a seeded Rng\) is required/);
    expect(() => sampleToken(new Float32Array(0), { rng })).toThrow(/logits are empty/);
    expect(() => sampleToken(Float32Array.of(0, NaN), { rng })).toThrow(/logits\[1\] is NaN/);
    expect(() => sampleToken(Float32Array.of(Infinity), { rng, temperature: 0 })).toThrow(/logits\[0\] is Infinity/);
    expect(() => sampleToken(Float32Array.of(-Infinity, -Infinity), { rng })).toThrow(/every one of the 2 logits is -Infinity/);
    expect(resolveSampling({})).toEqual(DEFAULT_SAMPLING);
    expect(resolveSampling({ topK: 3, temperature: undefined })).toEqual({ ...DEFAULT_SAMPLING, topK: 3 });
  });
});

describe('StopMatcher', () => {
  /** Pushes the pieces; returns what each push showed and whether it stopped. */
  const run = (m: StopMatcher, pieces: string[]) => pieces.map((p) => { const r = m.push(p); return [r.text, r.stopped] as const; });

  it('finds a stop sequence split across tokens and reports the text before it', () => {
    const m = new StopMatcher(['</s>']);
    expect(run(m, ['Hello', ' wor', 'ld<', '/', 's>'])).toEqual([
      ['Hello', false], [' wor', false], ['ld', false], ['', false], ['', true],
    ]);
    expect(m.text).toBe('Hello world');
    expect(m.stop).toBe('</s>');
    expect(m.flush()).toBe('');
    expect(() => m.push('more')).toThrow(/StopMatcher.push: the stop sequence "<\/s>" was already matched/);
  });

  it('releases held text that turns out not to start a stop, and flushes the tail at the end', () => {
    const m = new StopMatcher(['\n\nUser:']);
    expect(run(m, ['a\n', '\nU', 'nder', ' way\n'])).toEqual([['a', false], ['', false], ['\n\nUnder', false], [' way', false]]);
    expect(m.stopped).toBe(false);
    expect(m.flush()).toBe('\n');
    expect(m.text).toBe('a\n\nUnder way\n');
  });

  it('stops at the earliest of several stops, even inside one piece with text after it', () => {
    const m = new StopMatcher(['END', '\n\n']);
    expect(m.push('x\n\nyEND tail')).toEqual({ text: 'x', stopped: true });
    expect(m.stop).toBe('\n\n');
    const n = new StopMatcher(['abc', 'ab']);
    expect(n.push('zab')).toEqual({ text: 'z', stopped: true });
    expect(n.stop).toBe('ab');
  });

  it('keeps the longest possible start when a stop overlaps itself ("aab" after "aa")', () => {
    const m = new StopMatcher(['aab']);
    expect(run(m, ['xa', 'a', 'a', 'b'])).toEqual([['x', false], ['', false], ['a', false], ['', true]]);
    expect(m.text).toBe('xa');
  });

  it('passes text through without stops and rejects empty stop strings', () => {
    const m = new StopMatcher([]);
    expect(run(m, ['a', '<'])).toEqual([['a', false], ['<', false]]);
    expect(() => new StopMatcher(['ok', ''])).toThrow(/StopMatcher: stops\[1\] must be a non-empty string, got ""/);
  });
});
