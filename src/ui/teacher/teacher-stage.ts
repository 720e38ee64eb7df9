// The Teacher stage: a local model (transformers.js in its own worker) or a remote OpenAI-compatible API.
import { teacherPanel } from './local-panel.ts';

export function teacherStage(): Node {
  return teacherPanel();
}
