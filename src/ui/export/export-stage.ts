// The Export stage: a model and a format; the engine worker builds the files. Its run list is the page's runs store,
// re-read when the stage comes into focus (the demo picks the run to export by saving the choice).
import { on } from '../app-state.ts';
import { engine, proxy } from '../engine-client.ts';
import { runsStore, trainedRuns } from '../runs-store.ts';
import { exportPanel } from './export-panel.ts';

export function exportStage(): Node {
  return exportPanel({
    exportModel: (req, onProgress) => engine().exportModel(req, onProgress ? proxy(onProgress) : undefined),
    compareFormats: (runId, onProgress) => engine().compareFormats(runId, onProgress ? proxy(onProgress) : undefined),
    runs: async () => trainedRuns(runsStore.list().length ? runsStore.list() : await runsStore.load()).map((r) => ({ id: r.id, name: r.name, step: r.checkpointStep, lora: !!r.train.lora })),
    onRunsChange: (fn) => {
      runsStore.subscribe((_, change) => { if (change !== 'step') fn(); });
      on('goto', (id) => { if (id === 'export') fn(); });
    },
  });
}
