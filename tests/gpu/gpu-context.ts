// Shared by the GPU test files: one Dawn device per file (acquired in beforeAll, released in afterAll).
// No adapter → the suite fails with the platform's explanation (never skips).
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { GpuContext } from '../../src/platform/gpu.ts';
import { acquireNodeGpu } from '../../src/platform/node.ts';

export function useGpu(): () => GpuContext {
  let ctx: GpuContext | undefined;
  beforeAll(async () => { ctx = await acquireNodeGpu(); });
  afterAll(() => ctx?.release());
  // A GPU error no error scope caught fails the test that caused it (a dispatch that failed validation does nothing).
  afterEach(async () => {
    if (!ctx) return;
    await ctx.device.queue.onSubmittedWorkDone();
    expect(ctx.takeErrors(), 'uncaptured WebGPU errors').toEqual([]);
  });
  return () => {
    if (!ctx) throw new Error('GPU context not acquired (beforeAll failed)');
    return ctx;
  };
}

/** Runs a KernelCheck and returns a message listing the failing comparisons ('' when all pass). */
export function failures(cmps: { name: string; ok: boolean; failures: number; count: number; worstIndex: number; worstActual: number; worstExpected: number; worstRatio: number }[]): string {
  return cmps.filter((c) => !c.ok).map((c) =>
    `${c.name}: ${c.failures}/${c.count} out of tolerance; worst [${c.worstIndex}] got ${c.worstActual} expected ${c.worstExpected} (err/bound ${c.worstRatio.toFixed(2)})`).join('\n');
}
