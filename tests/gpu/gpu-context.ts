// Shared by the GPU test files: one Dawn device for the whole suite. The gpu project runs its files one after another
// in one process (vitest.config.ts: isolate false), so the pipelines a file compiled (src/gpu/dispatch.ts caches them
// per device) are not compiled again by the next one: on SwiftShader compiling is most of a small test's time.
// No adapter → the suite fails with the platform's explanation (never skips).
import { afterEach, beforeAll, expect } from 'vitest';
import type { ParamLayout } from '../../src/model/params.ts';
import type { GpuContext } from '../../src/platform/gpu.ts';
import { compareArrays, describeComparison } from '../../src/util/allclose.ts';
import { acquireNodeGpu } from '../../src/platform/node.ts';

const shared = globalThis as { distillTestGpu?: Promise<GpuContext> };

/** The suite's device (released when the test process exits); a lost or destroyed one is replaced. */
function sharedGpu(): Promise<GpuContext> {
  return shared.distillTestGpu ??= acquireNodeGpu().then((ctx) => {
    void ctx.device.lost.then(() => { shared.distillTestGpu = undefined; });
    return ctx;
  });
}

export function useGpu(): () => GpuContext {
  let ctx: GpuContext | undefined;
  beforeAll(async () => { ctx = await sharedGpu(); });
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

/** Every parameter's GPU gradient against the reference's, per tensor: atol 1e-5·max|ref grad|, rtol 1e-3. */
export function expectGradsMatch(layout: ParamLayout, grads: Float32Array, ref: Float64Array): void {
  const maxG = ref.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
  for (const e of layout.entries) {
    const cmp = compareArrays(grads.subarray(e.offset, e.offset + e.size), ref.subarray(e.offset, e.offset + e.size), { atol: 1e-5 * maxG, rtol: 1e-3 });
    expect(cmp.ok, `d${e.name}: ${describeComparison(cmp)}`).toBe(true);
  }
}
