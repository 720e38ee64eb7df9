// Model folders over HTTP (src/engine/model-fetch.ts) against a real local server that answers Hub-style
// `<owner>/<name>/resolve/main/` URLs with Range support: a single-file folder and a sharded one (index + two
// shards) arrive byte for byte and import; pieces are cached as they arrive, so a download cut off mid-way resumes
// at the piece it stopped at (the server sees only the rest) and a second read needs no weight bytes at all; a
// server that ignores Range still works; a new version of the weights (another ETag) is not read from old pieces;
// a gated model (401) and a folder without safetensors say what to do.
import { createServer, type Server } from 'node:http';
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { hubUrl, readModelFolder, type PieceCache } from '../../src/engine/model-fetch.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { readSafetensors, writeSafetensors } from '../../src/export/safetensors.ts';
import { freePort } from '../support/net.ts';

const fixture = readFolder('tests/fixtures/brown-teacher-small');
/** The fixture's weights split into two shards with an index, as large Hub models are. */
function sharded(): Map<string, Uint8Array> {
  const { tensors } = readSafetensors(fixture.get('model.safetensors')!);
  const names = [...tensors.keys()].sort();
  const half = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const out = new Map([...fixture].filter(([p]) => !p.startsWith('onnx/') && p !== 'model.safetensors'));
  const weightMap: Record<string, string> = {};
  half.forEach((ns, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    out.set(file, writeSafetensors(ns.map((n) => ({ name: n, shape: tensors.get(n)!.shape, data: tensors.get(n)!.data }))));
    for (const n of ns) weightMap[n] = file;
  });
  out.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  return out;
}

const repos: Record<string, Map<string, Uint8Array>> = { 'org/single': fixture, 'org/sharded': sharded() };
const log: { path: string; range?: string; method: string }[] = [];
let cutAfter = Infinity, ignoreRange = false, served = 0, etag = 'v1';
let server: Server, host = '';

