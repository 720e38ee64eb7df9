// Parquet import/export (src/store/parquet.ts): round trips through real Parquet bytes in the three layouts, files
// as pyarrow/HF datasets lay them out (extra columns, null struct fields, JSON text columns), all-or-nothing with
// bad rows by number, dedup, rollback, refusal of corrupt/unsupported files with the store unchanged (incl. 300
// random corruptions), and — when python3 with pyarrow is installed — pyarrow reading our file and writing files
// we import. pyarrow is required (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, describe, expect, it } from 'vitest';
import { ImportError } from '../../src/store/errors.ts';
import { exportParquet, importParquet, listSchema, scalarSchema, structListSchema, writeParquet } from '../../src/store/parquet.ts';
import { snappyDecompress } from '../../src/store/parquet-guard.ts';
import type { ChatMessage } from '../../src/store/schema.ts';
import { Rng } from '../../src/util/rng.ts';
import { failPutAt, freshStore, provenance, quotaError } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => { restore?.(); restore = undefined; });

const conv = (u: string, a: string, sys?: string): ChatMessage[] => [
  ...(sys !== undefined ? [{ role: 'system' as const, content: sys }] : []),
  { role: 'user', content: u },
  { role: 'assistant', content: a },
];

const CONVERSATIONS: ChatMessage[][] = [
  conv('hi', 'hello', 'be brief'),
  conv('é 二 😀', 'line1\nline2\t"quoted"'),
  [...conv('q', 'a'), { role: 'user', content: 'q2' }, { role: 'assistant', content: '' }],
  conv('only', 'pair'),
];

async function setup() {
  const { store } = await freshStore();
  const ds = await store.createDataset({ name: 'd' });
  return { store, ds };
}
type Store = Awaited<ReturnType<typeof setup>>['store'];

async function withRecords(convs: ChatMessage[][]) {
  const s = await setup();
  await s.store.putRecords(s.ds.id, convs.map((messages, i) => ({ key: `k${i}`, messages, provenance: provenance() })));
  return s;
}
const messagesOf = async (store: Store, id: string) => (await store.getRecords(id, { limit: 100_000 })).map((r) => r.messages);

/** A file in the openai layout whose `messages` column holds the given (possibly invalid) values. */
const messagesFile = (rows: unknown[]) => writeParquet([{ schema: structListSchema('messages', ['role', 'content']), data: rows }]);

