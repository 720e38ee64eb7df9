// Files the user picked on disk (an <input type="file" webkitdirectory> FileList, or a Map of path → bytes) as a
// transformers.js model folder that never touches the network. normalizePickedFiles finds the folder's root (the
// shallowest config.json), drops what lies outside it, moves loose *.onnx files into onnx/ and checks that a
// text-generation folder is complete. The folder is then mounted under a virtual http origin that cannot resolve
// (RFC 6761 '.invalid'): transformers.js asks its custom cache (env.customCache: hits are served from memory,
// in Node too, where it wants a cached Response rather than a fetch) and, for files that are not there, its fetch
// (env.fetch: answered 404 here, so an optional file that is missing is skipped; nothing is ever sent out).

export type PickedFileData = Uint8Array | Blob;
/** A Map of relative path → bytes, or File objects (their webkitRelativePath, else their name, is the path). */
export type PickedFiles = ReadonlyMap<string, PickedFileData> | ArrayLike<File>;

/** Origin of the virtual folders (the .invalid TLD never resolves). */
export const PICKED_ORIGIN = 'http://picked-files.invalid/';
/** The most files one pick may hold (a model folder has a handful). */
export const MAX_PICKED_FILES = 10_000;

/** What a text-generation folder needs (plus at least one onnx/*.onnx). */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

function fail(msg: string): never {
  throw new Error(`picked files: ${msg}`);
}

function cleanPath(raw: string, i: number): string {
  if (typeof raw !== 'string' || raw.length === 0) fail(`entry ${i} has no path`);
  const parts = raw.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) fail(`entry ${i} has an empty path (${JSON.stringify(raw)})`);
  if (parts.some((p) => p === '..')) fail(`entry ${i}: '..' is not allowed in a path (${JSON.stringify(raw)})`);
  return parts.join('/');
}

function entriesOf(files: PickedFiles): Array<[string, PickedFileData]> {
  if (files instanceof Map) return [...(files as ReadonlyMap<string, PickedFileData>).entries()];
  if (typeof files !== 'object' || files === null || typeof (files as ArrayLike<File>).length !== 'number') {
    fail('expected a Map of path → bytes or a list of files');
  }
  const list = files as ArrayLike<File>;
  const out: Array<[string, PickedFileData]> = [];
  for (let i = 0; i < list.length; i++) {
    const f = list[i];
    if (typeof Blob === 'undefined' || !(f instanceof Blob)) fail(`entry ${i} is not a File`);
    const file = f as File;
    out.push([file.webkitRelativePath || file.name, file]);
  }
  return out;
}

/** The picked files as a model folder: relative path → data, rooted at the shallowest config.json. */
export function normalizePickedFiles(files: PickedFiles): Map<string, PickedFileData> {
  const entries = entriesOf(files);
  if (entries.length === 0) fail('no files were picked');
  if (entries.length > MAX_PICKED_FILES) fail(`${entries.length} files picked; a model folder has far fewer (limit ${MAX_PICKED_FILES})`);
  const all = new Map<string, PickedFileData>();
  entries.forEach(([p, data], i) => {
    if (!(data instanceof Uint8Array) && !(typeof Blob !== 'undefined' && data instanceof Blob)) fail(`entry ${i} (${p}) is neither bytes nor a File`);
    const path = cleanPath(p, i);
    if (all.has(path)) fail(`two entries have the path ${JSON.stringify(path)}`);
    all.set(path, data);
  });

  const configs = [...all.keys()].filter((p) => p === 'config.json' || p.endsWith('/config.json'));
  if (configs.length === 0) {
    fail(`no config.json among the ${all.size} picked files (${[...all.keys()].slice(0, 5).join(', ')}${all.size > 5 ? ', …' : ''}): pick the model's folder`);
  }
  const depth = (p: string) => p.split('/').length;
  const minDepth = Math.min(...configs.map(depth));
  const roots = configs.filter((p) => depth(p) === minDepth);
  if (roots.length > 1) fail(`several model folders were picked (${roots.join(', ')}): pick one`);
  const prefix = roots[0]!.slice(0, -'config.json'.length); // '' or 'folder/'

  const out = new Map<string, PickedFileData>();
  for (const [p, data] of all) if (p.startsWith(prefix)) out.set(p.slice(prefix.length), data);
  // Files picked one by one (no folder): the graph sits beside config.json, transformers.js looks in onnx/.
  if (![...out.keys()].some((p) => p.startsWith('onnx/'))) {
    for (const p of [...out.keys()]) {
      if (!p.includes('/') && /\.onnx(_data(_\d+)?)?$/.test(p)) {
        out.set(`onnx/${p}`, out.get(p)!);
        out.delete(p);
      }
    }
  }
  const missing: string[] = REQUIRED_FILES.filter((f) => !out.has(f));
  if (![...out.keys()].some((p) => /^onnx\/[^/]+\.onnx$/.test(p))) missing.push('onnx/*.onnx');
  if (missing.length) fail(`the model folder lacks ${missing.join(', ')} (it has ${[...out.keys()].join(', ')})`);
  return out;
}

