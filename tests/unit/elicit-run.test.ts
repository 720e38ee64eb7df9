// The elicitation job layer against the real test server: resume after aborts mid-job (fresh store handles on
// the same IndexedDB) writes every record exactly once; with ~20% injected faults every requested record still
// lands exactly once; the API key never reaches the store (dump searched), even when the server echoes it;
// preview sends nothing (no HTTP request, no student call); configs are validated with errors naming the key;
// inputsFrom is snapshotted; and the CLI command writes JSONL through the whole stack.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { elicitCommand } from '../../src/elicit/cli.ts';
import { createElicitJob, runElicitJob, STRATEGIES } from '../../src/elicit/run.ts';
import type { TeacherLike } from '../../src/elicit/types.ts';
import { openStore, type DistillStore } from '../../src/store/store.ts';
import type { Job } from '../../src/store/schema.ts';
import { BigramModel } from '../support/text-model.ts';
import { allRecords, closeServers, ScriptedModel, start, teacherFor, userOf } from './elicit-fixtures.ts';
import { freshStore } from './store-fixtures.ts';

afterEach(closeServers);

const echo = () => new ScriptedModel((p) => `Answer to: ${userOf(p)}`);
const INPUTS = Array.from({ length: 24 }, (_, i) => `Question number ${i}?`);

function expectExactlyOnce(recs: { key: string; messages: { content: string }[] }[], jobId: string, n: number): void {
  expect(recs.map((r) => r.key).sort()).toEqual(Array.from({ length: n }, (_, i) => `${jobId}:labeling:${i}:0`).sort());
  for (const r of recs) {
    const i = Number(r.key.split(':')[2]);
    expect(r.messages.map((m) => m.content)).toEqual([INPUTS[i], `Answer to: ${INPUTS[i]}`]);
  }
}

describe('resume and faults', () => {
  it('resumes after aborts at many points: every record exactly once', async () => {
    const s = await start({ model: echo() });
    const { store: first, factory, name } = await freshStore();
    const ds = await first.createDataset({ name: 'r' });
    const job = await createElicitJob(first, ds.id, 'labeling', { inputs: INPUTS, batchSize: 3 });
    const real = teacherFor(s);
    let store: DistillStore = first;
    let final: Job | undefined;
    let paused = 0;
    for (let run = 0; run < 40 && final?.status !== 'done'; run++) {
      const ctl = new AbortController();
      let calls = 0;
      // Abort when the (run % 5 + 2)-th chat call of this run has been answered: mid-step, while other calls of
      // the step are in flight (the answered ones are lost with the step and asked again on resume).
      const teacher: TeacherLike = {
        settings: real.settings,
        chat: async (m, o) => {
          const n = ++calls;
          const r = await real.chat(m, o);
          if (n === (run % 5) + 2 && run < 8) ctl.abort();
          return r;
        },
      };
      final = await runElicitJob(store, job.id, { teacher, signal: ctl.signal });
      if (final.status === 'paused') paused++;
      else expect(final.status).toBe('done');
      store.close();
      store = await openStore(name, factory); // a fresh handle, as after a reload
    }
    expect(final!.status).toBe('done');
    expect(paused).toBeGreaterThanOrEqual(5);
    const recs = await allRecords(store, ds.id);
    expectExactlyOnce(recs, job.id, INPUTS.length);
    expect((await store.getDataset(ds.id))!.counts.records).toBe(INPUTS.length);
    expect(final!.progress).toMatchObject({ done: INPUTS.length, total: INPUTS.length });
    expect(s.stats.chatRequests).toBeGreaterThan(INPUTS.length); // aborted steps were redone
  });

  it('with ~20% injected faults every requested record lands exactly once', async () => {
    const s = await start({
      model: echo(),
      seed: 7,
      faults: { p429: 0.05, p500: 0.05, p503: 0.04, pCutStream: 0.03, pMalformed: 0.03, retryAfterMs: [1, 2] },
    });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'f' });
    const job = await createElicitJob(store, ds.id, 'labeling', { inputs: INPUTS, batchSize: 4 });
    const done = await runElicitJob(store, job.id, { teacher: teacherFor(s, { maxRetries: 1 }), retries: 8, retryDelayMs: 1 });
    expect(done.status).toBe('done');
    expectExactlyOnce(await allRecords(store, ds.id), job.id, INPUTS.length);
    const faults = Object.values(s.stats.faults).reduce((a, b) => a + b, 0);
    expect(faults).toBeGreaterThan(2);
    expect(s.stats.served).toBe(INPUTS.length);
  });

  it('a non-retryable teacher error fails the job with its message; resuming later finishes it', async () => {
    const s = await start({ model: echo() });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'x' });
    const job = await createElicitJob(store, ds.id, 'labeling', { inputs: INPUTS.slice(0, 4), batchSize: 2 });
    const failed = await runElicitJob(store, job.id, { teacher: teacherFor(s, { model: 'no-such-model' }) });
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/TeacherError: .*404/);
    expect((await runElicitJob(store, job.id, { teacher: teacherFor(s) })).status).toBe('done');
    expectExactlyOnce(await allRecords(store, ds.id), job.id, 4);
  });
});