describe('round trips through Parquet bytes', () => {
  it('openai (messages list<struct>), sharegpt and alpaca layouts', async () => {
    const { store, ds } = await withRecords(CONVERSATIONS);
    for (const format of ['openai', 'sharegpt'] as const) {
      const bytes = await exportParquet(store, ds.id, { format });
      const back = await setup();
      const r = await importParquet(back.store, back.ds.id, bytes);
      expect(r).toMatchObject({ format, rows: 4, written: 4, duplicatesInFile: 0, ignoredColumns: [] });
      expect(await messagesOf(back.store, back.ds.id)).toEqual(CONVERSATIONS);
    }
    const skipped: number[] = [];
    const alpaca = await exportParquet(store, ds.id, { format: 'alpaca', onSkip: (id) => skipped.push(id) });
    expect(skipped).toHaveLength(1); // the multi-turn conversation
    const back = await setup();
    expect(await importParquet(back.store, back.ds.id, new Blob([alpaca]))).toMatchObject({ format: 'alpaca', rows: 3, written: 3 });
    expect(await messagesOf(back.store, back.ds.id)).toEqual([CONVERSATIONS[0], CONVERSATIONS[1], CONVERSATIONS[3]]);
  });

  it('provenance column is JSON text without credentials; import ignores it and says so', async () => {
    const { store, ds } = await withRecords(CONVERSATIONS.slice(0, 2));
    const bytes = await exportParquet(store, ds.id, { includeProvenance: true });
    const back = await setup();
    const r = await importParquet(back.store, back.ds.id, bytes, { sourceName: 'x.parquet' });
    expect(r.ignoredColumns).toEqual(['provenance']);
    const rec = (await back.store.getRecords(back.ds.id))[0]!;
    expect(rec.provenance).toMatchObject({ strategy: 'import', teacher: { kind: 'import', model: 'x.parquet' }, params: { format: 'openai', file: 'parquet' } });
  });

  it('reads HF-style files: extra columns, null fields as absent, JSON text columns, nullable alpaca input', async () => {
    const { store, ds } = await setup();
    const hf = writeParquet([
      { schema: scalarSchema('prompt_id', 'STRING'), data: ['a', 'b'] },
      { schema: structListSchema('messages', ['content', 'role', 'name']), data: [
        [{ content: 'q', role: 'user', name: null }, { content: 'a', role: 'assistant', name: null }],
        [{ content: 'q2', role: 'user' }, { content: 'a2', role: 'assistant' }],
      ] },
      { schema: listSchema('score', 'INT32', 1), data: [[1, 2], null] },
    ]);
    expect(await importParquet(store, ds.id, hf)).toMatchObject({ format: 'openai', written: 2, ignoredColumns: ['prompt_id', 'score'] });
    const json = writeParquet([{ schema: scalarSchema('conversations', 'STRING'), data: [JSON.stringify([{ from: 'human', value: 'x' }, { from: 'gpt', value: 'y' }])] }]);
    expect(await importParquet(store, ds.id, json)).toMatchObject({ format: 'sharegpt', written: 1 });
    const alpaca = writeParquet([
      { schema: scalarSchema('instruction', 'STRING'), data: ['Translate', 'Say hi'] },
      { schema: scalarSchema('input', 'STRING'), data: ['chat', null] },
      { schema: scalarSchema('output', 'STRING'), data: ['cat', 'hi'] },
    ]);
    expect(await importParquet(store, ds.id, alpaca)).toMatchObject({ format: 'alpaca', written: 2 });
    expect(await messagesOf(store, ds.id)).toEqual([conv('q', 'a'), conv('q2', 'a2'), conv('x', 'y'), conv('Translate\n\nchat', 'cat'), conv('Say hi', 'hi')]);
  });
});

