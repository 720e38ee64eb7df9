// The Export stage: a model and a format; the engine worker builds the files.
import { on } from '../app-state.ts';
import { engine, proxy } from '../engine-client.ts';
import { exportPanel } from './export-panel.ts';

export function exportStage(): Node {
  return exportPanel({
    exportModel: (req, onProgress) => engine().exportModel(req, onProgress ? proxy(onProgress) : undefined),
    runs: async () => (await engine().listRuns()).filter((r) => r.checkpointStep > 0).map((r) => ({ id: r.id, name: r.name, step: r.checkpointStep })),
    onRunsChange: (fn) => { on('runs', fn); },
  });
}