describe('secrets', () => {
  it('the API key never appears in the store, even when the server echoes it in errors', async () => {
    const key = 'sk-elicit-test-0123456789abcdefXYZ';
    const s = await start({ model: new BigramModel(), apiKey: key, echoAuthInErrors: true });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'k' });
    const teacher = teacherFor(s, { apiKey: key });
    for (const [strategy, config] of [
      ['labeling', { inputs: ['The river', 'The mill'], maxTokens: 16 }],
      ['feature', { inputs: ['The river'], maxTokens: 8 }],
      ['feedback', { inputs: ['The river'], samples: 2, maxTokens: 16 }],
    ] as const) {
      const job = await createElicitJob(store, ds.id, strategy, config);
      expect((await runElicitJob(store, job.id, { teacher, student: async () => ['a b c', 'd e f'] })).status).toBe('done');
    }
    const bad = await createElicitJob(store, ds.id, 'labeling', { inputs: ['x'] });
    const failed = await runElicitJob(store, bad.id, { teacher: teacherFor(s, { apiKey: key, model: 'wrong' }) });
    expect(failed.error).toMatch(/404/);
    expect(s.stats.authorizations.every((a) => a === `Bearer ${key}`)).toBe(true);
    const dump = await store.dump();
    expect(dump.length).toBeGreaterThan(1000);
    expect(dump).not.toContain(key);
    expect(dump).not.toContain(key.slice(3, 20));
    expect(dump).toContain(new URL(s.url).host);
    expect(dump).not.toContain(s.url); // hosts only, never the full base URL
    // A key smuggled into a config is refused before anything is stored.
    await expect(createElicitJob(store, ds.id, 'labeling', { inputs: ['x'], apiKey: key })).rejects.toThrow(/unknown key 'apiKey'/);
    await expect(createElicitJob(store, ds.id, 'labeling', { inputs: ['x'], system: `use ${key}` })).rejects.toThrow(/looks like an API key/);
  });
});

describe('preview and validation', () => {
  it('preview renders the first requests and sends nothing (no HTTP request at all)', async () => {
    const s = await start({ model: echo() });
    const { store } = await freshStore();
    const src = await store.createDataset({ name: 'src' });
    await store.putRecords(src.id, [{ key: 'a', messages: [{ role: 'user', content: 'From the dataset?' }, { role: 'assistant', content: 'yes' }], provenance: { teacher: { kind: 'import', model: 'x', baseURLHost: '' }, strategy: 'import', params: {}, usage: { input: 0, output: 0 }, time: 0 } }]);
    const configs: Record<string, unknown> = {
      labeling: { inputs: ['Q1', 'Q2', 'Q3', 'Q4'], system: 'Be brief.', seed: 1 },
      expansion: { seeds: ['Write a poem', 'Explain gravity'], target: 5, seed: 2 },
      curation: { topics: [{ topic: 'Science', subtopics: ['Optics', 'Cells'] }] },
      evol: { inputsFrom: { datasetId: src.id } },
      feature: { inputs: ['Q1'], topLogprobs: 7 },
      feedback: { inputs: ['P1', 'P2'] },
      'self-knowledge': { inputs: ['P1'], mode: 'verify' },
    };
    const out: Record<string, Awaited<ReturnType<(typeof STRATEGIES)['labeling']['preview']>>> = {};
    for (const [name, cfg] of Object.entries(configs)) out[name] = await STRATEGIES[name as keyof typeof STRATEGIES].preview(cfg, store, 3);
    expect(s.stats.requests).toBe(0);
    expect(out.labeling!).toHaveLength(3);
    expect(out.labeling![0]!.messages).toEqual([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Q1' }]);
    expect(out.labeling![0]!.options.seed).not.toBe(out.labeling![1]!.options.seed);
    expect(out.expansion![0]!.messages[0]!.content).toMatch(/1\. (Write a poem|Explain gravity)\n2\. /);
    expect(out.curation!.map((p) => p.messages[0]!.content)).toEqual([expect.stringContaining('"Optics" (within: Science > Optics)'), expect.stringContaining('"Cells"')]);
    expect(out.evol![0]!.messages[0]!.content).toContain('#Given Prompt#:\nFrom the dataset?');
    expect(out.feature![0]!.options.topLogprobs).toBe(7);
    expect(out.feedback![0]!.messages[0]!.content).toContain('[Response]\n[student sample]');
    expect(out['self-knowledge']![0]!.template).toBe('self-knowledge.verify');
    await expect(STRATEGIES.evol.preview(configs.evol)).rejects.toThrow(/inputsFrom needs the store/);
  });

  it('rejects bad configs with errors naming the key; snapshots inputsFrom', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'v' });
    const bad: [string, unknown, RegExp][] = [
      ['labeling', { inputs: ['x'], temprature: 1 }, /labeling config: unknown key 'temprature'/],
      ['labeling', { inputs: [] }, /give inputs/],
      ['labeling', { inputs: ['x'], temperature: 3 }, /temperature must be a number in \[0, 2\]/],
      ['labeling', { inputs: ['x'], templates: { 'labeling.user': 'no var' } }, /must contain \{\{input\}\}/],
      ['feature', { inputs: ['x'], topLogprobs: 21 }, /topLogprobs must be an integer in \[1, 20\]/],
      ['expansion', { seeds: [], target: 3 }, /seeds must have 1–10000 entries/],
      ['curation', { topics: [{ topic: 'A', subtopics: [] }] }, /subtopics: must be a non-empty array/],
      ['evol', { inputs: ['x'], methods: ['sideways'] }, /methods\[0\] must be one of/],
      ['self-knowledge', { inputs: ['x'], samples: 1 }, /needs samples ≥ 2/],
      ['nope', {}, /unknown strategy "nope"/],
      ['labeling', { inputsFrom: { datasetId: 'missing' } }, /no dataset "missing"/],
    ];
    for (const [name, cfg, re] of bad) await expect(createElicitJob(store, ds.id, name as never, cfg)).rejects.toThrow(re);
    expect(await store.listJobs()).toEqual([]);
    await store.putRecords(ds.id, [{ key: 'a', messages: [{ role: 'user', content: 'Snapshot me' }], provenance: { teacher: { kind: 'import', model: 'x', baseURLHost: '' }, strategy: 'import', params: {}, usage: { input: 0, output: 0 }, time: 0 } }]);
    const job = await createElicitJob(store, ds.id, 'labeling', { inputsFrom: { datasetId: ds.id } });
    expect((job.config as { config: { inputs: string[]; inputsFrom: null } }).config).toMatchObject({ inputs: ['Snapshot me'], inputsFrom: null, temperature: 0.7 });
    expect(job.kind).toBe('elicit:labeling');
  });
});

