// The engine behind the EngineApi protocol, given a way to acquire the GPU (browser or Node). Runs in the
// app's worker and in-thread in Node (CLI, tests).
import type { EngineApi } from '../protocol.ts';
import type { GpuContext } from '../platform/gpu.ts';
import { runExport } from './export.ts';
import { runSelftest } from './selftest.ts';

const notYet = async (): Promise<never> => {
  throw new Error('training runs are not built yet');
};

export function createEngine(acquire: () => Promise<GpuContext>): EngineApi & { gpu(): Promise<GpuContext> } {
  let ctx: Promise<GpuContext> | undefined;
  const gpu = () => {
    ctx ??= acquire().catch((e) => {
      ctx = undefined; // allow a retry after the user fixes the cause
      throw e;
    });
    return ctx;
  };
  return {
    gpu,
    async gpuInfo() {
      return (await gpu()).report;
    },
    async selftest(onProgress) {
      const { device } = await gpu();
      return runSelftest(device, { onProgress });
    },
    exportModel: (req, onProgress) => runExport(req, onProgress),
    planRun: notYet, createRun: notYet, runRun: notYet, pauseRun: notYet, listRuns: async () => [], runHistory: notYet,
    deleteRun: notYet, evaluate: notYet, generate: notYet, sampleStudent: notYet,
  };
}
