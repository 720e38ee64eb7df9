// The local teacher in Node: transformers.js (onnxruntime-node) running a tiny student exported by
// exportOnnxFolder, checked against the float64 reference model (src/model/ref-model.ts): greedy generation with
// transformers.js's KV-cache generate() gives the reference's greedy ids; seeded sampling gives the ids of our own
// sampler over reference logits; distributions (top-k, next-token and dense log-probabilities) match
// log_softmax(reference logits) within 1e-4; chat() returns the remote teacher's ChatResult shapes with those
// logprobs. The same model loads from a directory and from picked files (a Map, no file system, no network),
// and bad input fails with errors that say what and where.
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetVocab } from '../../src/store/topk-table.ts';
import { createElicitJob, runElicitJob } from '../../src/elicit/run.ts';
import { unpackTopKRows } from '../../src/store/topk.ts';
import { LocalTeacher, logprobRows } from '../../src/teacher/local.ts';
import { normalizePickedFiles, PICKED_ORIGIN, VirtualFolder } from '../../src/teacher/local-files.ts';
import { resolveSource } from '../../src/teacher/local-source.ts';
import { TeacherError } from '../../src/teacher/types.ts';
import { refDecode, refLogprobs, tinyTeacher, writeFolder, type TinyTeacher } from '../support/tiny-teacher.ts';
import { freshStore } from './store-fixtures.ts';

const PROMPTS = ['The teacher reads', 'A small model', 'Numbers like 12'];
let t: TinyTeacher;
let dir: string;
let teacher: LocalTeacher;

beforeAll(async () => {
  t = tinyTeacher();
  dir = join(mkdtempSync(join(tmpdir(), 'local-teacher-')), 'tiny-teacher');
  writeFolder(dir, t.files);
  teacher = await LocalTeacher.load({ kind: 'folder', location: dir });
}, 120_000);

afterAll(async () => {
  await teacher?.dispose();
});

async function expectTeacherError(p: Promise<unknown>, kind: string, re: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'expected a rejection').toBeInstanceOf(TeacherError);
  expect((e as TeacherError).kind).toBe(kind);
  expect((e as TeacherError).message).toMatch(re);
}