describe('elicitCommand (CLI)', () => {
  it('runs a job into an in-memory store and writes JSONL; the key is read from the environment only', async () => {
    const key = 'sk-cli-test-0123456789abcdef';
    const s = await start({ model: echo(), apiKey: key });
    const dir = await mkdtemp(join(tmpdir(), 'elicit-cli-'));
    try {
      await writeFile(join(dir, 'cfg.json'), JSON.stringify({ inputs: ['One?', 'Two?'] }));
      const logs: string[] = [];
      const io = { env: { ELICIT_KEY: key }, log: (l: string) => logs.push(l) };
      const args = ['--base-url', s.url, '--model', s.model.name, '--api-key-env', 'ELICIT_KEY', '--strategy', 'labeling', '--config', join(dir, 'cfg.json'), '--out', join(dir, 'out.jsonl'), '--with-provenance'];
      expect(await elicitCommand(args, io)).toBe(0);
      const lines = (await readFile(join(dir, 'out.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { messages: unknown; provenance: { strategy: string } });
      expect(lines.map((l) => l.messages)).toEqual(['One?', 'Two?'].map((q) => [{ role: 'user', content: q }, { role: 'assistant', content: `Answer to: ${q}` }]));
      expect(lines[0]!.provenance.strategy).toBe('labeling');
      expect(logs.join('\n')).not.toContain(key);
      expect(logs.at(-1)).toMatch(/done: 2 records/);

      await writeFile(join(dir, 'f.json'), JSON.stringify({ inputs: ['The river'], maxTokens: 5, temperature: 0 }));
      const fargs = args.map((a) => (a === 'labeling' ? 'feature' : a.endsWith('cfg.json') ? join(dir, 'f.json') : a.endsWith('out.jsonl') ? join(dir, 'f.jsonl') : a));
      expect(await elicitCommand(fargs, io)).toBe(0);
      const topk = JSON.parse((await readFile(join(dir, 'f.jsonl.topk.jsonl'), 'utf8')).trim()) as { ids: number[][] };
      const vocab = JSON.parse(await readFile(join(dir, 'f.jsonl.vocab.json'), 'utf8')) as string[];
      expect(topk.ids.length).toBe(5); // maxTokens
      expect(vocab[topk.ids[0]![0]!]).toBe('A');

      expect(await elicitCommand(['--strategy', 'labeling'], io)).toBe(2);
      expect(await elicitCommand(args.map((a) => (a === 'ELICIT_KEY' ? 'UNSET_VAR' : a)), io)).toBe(1);
      expect(logs.at(-1)).toMatch(/UNSET_VAR .* is empty or not set/);
      expect(await elicitCommand(args.map((a) => (a === 'labeling' ? 'feedback' : a)), io)).toBe(1);
      expect(logs.at(-1)).toMatch(/needs the student's sampler/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