/** The part of transformers.js's CacheInterface it calls: match and put (put is a no-op here). */
export interface VirtualCache {
  match(key: string): Promise<Response | undefined>;
  put(key: string, response: Response): Promise<void>;
}

type FetchFn = (input: string | URL, init?: unknown) => Promise<Response>;

function respond(data: PickedFileData): Response {
  const size = data instanceof Uint8Array ? data.byteLength : data.size;
  const body: BodyInit = data instanceof Uint8Array ? (data as Uint8Array<ArrayBuffer>) : data;
  return new Response(body, { status: 200, headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } });
}

/** A mounted folder: `base` (= PICKED_ORIGIN + id + '/') + relative path → the file. */
export class VirtualFolder {
  readonly base: string;
  readonly #files: ReadonlyMap<string, PickedFileData>;
  /** Paths transformers.js asked for that are not in the folder (the optional files it probes). */
  readonly misses: string[] = [];

  readonly #hubKey: RegExp;

  constructor(id: string, files: ReadonlyMap<string, PickedFileData>) {
    if (!/^\w+$/.test(id)) throw new Error(`picked files: folder id ${JSON.stringify(id)} must be letters, digits or '_'`);
    this.base = `${PICKED_ORIGIN}${id}/`;
    this.#hubKey = new RegExp(`^https?://[^/]+/(?:.*/)?${id}/resolve/[^/]+/(.+)$`);
    this.#files = files;
  }

  /**
   * The folder-relative path of a URL under this folder, else undefined. transformers.js asks its cache under the
   * local path (base + path) and, after a hit, again under the Hub-style key (…/<id>/resolve/<revision>/<path>).
   */
  pathOf(url: string): string | undefined {
    let rest: string | undefined;
    if (url.startsWith(this.base)) rest = url.slice(this.base.length);
    else rest = this.#hubKey.exec(url)?.[1];
    return rest === undefined ? undefined : decodeURIComponent(rest.split(/[?#]/)[0]!);
  }

  get paths(): string[] {
    return [...this.#files.keys()];
  }

  readonly cache: VirtualCache = {
    match: async (key: string) => {
      const path = this.pathOf(String(key));
      const data = path === undefined ? undefined : this.#files.get(path);
      return data === undefined ? undefined : respond(data);
    },
    put: async () => {},
  };

  /** env.fetch while mounted: this folder's files (404 when absent), any other virtual URL refused, the rest to `next`. */
  fetchWith(next: FetchFn): FetchFn {
    return async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : String((input as { url?: string }).url ?? input);
      const path = this.pathOf(url);
      if (path !== undefined) {
        const data = this.#files.get(path);
        if (data !== undefined) return respond(data);
        this.misses.push(path);
        return new Response(`not among the picked files: ${path}`, { status: 404 });
      }
      if (url.startsWith(PICKED_ORIGIN)) return new Response('no such picked folder', { status: 404 });
      return next(input, init);
    };
  }
}
