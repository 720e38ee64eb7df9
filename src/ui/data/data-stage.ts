// The Data stage: elicitation jobs into IndexedDB, import, the dataset browser and dataset export.
import { dataPanel } from './data-panel.ts';

export function dataStage(): Node {
  return dataPanel();
}
