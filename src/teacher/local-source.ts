// Where a local (transformers.js) teacher comes from, and the transformers.js `env` settings that load it:
//   folder  a URL folder served with the app ('models/brown-teacher/', resolved against a base URL): loaded as a
//           self-hosted "remote" model (env.remoteHost = its parent URL, model id = its name), no caches (a folder
//           that changes after a retrain must not come back stale from the Cache API); or, in Node, a directory:
//           env.localModelPath = its parent, local files only, no caches;
//   hub     a Hugging Face Hub id: remote models allowed, local lookups off, the library's own caches on;
//   files   files the user picked (local-files.ts): mounted under a virtual origin through env.customCache and
//           env.fetch, no caches, local only.
// `env` is one global object, so withSourceEnv() runs one load at a time and restores every field it set.
import { env } from '@huggingface/transformers';
import { isNode } from '../platform/env.ts';
import { normalizePickedFiles, PICKED_ORIGIN, VirtualFolder, type PickedFiles } from './local-files.ts';

export type LocalModelSource =
  | { kind: 'folder'; location: string }
  | { kind: 'hub'; id: string; revision?: string }
  | { kind: 'files'; files: PickedFiles; name?: string };

/** A source resolved to what from_pretrained takes, plus names for the UI and provenance. */
export interface ResolvedSource {
  kind: LocalModelSource['kind'];
  /** The first argument of from_pretrained. */
  modelId: string;
  /** Shown to the user and used as the teacher's model name. */
  label: string;
  /** For provenance (TeacherLike.settings.baseURL): the folder URL, the hub URL, or the virtual origin. */
  baseURL: string;
  revision?: string;
  /** The folder's files (kind 'files'). */
  virtual?: VirtualFolder;
  /** env.localModelPath for a directory (Node) and picked files. */
  localModelPath?: string;
  /**
   * env.remoteHost for a URL folder: its parent URL, with remotePathTemplate '{model}/'. The folder is loaded as a
   * "remote" model from our own server, the way transformers.js documents self-hosting: its local-file path skips
   * existence checks of http URLs (get_file_metadata), so tokenizer files there would be reported missing.
   */
  remoteHost?: string;
}

// transformers.js's repo-id rule (REPO_ID_REGEX plus its '..' / '--' exclusions), for one path segment.
const SEGMENT = /^[\w\-.]{1,96}$/;
const validSegment = (s: string) => SEGMENT.test(s) && !s.includes('..') && !s.includes('--') && !/^[-.]|[-.]$/.test(s);

