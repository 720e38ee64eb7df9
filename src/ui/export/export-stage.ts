// The Export stage: a model and a format; the engine worker builds the files.
import { engine, proxy } from '../engine-client.ts';
import { exportPanel } from './export-panel.ts';

export function exportStage(): Node {
  return exportPanel({ exportModel: (req, onProgress) => engine().exportModel(req, onProgress ? proxy(onProgress) : undefined) });
}