describe('bounded snappy', () => {
  it('decodes literals and overlapping copies; refuses impossible streams at once', () => {
    const td = new TextDecoder();
    // size 5; literal "a"; copy len 4 from offset 1 (overlapping: repeats "a").
    expect(td.decode(snappyDecompress(new Uint8Array([5, 0x00, 0x61, 0x01, 0x01]), 5))).toBe('aaaaa');
    // size 6; literal "abc" (len-1 = 2 in the tag); copy-2 len 3 offset 3.
    expect(td.decode(snappyDecompress(new Uint8Array([6, 0x08, 0x61, 0x62, 0x63, (2 << 2) | 2, 3, 0]), 6))).toBe('abcabc');
    const bad: [number[], number, RegExp][] = [
      [[5, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x61], 5, /literal runs past/], // 4-byte literal length 2^32 (hyparquet walks back for seconds)
      [[5, 0x00, 0x61, 0x01, 0x02], 5, /copy of 4 bytes from 2 back/],
      [[4, 0x00, 0x61], 4, /ends after 1 of 4/],
      [[9, 0x00, 0x61], 4, /holds 9 bytes, the page header says 4/],
      [[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 1, /bad length header/],
      [[5, 0x00], 1_000_000, /declares 1000000 bytes from 2/],
    ];
    for (const [bytes, size, re] of bad) expect(() => snappyDecompress(new Uint8Array(bytes), size)).toThrow(re);
  });

  it('round-trips long literals and far copies through real pages', async () => {
    const rng = new Rng(3);
    const random = Array.from({ length: 70_000 }, () => String.fromCharCode(32 + Math.floor(rng.next() * 90))).join('');
    const convs = [conv(random, 'ok'), conv('abc'.repeat(30_000), random.slice(0, 5000) + 'abc'.repeat(1000))];
    const { store, ds } = await withRecords(convs);
    const back = await setup();
    expect(await importParquet(back.store, back.ds.id, await exportParquet(store, ds.id))).toMatchObject({ written: 2 });
    expect(await messagesOf(back.store, back.ds.id)).toEqual(convs);
  });
});

describe('all-or-nothing import', () => {
  it('names bad rows by number (the JSONL validation) and writes nothing', async () => {
    const { store, ds } = await setup();
    await store.putRecords(ds.id, [{ key: 'x', messages: conv('keep', 'me'), provenance: provenance() }]);
    const before = await store.dump();
    const rows = [
      conv('ok', 'ok'),
      [{ role: 'tool', content: 'x' }],
      conv('ok2', 'ok2'),
      [],
      [{ role: 'user' }],
      null,
    ];
    const err = await importParquet(store, ds.id, messagesFile(rows)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImportError);
    const ie = err as ImportError;
    expect(ie.badLines).toBe(4);
    expect(ie.issues.map((i) => i.line)).toEqual([2, 4, 5, 6]);
    expect(ie.issues[0]!.reason).toMatch(/messages\[0\]\.role: must be one of system, user, assistant, got "tool"/);
    expect(ie.issues[2]!.reason).toMatch(/messages\[0\]\.content: must be a string/);
    expect(ie.issues[3]!.reason).toMatch(/missing "messages"/);
    expect(ie.message).toMatch(/4 of 6 rows are invalid OpenAI messages/);
    expect(await store.dump()).toBe(before);
  });

  it('unknown non-null struct fields are refused like in JSONL', async () => {
    const { store, ds } = await setup();
    const f = writeParquet([{ schema: structListSchema('conversations', ['from', 'value', 'weight']), data: [[{ from: 'human', value: 'q', weight: '1' }]] }]);
    const err = (await importParquet(store, ds.id, f).catch((e: unknown) => e)) as ImportError;
    expect(err.issues).toEqual([{ line: 1, reason: 'unsupported field "weight" (ShareGPT turn lines allow: from, value)' }]);
  });

  it('dedups within the file and against the dataset', async () => {
    const { store, ds } = await setup();
    const f = messagesFile([conv('a', 'b'), conv('c', 'd'), conv('a', 'b')]);
    expect(await importParquet(store, ds.id, f, { batchSize: 1 })).toMatchObject({ written: 2, duplicatesInFile: 1, duplicatesInDataset: 0 });
    expect(await importParquet(store, ds.id, f)).toMatchObject({ written: 0, duplicatesInFile: 1, duplicatesInDataset: 2 });
    expect((await store.counts(ds.id)).records).toBe(2);
  });

  it('a failing later batch rolls back the batches already written', async () => {
    const { store, ds } = await setup();
    const before = await store.dump();
    const f = messagesFile(Array.from({ length: 10 }, (_, i) => conv(`u${i}`, `a${i}`)));
    // putRecords puts each record, then the dataset: batch 1 = 4 puts; the 6th put is inside batch 2.
    restore = failPutAt(6, quotaError);
    await expect(importParquet(store, ds.id, f, { batchSize: 3 })).rejects.toThrow(/Storage is full/);
    restore();
    restore = undefined;
    expect(JSON.parse(await store.dump()).records).toEqual([]);
    expect((await store.counts(ds.id)).records).toBe(0);
    expect(before).toContain('"records":[]');
  });
});

describe('corrupt and unsupported files', () => {
  it('refuses non-Parquet, truncated, limits and unsupported codecs with clear errors', async () => {
    const { store, ds } = await setup();
    const good = messagesFile([conv('a', 'b'), conv('c', 'd')]);
    const before = await store.dump();
    const cases: [Uint8Array | Blob, RegExp, object?][] = [
      [new TextEncoder().encode('{"messages": []}\n'), /not a Parquet file \(no "PAR1" magic/],
      [new Uint8Array(5), /too short/],
      [good.slice(0, good.length - 20), /not a Parquet file|footer is corrupt/],
      [good, /over the limit of 100/, { maxBytes: 100 }],
      [good, /2 rows, over the limit of 1/, { maxRows: 1 }],
      [writeParquet([{ schema: scalarSchema('text', 'STRING'), data: ['x'] }]), /no known layout.*it has: text/],
      [good, /not in Alpaca layout: no column "instruction", "output"/, { format: 'alpaca' }],
      [writeParquet([{ schema: structListSchema('messages', ['role', 'content']), data: [] }]), /no rows/],
    ];
    for (const [bytes, re, opts] of cases) {
      const err = await importParquet(store, ds.id, bytes, opts).catch((e: unknown) => e);
      expect(err, String(re)).toBeInstanceOf(ImportError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).toMatch(/nothing was written/);
    }
    const gzip = new Uint8Array(parquetWriteBuffer({
      columnData: [{ name: 'messages', data: [conv('a', 'b')] as never }],
      schema: [{ name: 'schema', num_children: 1 }, ...structListSchema('messages', ['role', 'content'])],
      codec: 'GZIP',
      compressors: { GZIP: (b: Uint8Array) => b },
    }));
    await expect(importParquet(store, ds.id, gzip)).rejects.toThrow(/compressed with GZIP; this importer reads SNAPPY or uncompressed/);
    expect(await store.dump()).toBe(before);
  });

  it('300 random corruptions: an ImportError (store unchanged) or a valid import, never a crash', async () => {
    const rng = new Rng(7);
    const good = writeParquet([{ schema: structListSchema('messages', ['role', 'content']), data: Array.from({ length: 40 }, (_, i) => conv(`question number ${i}`, `answer ${'x'.repeat(i)}`)) }], { rowGroupSize: 15 });
    let refused = 0;
    for (let it = 0; it < 300; it++) { // ~1 s in all: every case refused or read at once
      const { store, ds } = await setup();
      const before = await store.dump();
      const bad = good.slice();
      const flips = 1 + Math.floor(rng.next() * 4);
      for (let f = 0; f < flips; f++) bad[Math.floor(rng.next() * bad.length)] = Math.floor(rng.next() * 256);
      try {
        const r = await importParquet(store, ds.id, bad);
        expect(r.written).toBeGreaterThan(0);
      } catch (e) {
        expect(e, `iteration ${it}: ${(e as Error).stack}`).toBeInstanceOf(ImportError);
        expect(await store.dump()).toBe(before);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(50);
  }, 120_000);
});

// ------------------------------------------------------------------------------------ a real reader: pyarrow

function python(): string | undefined {
  for (const py of ['python3', 'python']) {
    const r = spawnSync(py, ['-c', 'import pyarrow'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}
const PY = python();
// A real reader is required, not optional: .ci/run installs pyarrow (python3 -m pip install pyarrow).
describe('pyarrow (the reader HF datasets uses)', () => {
  it('is installed', () => expect(PY, 'python3 with pyarrow is required: python3 -m pip install pyarrow (.ci/run does)').toBeDefined());
  it('imports pyarrow files of every page layout: v1/v2 pages, dictionary or plain, snappy or none, many pages', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pq-'));
    try {
      const script = `
import json, sys, random, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
random.seed(5)
rows, alp = [], []
for i in range(300):
    turns = 1 + i % 4
    msgs = ([{'role': 'system', 'content': 'sys'}] if i % 5 == 0 else [])
    for t in range(turns):
        msgs.append({'role': 'user', 'content': 'q%d-%d ' % (i, t) + 'x' * random.randint(0, 300)})
        msgs.append({'role': 'assistant', 'content': 'same answer' if i % 3 else 'a%d' % i})
    rows.append({'messages': msgs, 'n': i})
    alp.append({'instruction': 'do %d' % i, 'input': None if i % 2 else 'in', 'output': 'out' if i % 7 else 'o%d' % i})
names = []
for v in ['1.0', '2.0']:
    for dic in [True, False]:
        for comp in ['snappy', 'none']:
            name = 'v%s-%s-%s' % (v, 'dict' if dic else 'plain', comp)
            kw = dict(data_page_version=v, use_dictionary=dic, compression=comp, row_group_size=128, data_page_size=512)
            pq.write_table(pa.Table.from_pylist(rows), d + '/m-' + name + '.parquet', **kw)
            pq.write_table(pa.Table.from_pylist(alp), d + '/a-' + name + '.parquet', **kw)
            names.append(name)
print(json.dumps({'names': names, 'rows': [r['messages'] for r in rows], 'alpaca': alp}))
`;
      const r = spawnSync(PY!, ['-c', script, dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { names: string[]; rows: ChatMessage[][]; alpaca: { instruction: string; input: string | null; output: string }[] };
      const alpacaWant = out.alpaca.map((a) => conv(a.input ? `${a.instruction}\n\n${a.input}` : a.instruction, a.output));
      for (const name of out.names) {
        const m = await setup();
        const res = await importParquet(m.store, m.ds.id, new Uint8Array(readFileSync(join(dir, `m-${name}.parquet`))));
        expect(res, name).toMatchObject({ rows: 300, written: 300 });
        expect(await messagesOf(m.store, m.ds.id), name).toEqual(out.rows);
        const a = await setup();
        expect(await importParquet(a.store, a.ds.id, new Uint8Array(readFileSync(join(dir, `a-${name}.parquet`)))), name).toMatchObject({ format: 'alpaca', written: 300 });
        expect(await messagesOf(a.store, a.ds.id), name).toEqual(alpacaWant);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('reads our export with the HF schema, and we import what pyarrow writes', async () => {
    const { store, ds } = await withRecords(CONVERSATIONS);
    const dir = mkdtempSync(join(tmpdir(), 'pq-'));
    try {
      writeFileSync(join(dir, 'ours.parquet'), await exportParquet(store, ds.id));
      const script = `
import json, sys, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
t = pq.read_table(d + '/ours.parquet')
print(json.dumps({'schema': str(t.schema.field('messages').type), 'rows': t.to_pylist()}))
rows = [{'id': 1, 'messages': [{'role': 'system', 'content': 's'}, {'role': 'user', 'content': 'é?'}, {'role': 'assistant', 'content': '😀'}]},
        {'id': 2, 'messages': [{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}]}]
pq.write_table(pa.Table.from_pylist(rows), d + '/snappy.parquet')
pq.write_table(pa.Table.from_pylist(rows), d + '/plain.parquet', compression='none', use_dictionary=False)
pq.write_table(pa.Table.from_pylist(rows), d + '/zstd.parquet', compression='zstd')
`;
      const r = spawnSync(PY!, ['-c', script, dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { schema: string; rows: { messages: ChatMessage[] }[] };
      expect(out.schema).toBe('list<element: struct<role: string, content: string>>');
      expect(out.rows.map((x) => x.messages)).toEqual(CONVERSATIONS);
      const want = [conv('é?', '😀', 's'), conv('q', 'a')];
      for (const f of ['snappy', 'plain']) {
        const back = await setup();
        const res = await importParquet(back.store, back.ds.id, new Uint8Array(readFileSync(join(dir, `${f}.parquet`))));
        expect(res).toMatchObject({ format: 'openai', written: 2, ignoredColumns: ['id'] });
        expect(await messagesOf(back.store, back.ds.id)).toEqual(want);
      }
      const back = await setup();
      await expect(importParquet(back.store, back.ds.id, new Uint8Array(readFileSync(join(dir, 'zstd.parquet'))))).rejects.toThrow(/compressed with ZSTD/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
