// llama.cpp runs our quantized GGUF exports (bench/quant.ts at a small size, on the small fixture teacher so that CI
// stays cheap; the shipped teacher's figures are bench/quant-brown-teacher-*.json): node-llama-cpp loads each file
// and its perplexity on held-out Brown text (4 windows of 128 tokens) is within 1% of F16's for Q8_0 and within
// 10% for Q4_0 and Q4_K_M; F16 within 0.1% of F32; the files shrink as they should.
// Measured here: F32 292.773, F16 292.771, Q8_0 292.685, Q4_K_M 293.037, Q4_0 293.031 (ratios to F16 ≤ 1.001).
import { afterAll, describe, expect, it } from 'vitest';
import { runQuantBench, type QuantBenchResult } from '../../bench/quant.ts';
import { closeLlamaCpp } from '../support/llama-cpp.ts';

afterAll(() => closeLlamaCpp());

describe('llama.cpp perplexity of the quantized exports (fixture teacher)', { timeout: 300_000 }, () => {
  let res: QuantBenchResult;
  const row = (d: string) => res.rows.find((r) => r.dtype === d)!;

  it('loads every format and measures held-out perplexity', async () => {
    res = await runQuantBench({ model: 'tests/fixtures/brown-teacher-small', windows: 4, windowTokens: 128 });
    console.log(res.rows.map((r) => `${r.dtype} ${r.bytes} B ppl ${r.ppl.toFixed(3)} ×F16 ${r.ratio!.toFixed(4)}`).join('\n'));
    expect(res.rows.map((r) => r.dtype)).toEqual(['F32', 'F16', 'Q8_0', 'Q4_K_M', 'Q4_0']);
    expect(res.heldOut.predictedTokens).toBe(4 * 127);
    // A trained model: far below the uniform perplexity of its 1024-token vocabulary.
    expect(row('F32').ppl).toBeLessThan(400);
  });

  it('F16 within 0.1% of F32, Q8_0 within 1% of F16, Q4_0 and Q4_K_M within 10%', () => {
    expect(Math.abs(row('F16').ppl / row('F32').ppl - 1)).toBeLessThan(0.001);
    expect(Math.abs(row('Q8_0').ratio! - 1)).toBeLessThan(0.01);
    expect(Math.abs(row('Q4_0').ratio! - 1)).toBeLessThan(0.1);
    expect(Math.abs(row('Q4_K_M').ratio! - 1)).toBeLessThan(0.1);
  });

  it('sizes: F32 > F16 > Q8_0 > Q4_K_M > Q4_0', () => {
    const b = ['F32', 'F16', 'Q8_0', 'Q4_K_M', 'Q4_0'].map((d) => row(d).bytes);
    expect([...b].sort((p, q) => q - p)).toEqual(b);
  });
});