describe('LocalTeacher from a directory (transformers.js on onnxruntime-node)', () => {
  it('describes the model it loaded', () => {
    expect(teacher.info).toMatchObject({
      model: 'tiny-teacher', source: 'folder', device: 'cpu', dtype: 'fp32', vocabSize: t.config.vocabSize,
      eosIds: [t.eosId], chatTemplate: false, hiddenStates: false,
    });
    expect(teacher.info.inputNames).toContain('past_key_values.1.value');
    expect(teacher.info.outputNames).toContain('logits');
    expect(teacher.settings.model).toBe('tiny-teacher');
  });

  it('uses the teacher tokenizer: the same ids and text as ours', () => {
    for (const p of [...PROMPTS, 'Distillation <|endoftext|> moves']) expect(teacher.encode(p)).toEqual(t.tokenizer.encode(p));
    const ids = t.tokenizer.encode('The quick brown fox');
    expect(teacher.decode(ids)).toBe('The quick brown fox');
    expect(teacher.tokenText(t.eosId)).toBe('<|endoftext|>');
    const the = t.tokenizer.encode(' the')[0]!;
    expect(teacher.tokenBytes(the)).toEqual([...new TextEncoder().encode(' the')]);
    expect(teacher.tokenBytes(t.eosId)).toBeUndefined();
  });

  it('greedy generate() (KV cache) gives the reference greedy ids, from text and from ids', async () => {
    let total = 0;
    for (const p of PROMPTS) {
      const promptIds = t.tokenizer.encode(p);
      const ref = refDecode(t, promptIds, 24);
      // The test means something only when argmaxes are clear of float32 noise.
      expect(Math.min(...ref.margins)).toBeGreaterThan(1e-3);
      const g = await teacher.generate(p, { greedy: true, maxNewTokens: 24 });
      expect(g.promptIds).toEqual(promptIds);
      expect(g.ids, p).toEqual(ref.ids);
      expect(g.text).toBe(t.tokenizer.decode(ref.ids.filter((id) => id !== t.eosId)));
      expect(g.finishReason).toBe(ref.ids.at(-1) === t.eosId ? 'stop' : 'length');
      const again = await teacher.generate(promptIds, { temperature: 0, maxNewTokens: 24 });
      expect(again.ids).toEqual(ref.ids);
      total += g.ids.length;
    }
    expect(total).toBeGreaterThanOrEqual(30);
  });

  it('streams each new token through onToken', async () => {
    const seen: number[] = [];
    const g = await teacher.generate('A small model', { greedy: true, maxNewTokens: 10, onToken: (id) => seen.push(id) });
    expect(seen).toEqual(g.ids);
  });

  it('seeded sampling gives the ids of our sampler over reference logits (temperature, top-k, top-p)', async () => {
    const promptIds = t.tokenizer.encode('The teacher reads');
    const runs = [
      { temperature: 1, topK: 0, topP: 1, seed: 3 },
      { temperature: 0.7, topK: 20, topP: 0.9, seed: 4 },
      { temperature: 1.5, topK: 5, topP: 1, seed: 5 },
    ];
    const outs: number[][] = [];
    for (const s of runs) {
      const ref = refDecode(t, promptIds, 16, s);
      const g = await teacher.generate(promptIds, { ...s, maxNewTokens: 16 });
      expect(g.ids, JSON.stringify(s)).toEqual(ref.ids);
      outs.push(g.ids);
    }
    const greedy = refDecode(t, promptIds, 16).ids;
    expect(outs.some((o) => o.join() !== greedy.join())).toBe(true);
  });

  it('distributions: top-k, next-token and dense log-probabilities = log_softmax(reference logits) within 1e-4', async () => {
    const ids = t.tokenizer.encode('Distillation moves knowledge from the teacher to the student.');
    const V = t.config.vocabSize;
    const ref = refLogprobs(t, ids);
    const d = await teacher.distributions(ids, { k: 7, dense: true });
    expect([d.T, d.V, d.k]).toEqual([ids.length, V, 7]);
    let worst = 0;
    for (let r = 0; r < ids.length; r++) {
      const row = Array.from(ref.subarray(r * V, (r + 1) * V));
      const order = row.map((x, id) => [x, id] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      for (let j = 0; j < 7; j++) {
        expect(d.topIds[r * 7 + j], `row ${r} rank ${j}`).toBe(order[j]![1]);
        worst = Math.max(worst, Math.abs(d.topLogprobs[r * 7 + j]! - order[j]![0]));
      }
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(d.dense![r * V + v]! - row[v]!));
      if (r + 1 < ids.length) worst = Math.max(worst, Math.abs(d.nextLogprobs[r]! - row[ids[r + 1]!]!));
    }
    expect(worst).toBeLessThan(1e-4);
    const sparse = await teacher.distributions(ids, { k: 3 });
    expect(sparse.dense).toBeUndefined();
    expect(Array.from(sparse.topIds.subarray(0, 3))).toEqual(Array.from(d.topIds.subarray(0, 3)));
  });

  it('chat() returns ChatResult with per-token logprobs and alternatives from the same model', async () => {
    const messages = [{ role: 'user' as const, content: 'The teacher reads' }];
    const r = await teacher.chat(messages, { temperature: 0, maxTokens: 12, topLogprobs: 4 });
    const promptIds = t.tokenizer.encode('The teacher reads');
    const ref = refDecode(t, promptIds, 12);
    const textIds = ref.ids.filter((id) => id !== t.eosId);
    expect(r.logprobsAvailable).toBe(true);
    expect(r.usage).toEqual({ promptTokens: promptIds.length, completionTokens: ref.ids.length, totalTokens: promptIds.length + ref.ids.length, reported: true });
    const c = r.choices[0]!;
    expect(c.text).toBe(t.tokenizer.decode(textIds));
    expect(c.tokens).toHaveLength(textIds.length);
    const lp = refLogprobs(t, [...promptIds, ...ref.ids]);
    const V = t.config.vocabSize;
    c.tokens!.forEach((tok, j) => {
      const row = promptIds.length - 1 + j;
      expect(tok.token).toBe(teacher.tokenText(textIds[j]!));
      expect(Math.abs(tok.logprob - lp[row * V + textIds[j]!]!)).toBeLessThan(1e-4);
      expect(tok.top).toHaveLength(4);
      expect(tok.top[0]!.logprob).toBeCloseTo(tok.logprob, 5); // greedy: the chosen token is the best one
      for (let i = 1; i < 4; i++) expect(tok.top[i]!.logprob).toBeLessThanOrEqual(tok.top[i - 1]!.logprob);
    });
  });

  it('chat(): n choices from seed, seed + 1, …; a stop sequence cuts text and tokens', async () => {
    const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'A small model' }];
    const promptIds = t.tokenizer.encode('Be brief.\n\nA small model');
    const r = await teacher.chat(messages, { n: 2, temperature: 1, seed: 40, maxTokens: 8 });
    expect(r.choices).toHaveLength(2);
    for (const [i, c] of r.choices.entries()) {
      const ref = refDecode(t, promptIds, 8, { temperature: 1, topK: 0, topP: 1, seed: 40 + i });
      expect(c.text).toBe(t.tokenizer.decode(ref.ids.filter((id) => id !== t.eosId)));
    }
    const greedy = await teacher.chat(messages, { temperature: 0, maxTokens: 12 });
    const full = greedy.choices[0]!;
    const ids = refDecode(t, promptIds, 12).ids.filter((id) => id !== t.eosId);
    const j0 = full.tokens!.findIndex((x, j) => j >= 2 && /^[ -~]+$/.test(x.token));
    expect(j0).toBeGreaterThan(0);
    const stop = full.tokens![j0]!.token;
    const cut = await teacher.chat(messages, { temperature: 0, maxTokens: 12, stop: ['never in the text', stop] });
    const c = cut.choices[0]!;
    expect(c.finishReason).toBe('stop');
    expect(c.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    const n = c.tokens!.length;
    expect(c.tokens).toEqual(full.tokens!.slice(0, n));
    expect(c.text.startsWith(t.tokenizer.decode(ids.slice(0, n)))).toBe(true); // the kept tokens lie within the text
    expect(c.text.startsWith(t.tokenizer.decode(ids.slice(0, n + 1)))).toBe(false); // the next one does not
  });

  it('serves the feature (top-k) elicitation strategy: stored rows are the reference top-k, merged by token text', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'local-feature' });
    const job = await createElicitJob(store, ds.id, 'feature', { inputs: ['The teacher reads', 'A small model'], topLogprobs: 5, temperature: 0, maxTokens: 8 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status, String(done.error)).toBe('done');
    const vocab = await datasetVocab(store, ds.id);
    const recs = await store.getRecords(ds.id, { limit: 10 });
    expect(recs).toHaveLength(2);
    const V = t.config.vocabSize;
    for (const r of recs) {
      expect(r.provenance.teacher).toMatchObject({ kind: 'transformers-js', model: 'tiny-teacher' });
      const promptIds = teacher.encode(teacher.promptFor(r.messages.slice(0, -1)).text);
      const ids = refDecode(t, promptIds, 8).ids.filter((id) => id !== t.eosId);
      expect(r.messages.at(-1)!.content).toBe(t.tokenizer.decode(ids));
      const rows = unpackTopKRows((await store.getTopKOfRecord(r.id))[0]!.rows);
      expect(rows).toHaveLength(ids.length);
      const lp = refLogprobs(t, [...promptIds, ...ids]);
      rows.forEach((row, j) => {
        const at = promptIds.length - 1 + j;
        const ranked = Array.from(lp.subarray(at * V, (at + 1) * V)).map((x, id) => [x, id] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
        const want = new Map<string, number>(); // token text → probability mass of the top-5 ids with that text
        for (const [x, id] of ranked) want.set(teacher.tokenText(id), (want.get(teacher.tokenText(id)) ?? 0) + Math.exp(x));
        const got = new Map(Array.from(row.ids, (id, i) => [vocab[id]!, row.logprobs[i]!]));
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        // The store quantises a row to 255 steps of its range (src/store/topk.ts): error ≤ range / 510.
        const lps = [...want.values()].map(Math.log);
        const tol = (Math.max(...lps) - Math.min(...lps)) / 500 + 1e-4;
        for (const [text, p] of want) expect(Math.abs(got.get(text)! - Math.log(p))).toBeLessThan(tol);
      });
    }
  });

  it('hidden states: says they are not available for this model instead of inventing them', async () => {
    expect(teacher.info.hiddenStatesNote).toMatch(/not available for this model: its ONNX graph outputs only logits/);
    await expectTeacherError(teacher.hiddenStates([1, 2, 3]), 'config', /not available for this model/);
  });

  it('rejects bad input with errors naming what and where', async () => {
    const V = t.config.vocabSize;
    await expectTeacherError(teacher.distributions([1, V, 2]), 'config', new RegExp(`ids\\[1\\] = ${V} is not a token id in \\[0, ${V}\\)`));
    await expectTeacherError(teacher.distributions([1, 2.5]), 'config', /ids\[1\] = 2.5/);
    await expectTeacherError(teacher.distributions([]), 'config', /ids is empty/);
    await expectTeacherError(teacher.distributions([1, 2], { k: 0 }), 'config', /k must be an integer in \[1, 1024\]/);
    await expectTeacherError(teacher.generate([1, -1]), 'config', /prompt\[1\] = -1/);
    await expectTeacherError(teacher.generate('x', { maxNewTokens: 0 }), 'config', /maxNewTokens must be an integer in \[1, 4096\]/);
    await expectTeacherError(teacher.generate('x', { topP: 0 }), 'config', /topP must be in \(0, 1\]/);
    await expectTeacherError(teacher.generate('x', { beams: 2 } as never), 'config', /unknown option 'beams'/);
    await expectTeacherError(teacher.chat([], {}), 'config', /messages must be a non-empty array/);
    const ctl = new AbortController();
    ctl.abort();
    await expectTeacherError(teacher.generate('x', { signal: ctl.signal }), 'aborted', /aborted/);
    // Still usable afterwards.
    expect((await teacher.generate('x', { greedy: true, maxNewTokens: 2 })).ids).toHaveLength(2);
  });

  it('a missing or incomplete folder fails with the folder and the cause', async () => {
    await expectTeacherError(LocalTeacher.load({ kind: 'folder', location: join(dir, '..', 'no-such-model') }), 'config', /could not load folder "no-such-model": config\.json: .*no-such-model\/config\.json/);
    await expectTeacherError(LocalTeacher.load({ kind: 'folder', location: '/tmp/bad--name' }), 'config', /directory name "bad--name"/);
    const partial = join(dir, '..', 'partial');
    writeFolder(partial, t.files.filter((f) => f.path !== 'tokenizer.json'));
    await expectTeacherError(LocalTeacher.load({ kind: 'folder', location: partial }), 'config', /could not load folder "partial": the tokenizer \(tokenizer\.json, tokenizer_config\.json\): .*tokenizer\.json/);
    await expectTeacherError(LocalTeacher.load({ kind: 'hub', id: 'not a/valid id' }), 'config', /not a Hub model id/);
    await expectTeacherError(LocalTeacher.load({ kind: 'folder', location: dir }, { device: 'tpu' as never }), 'config', /device must be/);
  });
});

