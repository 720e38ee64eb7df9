// The page's one engine worker (workers/engine.worker.ts): GPU work, training runs, evaluation and export happen
// there, behind the typed EngineApi of src/protocol.ts (comlink). Callbacks (progress, run events) cross as
// comlink proxies; a worker that fails to start reports through onEngineError.
import * as Comlink from 'comlink';
import type { EngineApi } from '../protocol.ts';

let remote: Comlink.Remote<EngineApi> | null = null;
const errorListeners = new Set<(e: Error) => void>();

export function engine(): Comlink.Remote<EngineApi> {
  if (!remote) {
    const w = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    w.addEventListener('error', (e) => {
      const err = new Error(`the engine worker failed to start: ${e.message || 'script error'}. Reload the page; if it persists, this browser cannot run the engine.`);
      for (const fn of errorListeners) fn(err);
    });
    remote = Comlink.wrap<EngineApi>(w);
  }
  return remote;
}

export function onEngineError(fn: (e: Error) => void): () => void {
  errorListeners.add(fn);
  return () => errorListeners.delete(fn);
}

/** A callback made callable from the worker. */
export const proxy = <T extends (...args: never[]) => unknown>(fn: T): T => Comlink.proxy(fn);

/** Picked model files for the engine (engine().holdFolder): their bytes move to the worker, not copied. */
export const transferFiles = (files: Record<string, Uint8Array>): Record<string, Uint8Array> =>
  Comlink.transfer(files, [...new Set(Object.values(files).map((b) => b.buffer as ArrayBuffer))]);