function fail(msg: string): never {
  throw new Error(`local teacher source: ${msg}`);
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

let virtualCount = 0;

/**
 * Resolves a source. A relative folder location is resolved against `baseUrl` (the page's document.baseURI: a
 * worker's own location is its script's URL, not the app's) or, without one and outside a browser, used as a
 * directory path.
 */
export function resolveSource(src: LocalModelSource, baseUrl?: string): ResolvedSource {
  if (typeof src !== 'object' || src === null) fail('expected {kind: "folder" | "hub" | "files", ...}');
  switch (src.kind) {
    case 'folder': {
      const loc = src.location;
      if (typeof loc !== 'string' || loc.trim() === '') fail('folder: location is empty');
      const asUrl = isHttpUrl(loc) ? loc : baseUrl !== undefined ? new URL(loc, baseUrl).href : undefined;
      if (asUrl !== undefined) {
        if (!isHttpUrl(asUrl)) fail(`folder: ${JSON.stringify(asUrl)} is not an http(s) URL`);
        const u = new URL(asUrl);
        u.search = '';
        u.hash = '';
        if (!u.pathname.endsWith('/')) u.pathname += '/';
        const segs = u.pathname.split('/').filter(Boolean);
        const name = decodeURIComponent(segs.at(-1) ?? '');
        if (!validSegment(name)) fail(`folder: the folder name ${JSON.stringify(name)} must be 1–96 letters, digits, '-', '_' or '.' (transformers.js's rule; no '--' or '..')`);
        return { kind: 'folder', modelId: name, label: name, baseURL: u.href, remoteHost: new URL('../', u).href };
      }
      if (!isNode()) fail(`folder: ${JSON.stringify(loc)} is relative and no base URL was given`);
      const path = loc.replace(/[\\/]+$/, '');
      const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
      const name = path.slice(cut + 1);
      if (!validSegment(name)) fail(`folder: the directory name ${JSON.stringify(name)} must be 1–96 letters, digits, '-', '_' or '.' (transformers.js's rule; no '--' or '..')`);
      return { kind: 'folder', modelId: name, label: name, baseURL: `file://${path}/`, localModelPath: cut >= 0 ? path.slice(0, cut + 1) : './' };
    }
    case 'hub': {
      const id = src.id;
      const parts = typeof id === 'string' ? id.split('/') : [];
      if (parts.length < 1 || parts.length > 2 || !parts.every(validSegment)) fail(`hub: ${JSON.stringify(id)} is not a Hub model id like "owner/name"`);
      if (src.revision !== undefined && (typeof src.revision !== 'string' || src.revision === '')) fail('hub: revision must be a non-empty string');
      return {
        kind: 'hub', modelId: id, label: id, baseURL: `https://huggingface.co/${id}`,
        ...(src.revision !== undefined ? { revision: src.revision } : {}),
      };
    }
    case 'files': {
      const files = normalizePickedFiles(src.files);
      const id = `picked${++virtualCount}`;
      const label = typeof src.name === 'string' && src.name.trim() !== '' ? src.name.trim() : 'picked files';
      return { kind: 'files', modelId: id, label, baseURL: `${PICKED_ORIGIN}${id}/`, virtual: new VirtualFolder(id, files), localModelPath: PICKED_ORIGIN };
    }
    default:
      fail(`unknown kind ${JSON.stringify((src as { kind: unknown }).kind)} (folder, hub, files)`);
  }
}

/** An in-memory stand-in for the Cache API, for one load: put reads the body, match answers copies. */
class LoadCache {
  readonly #store = new Map<string, { body: ArrayBuffer; headers: [string, string][] }>();
  async match(key: string): Promise<Response | undefined> {
    const hit = this.#store.get(String(key));
    return hit ? new Response(hit.body.slice(0), { status: 200, headers: hit.headers }) : undefined;
  }
  async put(key: string, response: Response): Promise<void> {
    this.#store.set(String(key), { body: await response.arrayBuffer(), headers: [...response.headers.entries()] });
  }
}

const ENV_KEYS = [
  'allowLocalModels', 'allowRemoteModels', 'localModelPath', 'remoteHost', 'remotePathTemplate', 'useBrowserCache', 'useFSCache',
  'useCustomCache', 'customCache', 'fetch',
] as const;

let chain: Promise<unknown> = Promise.resolve();

/** Runs `fn` with env set up for `r`, one at a time; every env field set is restored afterwards. */
export function withSourceEnv<T>(r: ResolvedSource, fn: () => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const e = env as unknown as Record<string, unknown>;
    const saved = ENV_KEYS.map((k) => [k, e[k]] as const);
    try {
      if (r.kind === 'hub') {
        Object.assign(e, { allowLocalModels: false, allowRemoteModels: true, useCustomCache: false });
      } else if (r.remoteHost !== undefined) {
        Object.assign(e, {
          allowLocalModels: false, allowRemoteModels: true, remoteHost: r.remoteHost, remotePathTemplate: '{model}/',
          useBrowserCache: false, useFSCache: false, useCustomCache: false,
        });
        // In Node, transformers.js hands ONNX Runtime a file path, which for a fetched file it takes from a cache:
        // give it one that lives only for this load.
        if (isNode()) Object.assign(e, { useCustomCache: true, customCache: new LoadCache() });
      } else {
        Object.assign(e, {
          allowLocalModels: true, allowRemoteModels: false, localModelPath: r.localModelPath,
          useBrowserCache: false, useFSCache: false, useCustomCache: false,
        });
        if (r.virtual) {
          const prev = e.fetch as (input: string | URL, init?: unknown) => Promise<Response>;
          Object.assign(e, { useCustomCache: true, customCache: r.virtual.cache, fetch: r.virtual.fetchWith(prev) });
        }
      }
      return await fn();
    } finally {
      for (const [k, v] of saved) e[k] = v;
    }
  };
  const p = chain.then(run, run);
  chain = p.catch(() => undefined);
  return p;
}