describe('LocalTeacher from a URL folder (served over http, as the app serves models/…/)', () => {
  let server: Server;
  let base: string;
  const served: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      served.push(`${req.method} ${req.url}`);
      try {
        const body = readFileSync(join(dir, '..', decodeURIComponent((req.url ?? '').split('?')[0]!)));
        res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end('not found');
      }
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it('loads by URL (relative to a base URL) and gives the reference greedy ids', async () => {
    const remote = await LocalTeacher.load({ kind: 'folder', location: 'tiny-teacher' }, { baseUrl: `${base}index.html` });
    try {
      expect(remote.info).toMatchObject({ model: 'tiny-teacher', source: 'folder' });
      expect(remote.settings.baseURL).toBe(`${base}tiny-teacher/`);
      const promptIds = t.tokenizer.encode('Numbers like 12');
      expect((await remote.generate(promptIds, { greedy: true, maxNewTokens: 16 })).ids).toEqual(refDecode(t, promptIds, 16).ids);
    } finally {
      await remote.dispose();
    }
    const paths = new Set(served.map((x) => x.split(' ')[1]));
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) expect(paths).toContain(`/tiny-teacher/${f}`);
    expect([...paths].every((p) => p!.startsWith('/tiny-teacher/')), [...paths].join(' ')).toBe(true);
    expect(env.remoteHost).toBe('https://huggingface.co/'); // restored
  });

  it('a URL folder that is not there fails naming config.json and the URL', async () => {
    await expectTeacherError(LocalTeacher.load({ kind: 'folder', location: `${base}nothing-here/` }), 'config',
      /could not load folder "nothing-here": config\.json: .*nothing-here\/config\.json/);
  });
});

