// The page's one teacher worker (workers/teacher.worker.ts), shared by the Teacher stage and the Data stage, and
// WorkerTeacher: the elicitation layer's TeacherLike on top of it. The worker holds one model at a time; the
// Teacher stage loads it through loadTeacher(), which also remembers where it came from, so a Data job can store
// that source and load the same model again after a reload (a folder or a Hub id; picked files cannot be).
// Calls through one WorkerTeacher run one at a time: the worker aborts a running generation when a new one starts.
// Every load is announced to onTeacherLoad() listeners (start, progress, done, error): the Teacher stage shows and
// activates what the worker holds, whoever loaded it.
import * as Comlink from 'comlink';
import type { TeacherLike } from '../../elicit/types.ts';
import type { LocalLoadProgress, LocalModelSource, LocalTeacherInfo, TeacherLoadOptions, TeacherWorkerApi } from '../../teacher/local-protocol.ts';
import type { ChatMessage, ChatOptions, ChatResult } from '../../teacher/types.ts';
import { listeners } from '../listeners.ts';

/** A teacher source that can be loaded again without the user (after a reload). */
export type ReloadableSource = { kind: 'folder'; location: string } | { kind: 'hub'; id: string; revision?: string };

let remote: Comlink.Remote<TeacherWorkerApi> | null = null;
const errorListeners = new Set<(e: Error) => void>();
let current: { info: LocalTeacherInfo; source: ReloadableSource | null } | null = null;

/** The page's teacher worker, started on first use. */
export function teacherWorker(): Comlink.Remote<TeacherWorkerApi> {
  if (!remote) {
    const w = new Worker(new URL('../../../workers/teacher.worker.ts', import.meta.url), { type: 'module', name: 'teacher' });
    w.addEventListener('error', (e) => {
      const err = new Error(`teacher worker failed to start: ${e.message || 'its script could not be loaded (was the app updated while this page was open? reload the page)'}`);
      for (const fn of errorListeners) fn(err);
    });
    remote = Comlink.wrap<TeacherWorkerApi>(w);
  }
  return remote;
}

/** Called when the worker itself fails (a script error, not a failed call). Returns an unsubscribe function. */
export function onTeacherWorkerError(fn: (e: Error) => void): () => void {
  errorListeners.add(fn);
  return () => errorListeners.delete(fn);
}

/** The part of a load's source that can be loaded again without the user (picked files cannot): null for those. */
export function reloadableOf(source: LocalModelSource): ReloadableSource | null {
  if (source.kind === 'folder') return { kind: 'folder', location: source.location };
  if (source.kind === 'hub') return { kind: 'hub', id: source.id, ...(source.revision !== undefined ? { revision: source.revision } : {}) };
  return null;
}

/** A reloadable source read back from stored JSON (a job's teacher ref, a preference); null when it is none. */
export function reloadableSource(v: unknown): ReloadableSource | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.kind === 'folder' && typeof o.location === 'string') return { kind: 'folder', location: o.location };
  if (o.kind === 'hub' && typeof o.id === 'string') return { kind: 'hub', id: o.id, ...(typeof o.revision === 'string' ? { revision: o.revision } : {}) };
  return null;
}

/** What happens to the worker's model, whoever asked for the load (the Teacher stage, a Data job, a reload). */
export type TeacherLoadEvent =
  | { id: number; phase: 'start'; source: LocalModelSource; opts: TeacherLoadOptions }
  | { id: number; phase: 'progress'; progress: LocalLoadProgress }
  | { id: number; phase: 'done'; source: LocalModelSource; info: LocalTeacherInfo }
  | { id: number; phase: 'error'; source: LocalModelSource; error: unknown };

const loadEvents = listeners<TeacherLoadEvent>('teacher load');
const emitLoad = loadEvents.emit;
let loadCount = 0;

/** Called (synchronously) at every step of every load. Returns an unsubscribe function. */
export const onTeacherLoad = loadEvents.on;

/** The id of the newest load (a listener ignores events of older ones). */
export function latestLoadId(): number {
  return loadCount;
}

/** Loads `source` into the shared worker (replacing its model) and remembers the source for later reloads. */
export async function loadTeacher(source: LocalModelSource, opts: TeacherLoadOptions, onProgress?: (p: LocalLoadProgress) => void): Promise<LocalTeacherInfo> {
  current = null;
  const id = ++loadCount;
  emitLoad({ id, phase: 'start', source, opts });
  try {
    const info = await teacherWorker().load(source, opts, Comlink.proxy((p: LocalLoadProgress) => {
      onProgress?.(p);
      emitLoad({ id, phase: 'progress', progress: p });
    }));
    if (id === loadCount) current = { info, source: reloadableOf(source) };
    emitLoad({ id, phase: 'done', source, info });
    return info;
  } catch (e) {
    emitLoad({ id, phase: 'error', source, error: e });
    throw e;
  }
}

/** The model loadTeacher() last loaded in this page, and its source (null for picked files); null if none. */
export function loadedTeacher(): { info: LocalTeacherInfo; source: ReloadableSource | null } | null {
  return current;
}

function abortError(): Error {
  const e = new Error('the request was aborted');
  e.name = 'AbortError';
  return e;
}

/** The worker's 'aborted' TeacherError arrives as a plain Error with that name (comlink keeps name and message). */
function wasAborted(e: unknown): boolean {
  const err = e as { name?: unknown; message?: unknown } | null;
  return err?.name === 'TeacherError' && typeof err.message === 'string' && /aborted/.test(err.message);
}

/**
 * TeacherLike over the shared worker. An AbortSignal cannot cross to the worker: aborting one stops the worker's
 * running generation instead. A call aborted by someone else (the Teacher stage started its own generation, or
 * loaded another model) is asked again, up to `preemptRetries` times; `settings.model` follows the model that
 * answered last.
 */
export class WorkerTeacher implements TeacherLike {
  #model: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(model: string, readonly preemptRetries = 3) {
    this.#model = model;
  }

  /** baseURL '' (provenance: no host for a local model); one request at a time is what the worker runs. */
  get settings(): { model: string; baseURL: string; maxConcurrency: number; kind: 'transformers-js' } {
    return { model: this.#model, baseURL: '', maxConcurrency: 1, kind: 'transformers-js' };
  }

  chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    const p = this.#queue.then(() => this.#chat(messages, opts));
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async #chat(messages: ChatMessage[], opts: ChatOptions): Promise<ChatResult> {
    const { signal, onDelta: _onDelta, ...rest } = opts;
    const api = teacherWorker();
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError();
      const onAbort = (): void => void api.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const r = await api.chat(messages, rest);
        this.#model = r.model;
        return r;
      } catch (e) {
        if (signal?.aborted) throw abortError();
        if (!wasAborted(e) || attempt >= this.preemptRetries) throw e;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    }
  }
}
