// The engine worker: the EngineApi exposed over comlink, GPU work off the page's main thread.
import * as Comlink from 'comlink';
import { createEngine } from '../src/engine/engine.ts';
import { acquireBrowserGpu } from '../src/platform/browser.ts';
import type { EngineApi } from '../src/protocol.ts';

const engine = createEngine(() => acquireBrowserGpu());
const api: EngineApi = {
  ...engine,
  // The exported bytes move to the page (transferred, not copied).
  exportModel: async (req, onProgress) => {
    const res = await engine.exportModel(req, onProgress);
    return Comlink.transfer(res, [...new Set(res.files.map((f) => f.bytes.buffer as ArrayBuffer))]);
  },
};
Comlink.expose(api);
