// The engine behind the EngineApi protocol, given a way to acquire the GPU (browser or Node). Runs in the
// app's worker and in-thread in Node (CLI, tests). Training runs live in src/engine/runs/.
import type { EngineApi } from '../protocol.ts';
import type { GpuContext } from '../platform/gpu.ts';
import { runExport } from './export.ts';
import { holdFolder, releaseFolder } from './held-folders.ts';
import { RunsEngine, type RunsEngineOptions } from './runs/runs.ts';
import { ALL_CHECKS, QUICK_CHECKS } from './checks.ts';
import { runSelftest } from './selftest.ts';

export function createEngine(acquire: () => Promise<GpuContext>, opts: RunsEngineOptions = {}): EngineApi & { gpu(): Promise<GpuContext> } {
  let ctx: Promise<GpuContext> | undefined;
  const gpu = () => {
    ctx ??= acquire().catch((e) => {
      ctx = undefined; // allow a retry after the user fixes the cause
      throw e;
    });
    return ctx;
  };
  const runs = new RunsEngine(gpu, opts);
  return {
    gpu,
    async gpuInfo() {
      return (await gpu()).report;
    },
    async selftest(onProgress, scope = 'full') {
      const { device } = await gpu();
      return runSelftest(device, { onProgress, checks: scope === 'quick' ? QUICK_CHECKS : ALL_CHECKS });
    },
    exportModel: (req, onProgress) => ('runId' in req.source ? runs.exportRun(req.source.runId, req.format, req.name, onProgress) : runExport(req, onProgress)),
    planRun: (spec, onProgress) => runs.planRun(spec, onProgress),
    holdFolder: async (files) => holdFolder(files),
    releaseFolder: async (key) => releaseFolder(key),
    createRun: (spec, onProgress) => runs.createRun(spec, onProgress),
    runRun: (id, onEvent, judge) => runs.runRun(id, onEvent, judge),
    pauseRun: (id) => runs.pauseRun(id),
    listRuns: () => runs.listRuns(),
    runHistory: (id) => runs.runHistory(id),
    deleteRun: (id) => runs.deleteRun(id),
    evaluate: (req, onProgress) => runs.evaluate(req, onProgress),
    compareFormats: (runId, onProgress) => runs.compareFormats(runId, onProgress),
    generate: (req) => runs.generate(req),
    sampleStudent: (id, prompt, k, o) => runs.sampleStudent(id, prompt, k, o),
  };
}