beforeAll(async () => {
  const port = await freePort();
  host = `http://127.0.0.1:${port}`;
  server = createServer((req, res) => {
    const m = /^\/([\w.-]+\/[\w.-]+)\/resolve\/main\/(.+)$/.exec(req.url ?? '');
    log.push({ path: m?.[2] ?? req.url ?? '', method: req.method ?? 'GET', ...(req.headers.range ? { range: req.headers.range } : {}) });
    if (m?.[1] === 'org/gated') { res.writeHead(401); res.end(); return; }
    const body = m ? repos[m[1]!]?.get(decodeURIComponent(m[2]!)) : undefined;
    if (!body) { res.writeHead(404); res.end(); return; }
    if (req.method === 'HEAD') { res.writeHead(200, { 'content-length': body.length, etag }); res.end(); return; }
    const r = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (r && !ignoreRange) {
      if (++served > cutAfter) { req.socket.destroy(); return; } // the connection drops mid-download
      const [a, b] = [Number(r[1]), Number(r[2])];
      res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${body.length}` });
      res.end(body.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

/** Cache Storage's contract over a Map (what the page and worker get from `caches.open`). */
function mapCache(): PieceCache & { keys: () => string[] } {
  const m = new Map<string, Uint8Array>();
  return {
    match: async (k) => (m.has(k) ? new Response(m.get(k)!.slice()) : undefined),
    put: async (k, r) => { m.set(k, new Uint8Array(await r.arrayBuffer())); },
    keys: () => [...m.keys()],
  };
}

const weightGets = () => log.filter((l) => l.method === 'GET' && /safetensors$/.test(l.path));

describe('model folders over HTTP, Hub-style', () => {
  it('fetches a folder and a sharded folder byte for byte, in pieces, with progress; both import', async () => {
    for (const id of ['org/single', 'org/sharded']) {
      const progress: number[] = [];
      const files = await readModelFolder({ url: hubUrl(id, 'main', host) }, { cache: null, chunk: 300_000, onProgress: (p) => progress.push(p.loaded) });
      for (const [p, b] of files) expect(Buffer.compare(Buffer.from(b), Buffer.from(repos[id]!.get(p)!)), `${id} ${p}`).toBe(0);
      const weights = [...repos[id]!.keys()].filter((p) => p.endsWith('.safetensors'));
      expect([...files.keys()].filter((p) => p.endsWith('.safetensors')).sort()).toEqual(weights.sort());
      expect(importHfFolder(files, id).config.hidden).toBe(128);
      expect(progress.at(-1)).toBe(weights.reduce((s, w) => s + repos[id]!.get(w)!.length, 0));
      expect(progress.every((x, i) => i === 0 || x >= progress[i - 1]!)).toBe(true);
    }
    expect(weightGets().every((l) => l.range)).toBe(true);
  });

  it('resumes a download cut off mid-way at the piece it stopped at, and reads a cached model with no weight request', async () => {
    const cache = mapCache();
    const url = hubUrl('org/single', 'main', host);
    const size = fixture.get('model.safetensors')!.length;
    const chunk = 256 * 1024, pieces = Math.ceil(size / chunk);
    log.length = 0; served = 0; cutAfter = 3;
    await expect(readModelFolder({ url }, { cache, chunk })).rejects.toThrow(/cannot fetch .*model\.safetensors.*What was downloaded is kept; try again to resume/);
    expect(cache.keys().filter((k) => k.includes('#'))).toHaveLength(3);
    log.length = 0; served = 0; cutAfter = Infinity;
    const files = await readModelFolder({ url }, { cache, chunk });
    expect(Buffer.compare(Buffer.from(files.get('model.safetensors')!), Buffer.from(fixture.get('model.safetensors')!))).toBe(0);
    // Only the pieces after the three it had: the first asked-for range starts at 3 pieces in.
    expect(weightGets()).toHaveLength(pieces - 3);
    expect(weightGets()[0]!.range).toBe(`bytes=${3 * chunk}-${4 * chunk - 1}`);
    log.length = 0;
    await readModelFolder({ url }, { cache, chunk });
    expect(weightGets()).toHaveLength(0);
    expect(log.filter((l) => l.method === 'GET').map((l) => l.path).sort()).toEqual(['config.json', 'tokenizer.json', 'tokenizer_config.json']);
    // Another version of the weights (another ETag) is not read from the old pieces.
    const other = fixture.get('model.safetensors')!.slice();
    other[other.length - 1] = other[other.length - 1]! ^ 1;
    repos['org/single'] = new Map([...fixture, ['model.safetensors', other]]);
    etag = 'v2';
    try {
      log.length = 0;
      const v2 = await readModelFolder({ url }, { cache, chunk });
      expect(weightGets()).toHaveLength(pieces);
      expect(v2.get('model.safetensors')!.at(-1)).toBe(other.at(-1));
    } finally { repos['org/single'] = fixture; etag = 'v1'; }
  });

  it('works with a server that ignores Range; explains a gated model and a folder without safetensors', async () => {
    ignoreRange = true;
    try {
      const files = await readModelFolder({ url: hubUrl('org/single', 'main', host) }, { cache: null, chunk: 100_000 });
      expect(files.get('model.safetensors')!.length).toBe(fixture.get('model.safetensors')!.length);
    } finally { ignoreRange = false; }
    await expect(readModelFolder({ url: hubUrl('org/gated', 'main', host) }, { cache: null })).rejects.toThrow(/HTTP 401: the model is gated or private/);
    repos['org/bin'] = new Map([['config.json', fixture.get('config.json')!], ['tokenizer.json', fixture.get('tokenizer.json')!]]);
    await expect(readModelFolder({ url: hubUrl('org/bin', 'main', host) }, { cache: null })).rejects.toThrow(/neither model\.safetensors nor model\.safetensors\.index\.json/);
    expect(() => hubUrl('not an id')).toThrow(/is not a Hub model id/);
    expect(hubUrl('HuggingFaceTB/SmolLM2-135M')).toBe('https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main/');
  });
});
