// A model folder served over HTTP — the embedded teacher, any static folder, or the Hugging Face Hub's
// `<id>/resolve/<revision>/` URLs — fetched the way a page that downloads hundreds of MB must: with progress in
// bytes, in chunks of CHUNK bytes by HTTP Range, each chunk kept in Cache Storage as it arrives (keyed by the URL
// and the file's ETag, which the Hub sets to the file's hash: a new version is a new key), so a reload or a dropped
// connection resumes at the chunk it stopped at and a second run needs no weight bytes from the network. Small
// files (config, tokenizer) are fetched fresh each time and read from the cache only when the network fails.
// What a folder needs: config.json, the weights (model.safetensors, or the shards its index names) and
// tokenizer.json; tokenizer_config.json when it has one. A server that ignores Range gets one whole GET.
import { heldFolder } from './held-folders.ts';
import type { ModelFolderSource } from './runs/types.ts';

/** Bytes per downloaded (and cached) piece. */
export const CHUNK = 16 * 1024 * 1024;
/** The Cache Storage cache the pieces live in (bump the version to drop what older pages stored). */
export const MODEL_CACHE = 'distill-models-v1';

/** What a download reports: a line for people, and bytes so far of the folder's known total. */
export interface FetchProgress {
  message: string;
  loaded: number;
  total: number;
}

/** The part of the Cache Storage API this uses (the global `caches` in pages and workers; a Map in tests). */
export interface PieceCache {
  match(key: string): Promise<Response | undefined>;
  put(key: string, res: Response): Promise<void>;
}

export interface FetchOptions {
  onProgress?: (p: FetchProgress) => void;
  /** Default: Cache Storage's MODEL_CACHE where the platform has it; none in Node. */
  cache?: PieceCache | null;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Bytes per piece (default CHUNK; tests use small ones). */
  chunk?: number;
}

/** The resolve URL of a Hub model (`org/name`, optional revision), where its files are served. */
export function hubUrl(id: string, revision = 'main', host = 'https://huggingface.co'): string {
  if (!/^[\w.-]+\/[\w.-]+$/.test(id)) throw new Error(`"${id}" is not a Hub model id (owner/name, e.g. HuggingFaceTB/SmolLM2-135M)`);
  return `${host.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}/`;
}

async function defaultCache(): Promise<PieceCache | null> {
  const c = (globalThis as { caches?: CacheStorage }).caches;
  if (!c) return null;
  try {
    const cache = await c.open(MODEL_CACHE);
    return { match: (k) => cache.match(k), put: (k, r) => cache.put(k, r) };
  } catch {
    return null; // storage blocked (private mode, opaque origin): download without keeping pieces
  }
}

/** The files of a model folder: fetched (resumably, cached) from a served folder, or the picked files as given. */
export async function readModelFolder(source: ModelFolderSource, o: FetchOptions | ((m: string) => void) = {}): Promise<Map<string, Uint8Array>> {
  if ('held' in source) return new Map(Object.entries(heldFolder(source.held)));
  if ('files' in source) return new Map(Object.entries(source.files));
  const opts = typeof o === 'function' ? { onProgress: (p: FetchProgress) => o(p.message) } : o;
  return new FolderFetch(source.url, opts.cache === undefined ? await defaultCache() : opts.cache, opts).run();
}

class FolderFetch {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private loaded = 0;
  private total = 0;

  constructor(base: string, private readonly cache: PieceCache | null, private readonly o: FetchOptions) {
    this.base = base.endsWith('/') ? base : `${base}/`;
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private url(name: string): string {
    return new URL(name, this.base).href;
  }

  private report(message: string): void {
    this.o.onProgress?.({ message, loaded: this.loaded, total: this.total });
  }

  private async get(url: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.fetch(url, { ...init, ...(this.o.signal ? { signal: this.o.signal } : {}) });
    } catch (e) {
      if (this.o.signal?.aborted) throw e;
      throw new Error(`cannot fetch ${url}: ${(e as Error).message} (offline, or the server does not allow this page: CORS). What was downloaded is kept; try again to resume`);
    }
  }

  /** A small file whole (JSON), or undefined on 404 when optional; the cached copy when the network fails. */
  private async small(name: string, optional: boolean): Promise<Uint8Array | undefined> {
    const url = this.url(name);
    this.report(`fetching ${name}`);
    let res: Response;
    try {
      res = await this.get(url);
    } catch (e) {
      const cached = await this.cache?.match(url);
      if (cached) return new Uint8Array(await cached.arrayBuffer());
      throw e;
    }
    if (res.status === 404 && optional) return undefined;
    if (!res.ok) throw this.httpError(url, res, name);
    const bytes = new Uint8Array(await res.arrayBuffer());
    await this.cache?.put(url, new Response(bytes.slice())).catch(() => undefined);
    return bytes;
  }