describe('LocalTeacher from picked files (no file system, no network)', () => {
  const asMap = (prefix: string, skip: string[] = []) =>
    new Map(t.files.filter((f) => !skip.includes(f.path)).map((f) => [`${prefix}${f.path}`, f.bytes] as const));

  it('loads a picked folder (Map of path → bytes) and generates the reference greedy ids; env is restored', async () => {
    const before = { fetch: env.fetch, useCustomCache: env.useCustomCache, allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
    const realFetch = globalThis.fetch;
    const fetched: string[] = [];
    globalThis.fetch = (async (input: string | URL | Request) => {
      fetched.push(String(input));
      throw new Error('no network in this test');
    }) as typeof fetch;
    let picked: LocalTeacher | undefined;
    try {
      picked = await LocalTeacher.load({ kind: 'files', files: asMap('my-teacher/'), name: 'my-teacher' });
      expect(picked.info).toMatchObject({ model: 'my-teacher', source: 'files', device: 'cpu' });
      expect(picked.settings.baseURL.startsWith(PICKED_ORIGIN)).toBe(true);
      const promptIds = t.tokenizer.encode('The teacher reads');
      expect((await picked.generate(promptIds, { greedy: true, maxNewTokens: 16 })).ids).toEqual(refDecode(t, promptIds, 16).ids);
    } finally {
      globalThis.fetch = realFetch;
      await picked?.dispose();
    }
    expect(fetched).toEqual([]);
    expect({ fetch: env.fetch, useCustomCache: env.useCustomCache, allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath }).toEqual(before);
  });

  it('files picked one by one (model.onnx beside config.json) load too', async () => {
    const flat = new Map(t.files.map((f) => [f.path.replace('onnx/', ''), f.bytes] as const));
    const picked = await LocalTeacher.load({ kind: 'files', files: flat });
    try {
      const d = await picked.distributions(t.tokenizer.encode('A small'), { k: 2 });
      const ref = await teacher.distributions(t.tokenizer.encode('A small'), { k: 2 });
      expect(Array.from(d.topIds)).toEqual(Array.from(ref.topIds));
    } finally {
      await picked.dispose();
    }
  });

  it('an incomplete pick names what is missing', async () => {
    await expectTeacherError(LocalTeacher.load({ kind: 'files', files: asMap('m/', ['tokenizer.json']) }), 'config', /lacks tokenizer\.json/);
    await expectTeacherError(LocalTeacher.load({ kind: 'files', files: asMap('m/', ['onnx/model.onnx']) }), 'config', /lacks onnx\/\*\.onnx/);
    await expectTeacherError(LocalTeacher.load({ kind: 'files', files: new Map() }), 'config', /no files were picked/);
  });
});

describe('picked-file folders and sources (pure)', () => {
  const b = (s: string) => new TextEncoder().encode(s);
  const needed = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'];

  it('roots the folder at the shallowest config.json and drops files outside it', () => {
    const m = new Map<string, Uint8Array>([
      ...needed.map((p) => [`a/teacher/${p}`, b(p)] as const),
      ['a/teacher/sub/config.json', b('nested')],
      ['a/other.txt', b('outside')],
    ]);
    const out = normalizePickedFiles(m);
    expect([...out.keys()].sort()).toEqual([...needed, 'sub/config.json'].sort());
    expect(new TextDecoder().decode(out.get('config.json') as Uint8Array)).toBe('config.json');
  });

  it('rejects ambiguity, traversal and non-files clearly', () => {
    const two = new Map<string, Uint8Array>([...needed.map((p) => [`x/${p}`, b(p)] as const), ...needed.map((p) => [`y/${p}`, b(p)] as const)]);
    expect(() => normalizePickedFiles(two)).toThrow(/several model folders were picked \(x\/config\.json, y\/config\.json\)/);
    expect(() => normalizePickedFiles(new Map([['../config.json', b('')]]))).toThrow(/'\.\.' is not allowed/);
    expect(() => normalizePickedFiles(new Map([['readme.md', b('')]]))).toThrow(/no config\.json among the 1 picked files \(readme\.md\)/);
    expect(() => normalizePickedFiles(new Map([['config.json', 'text' as never]]))).toThrow(/entry 0 \(config\.json\) is neither bytes nor a File/);
    expect(() => normalizePickedFiles(42 as never)).toThrow(/expected a Map of path → bytes or a list of files/);
  });

  it('serves the mounted folder from memory: cache hits, 404 for absent files, other virtual folders refused', async () => {
    const files = normalizePickedFiles(new Map(needed.map((p) => [p, b(`<${p}>`)] as const)));
    const v = new VirtualFolder('t1', files);
    expect(await (await v.cache.match(`${v.base}tokenizer.json`))!.text()).toBe('<tokenizer.json>');
    expect(await v.cache.match(`${v.base}generation_config.json`)).toBeUndefined();
    const next = async () => new Response('passed through');
    const f = v.fetchWith(next);
    expect((await f(`${v.base}onnx/model.onnx`)).headers.get('content-length')).toBe(String('<onnx/model.onnx>'.length));
    expect((await f(`${v.base}generation_config.json`)).status).toBe(404);
    expect(v.misses).toEqual(['generation_config.json']);
    expect((await f(`${PICKED_ORIGIN}t2/config.json`)).status).toBe(404);
    expect(await (await f('http://127.0.0.1:1/x')).text()).toBe('passed through');
  });

  it('resolves folder URLs against a base and names hub sources', () => {
    const r = resolveSource({ kind: 'folder', location: 'models/brown-teacher' }, 'http://127.0.0.1:5173/app/index.html');
    expect(r).toMatchObject({ modelId: 'brown-teacher', baseURL: 'http://127.0.0.1:5173/app/models/brown-teacher/', remoteHost: 'http://127.0.0.1:5173/app/models/' });
    expect(resolveSource({ kind: 'hub', id: 'onnx-community/Qwen3-0.6B-ONNX' })).toMatchObject({ modelId: 'onnx-community/Qwen3-0.6B-ONNX', baseURL: 'https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX' });
    expect(() => resolveSource({ kind: 'folder', location: 'https://x.test/models/a b/' })).toThrow(/folder name "a b"/);
    expect(() => resolveSource({ kind: 'nope' } as never)).toThrow(/unknown kind "nope"/);
  });

  it('logprobRows: exact top-k with lowest-id ties, and refuses NaN logits', () => {
    const logits = Float32Array.from([1, 3, 3, 0, 2, 2]); // T = 2, V = 3
    const d = logprobRows(logits, [0, 2], 3, 2, true);
    expect(Array.from(d.topIds)).toEqual([1, 2, 1, 2]);
    const lse0 = Math.log(Math.exp(1) + 2 * Math.exp(3));
    expect(d.topLogprobs[0]).toBeCloseTo(3 - lse0, 6);
    expect(d.nextLogprobs[0]).toBeCloseTo(3 - lse0, 6);
    expect(d.dense![0]).toBeCloseTo(1 - lse0, 6);
    expect(() => logprobRows(Float32Array.from([0, NaN]), [0], 2, 1, false)).toThrow(/logits\[0, 1\] is NaN/);
  });
});