  private httpError(url: string, res: Response, name: string): Error {
    const why = res.status === 401 || res.status === 403 ? ': the model is gated or private (open it on the Hub and accept its terms, or pick its files from disk)'
      : res.status === 404 ? `: no ${name} there (is this an HF model folder with safetensors weights?)` : '';
    return new Error(`${url} answered HTTP ${res.status}${why}`);
  }

  /** A weight file's size and version (HEAD: content-length, ETag); size undefined when the server does not say. */
  private async describe(name: string, head?: Response): Promise<WeightFile> {
    const url = this.url(name);
    head ??= await this.get(url, { method: 'HEAD' });
    if (!head.ok) throw this.httpError(url, head, name);
    const n = Number(head.headers.get('x-linked-size') ?? head.headers.get('content-length'));
    return { name, url, size: Number.isFinite(n) && n > 0 ? n : undefined, version: head.headers.get('etag') ?? '' };
  }

  /** A large file in CHUNK-byte pieces, each cached as it arrives (key `<url>#<etag>#<start>`). */
  private async big({ name, url, size, version }: WeightFile): Promise<Uint8Array> {
    const keyOf = (start: number | 'whole') => `${url}#${version}#${start}`;
    if (size === undefined) {
      // Unknown size: one whole GET (cached as one piece).
      const cached = await this.cache?.match(keyOf('whole'));
      if (cached) { const b = new Uint8Array(await cached.arrayBuffer()); this.loaded += b.length; return b; }
      this.report(`fetching ${name}`);
      const res = await this.get(url);
      if (!res.ok) throw this.httpError(url, res, name);
      const b = new Uint8Array(await res.arrayBuffer());
      this.loaded += b.length;
      await this.cache?.put(keyOf('whole'), new Response(b.slice())).catch(() => undefined);
      return b;
    }
    const out = new Uint8Array(size);
    const chunk = this.o.chunk ?? CHUNK;
    for (let start = 0; start < size; start += chunk) {
      const end = Math.min(size, start + chunk);
      const key = keyOf(start);
      let piece: Uint8Array | undefined;
      const cached = await this.cache?.match(key);
      if (cached) {
        piece = new Uint8Array(await cached.arrayBuffer());
        if (piece.length !== end - start) piece = undefined; // a piece of another version of the file: fetch again
      }
      if (!piece) {
        this.report(`downloading ${name}: ${mib(this.loaded)} of ${mib(this.total)}`);
        const res = await this.get(url, { headers: { Range: `bytes=${start}-${end - 1}` } });
        if (!res.ok) throw this.httpError(url, res, name);
        const body = new Uint8Array(await res.arrayBuffer());
        if (res.status === 200) {
          // The server ignored Range and sent the whole file.
          if (body.length !== size) throw new Error(`${url}: the server sent ${body.length} bytes, its size is ${size}`);
          this.loaded += size - start;
          out.set(body.subarray(start), start);
          break;
        }
        if (body.length !== end - start) throw new Error(`${url}: asked for bytes ${start}–${end - 1}, got ${body.length} bytes`);
        piece = body;
        await this.cache?.put(key, new Response(piece.slice())).catch(() => undefined);
      }
      out.set(piece, start);
      this.loaded += piece.length;
      this.report(`downloading ${name}: ${mib(this.loaded)} of ${mib(this.total)}`);
    }
    return out;
  }

  async run(): Promise<Map<string, Uint8Array>> {
    const files = new Map<string, Uint8Array>();
    for (const name of ['config.json', 'tokenizer.json']) files.set(name, (await this.small(name, false))!);
    const tc = await this.small('tokenizer_config.json', true);
    if (tc) files.set('tokenizer_config.json', tc);
    // The weights: model.safetensors, or the shards of model.safetensors.index.json.
    let weights: WeightFile[];
    const single = await this.get(this.url('model.safetensors'), { method: 'HEAD' });
    if (single.status === 404) {
      const index = await this.small('model.safetensors.index.json', true);
      if (!index) throw new Error(`${this.base} has neither model.safetensors nor model.safetensors.index.json: only safetensors weights can be loaded`);
      files.set('model.safetensors.index.json', index);
      const map = (JSON.parse(new TextDecoder().decode(index)) as { weight_map?: Record<string, string> }).weight_map ?? {};
      weights = await Promise.all([...new Set(Object.values(map))].sort().map((w) => this.describe(w)));
    } else weights = [await this.describe('model.safetensors', single)];
    this.total = weights.reduce((s, w) => s + (w.size ?? 0), 0);
    for (const w of weights) files.set(w.name, await this.big(w));
    this.report(`downloaded ${weights.length === 1 ? 'the weights' : `${weights.length} weight files`} (${mib(this.total || this.loaded)})`);
    return files;
  }
}

interface WeightFile {
  name: string;
  url: string;
  size: number | undefined;
  /** The server's ETag ('' when none): a piece of another version has another key. */
  version: string;
}

const mib = (n: number) => `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MiB`;
