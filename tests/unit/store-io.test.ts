// JSONL import/export: the three formats (autodetected or forced), all-or-nothing import with line-numbered
// errors, dedup by content, rollback when a later batch fails, streaming from a Blob, round trips through
// export, and THE FUZZ: 1,000 seeded bad/good lines → ImportError naming exactly the bad lines, store unchanged.
import { afterEach, describe, expect, it } from 'vitest';
import { exportJsonlText, importJsonl, type JsonlFormat } from '../../src/store/io.ts';
import { ImportError, StorageFullError } from '../../src/store/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import type { ChatMessage } from '../../src/store/schema.ts';
import { failPutAt, freshStore, quotaError, rec } from './store-fixtures.ts';

let restore: (() => void) | undefined;
afterEach(() => { restore?.(); restore = undefined; });

const jsonl = (objs: unknown[]) => objs.map((o) => JSON.stringify(o)).join('\n') + '\n';
const conv = (u: string, a: string, sys?: string): ChatMessage[] => [
  ...(sys ? [{ role: 'system' as const, content: sys }] : []),
  { role: 'user', content: u },
  { role: 'assistant', content: a },
];

async function setup() {
  const { store } = await freshStore();
  const ds = await store.createDataset({ name: 'd' });
  return { store, ds };
}
async function messagesOf(store: Awaited<ReturnType<typeof setup>>['store'], id: string) {
  return (await store.getRecords(id, { limit: 10_000 })).map((r) => r.messages);
}

describe('import formats', () => {
  it('reads OpenAI, Alpaca and ShareGPT files, detecting the format', async () => {
    const { store, ds } = await setup();
    const r1 = await importJsonl(store, ds.id, jsonl([{ messages: conv('hi', 'hello', 'be brief') }]));
    expect(r1).toMatchObject({ format: 'openai', written: 1 });
    const r2 = await importJsonl(store, ds.id, jsonl([
      { instruction: 'Translate', input: 'chat', output: 'cat' },
      { instruction: 'Say hi', output: 'hi', system: 'sys' },
    ]));
    expect(r2).toMatchObject({ format: 'alpaca', written: 2 });
    const r3 = await importJsonl(store, ds.id, jsonl([{ id: 'x1', conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }, { from: 'human', value: 'q2' }, { from: 'gpt', value: 'a2' }] }]));
    expect(r3).toMatchObject({ format: 'sharegpt', written: 1 });
    expect(await messagesOf(store, ds.id)).toEqual([
      conv('hi', 'hello', 'be brief'),
      conv('Translate\n\nchat', 'cat'),
      conv('Say hi', 'hi', 'sys'),
      [...conv('q', 'a', 's'), { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' }],
    ]);
    const rec0 = (await store.getRecords(ds.id, { limit: 1 }))[0]!;
    expect(rec0.provenance).toMatchObject({ strategy: 'import', teacher: { kind: 'import' }, params: { format: 'openai' } });
  });

  it('a forced format refuses lines of another format, by number', async () => {
    const { store, ds } = await setup();
    const text = jsonl([{ messages: conv('a', 'b') }, { instruction: 'i', output: 'o' }]);
    const err = await importJsonl(store, ds.id, text, { format: 'sharegpt' }).catch((e: unknown) => e as ImportError);
    expect(err).toBeInstanceOf(ImportError);
    expect((err as ImportError).issues).toEqual([
      { line: 1, reason: 'not in ShareGPT format: missing "conversations"' },
      { line: 2, reason: 'not in ShareGPT format: missing "conversations"' },
    ]);
  });

  it('skips blank lines, strips BOM and CRLF, and streams from a Blob', async () => {
    const { store, ds } = await setup();
    const text = '\uFEFF' + JSON.stringify({ messages: conv('é', '😀') }) + '\r\n\r\n   \n' + JSON.stringify({ messages: conv('二', '三') }) + '\r\n';
    const r = await importJsonl(store, ds.id, new Blob([text]));
    expect(r).toMatchObject({ lines: 2, blankLines: 2, written: 2 });
    expect(await messagesOf(store, ds.id)).toEqual([conv('é', '😀'), conv('二', '三')]);
  });

  it('dedups by content within the file and against the dataset', async () => {
    const { store, ds } = await setup();
    await importJsonl(store, ds.id, jsonl([{ messages: conv('a', 'b') }]));
    const r = await importJsonl(store, ds.id, jsonl([{ messages: conv('a', 'b') }, { messages: conv('c', 'd') }, { messages: conv('c', 'd') }]), { batchSize: 1 });
    expect(r).toMatchObject({ written: 1, duplicatesInFile: 1, duplicatesInDataset: 1 });
    expect((await store.counts(ds.id)).records).toBe(2);
  });

  it('refuses empty files and unknown options', async () => {
    const { store, ds } = await setup();
    await expect(importJsonl(store, ds.id, '\n  \n')).rejects.toThrow(/no records/);
    await expect(importJsonl(store, ds.id, jsonl([{ messages: conv('a', 'b') }]), { fromat: 'openai' } as never)).rejects.toThrow(/unknown option "fromat"/);
  });

  it('rolls back the batches already written when a later batch fails', async () => {
    const { store, ds } = await setup();
    await store.putRecords(ds.id, [rec('existing', 'q')]);
    const before = await store.dump();
    const lines = Array.from({ length: 7 }, (_, i) => ({ messages: conv(`q${i}`, `a${i}`) }));
    // Each 2-record batch makes 3 puts (2 records + the dataset counts): the 7th put is in the third batch.
    restore = failPutAt(7, quotaError);
    const err = await importJsonl(store, ds.id, jsonl(lines), { batchSize: 2 }).catch((e: unknown) => e);
    restore();
    expect(err).toBeInstanceOf(StorageFullError);
    expect(await store.dump()).toBe(before);
  });
});

describe('export', () => {
  const formats: JsonlFormat[] = ['openai', 'alpaca', 'sharegpt'];
  for (const format of formats) {
    it(`round-trips through ${format} JSONL, never with provenance by default`, async () => {
      const { store, ds } = await setup();
      const single = [conv('q1 "quoted"\nnewline', 'a1 😀'), conv('q2', 'a2', 'sys')];
      const multi = [...conv('q', 'a'), { role: 'user' as const, content: 'more' }, { role: 'assistant' as const, content: 'ok' }];
      await store.putRecords(ds.id, [...single, multi].map((messages, i) => ({ ...rec(`k${i}`, 'x'), messages })));
      const skipped: number[] = [];
      const text = await exportJsonlText(store, ds.id, format, { pageSize: 2, onSkip: (id) => skipped.push(id) });
      expect(text).not.toMatch(/provenance|teacher-7b|127\.0\.0\.1/);
      const lines = text.trimEnd().split('\n');
      expect(lines.length).toBe(format === 'alpaca' ? 2 : 3);
      expect(skipped.length).toBe(format === 'alpaca' ? 1 : 0);
      const other = await store.createDataset({ name: 'copy' });
      const r = await importJsonl(store, other.id, text);
      expect(r.format).toBe(format);
      expect(await messagesOf(store, other.id)).toEqual(format === 'alpaca' ? single : [...single, multi]);
    });
  }

  it('includes provenance only when asked', async () => {
    const { store, ds } = await setup();
    await store.putRecords(ds.id, [rec('a', 'q')]);
    const line = JSON.parse(await exportJsonlText(store, ds.id, 'openai', { includeProvenance: true })) as { provenance: { teacher: { model: string } } };
    expect(line.provenance.teacher.model).toBe('teacher-7b');
  });
});

// ------------------------------------------------------------------------------------------------- the fuzz

const MAX_LINE = 20_000;
const WORDS = ['hello', 'wörld', '日本語', 'مرحبا', '😀👍🏽', 'zero\u200bwidth', 'tab\there', 'quote"q', 'back\\slash', 'nul\u0000x', 'line\nbreak'];

/** 1,000 lines: valid OpenAI lines mixed with every kind of bad line; returns the text and the bad line numbers. */
function fuzzFile(seed: number, n = 1000): { text: string; bad: number[]; good: string[] } {
  const rng = new Rng(seed);
  const pick = <T>(a: readonly T[]): T => a[rng.int(a.length)]!;
  const words = (k: number) => Array.from({ length: k }, () => pick(WORDS)).join(' ');
  const valid = () => ({ messages: rng.next() < 0.3 ? conv(words(3), words(5), words(2)) : conv(words(1 + rng.int(4)), words(1 + rng.int(6))) });
  const lines: string[] = [];
  const bad: number[] = [];
  const good: string[] = [];
  const goodLine = (s: string) => { lines.push(s); good.push(s); };
  const badLine = (s: string) => { lines.push(s); bad.push(lines.length); };
  goodLine(JSON.stringify(valid())); // line 1 fixes the detected format
  const generators: (() => void)[] = [
    () => goodLine(JSON.stringify(valid())),
    () => goodLine(good.length > 0 ? pick(good) : JSON.stringify(valid())), // a duplicate: valid, deduped
    () => lines.push(pick(['', '   ', '\t'])), // blank: skipped, not an error
    () => { const s = JSON.stringify(valid()); badLine(s.slice(0, 1 + rng.int(s.length - 1))); }, // truncated JSON
    () => badLine(JSON.stringify(valid()) + pick([',', ' x', '}', ']'])), // trailing garbage
    () => badLine(pick(['[1,2]', '"just a string"', 'null', '42', 'true', '{', 'undefined', "{'messages': []}"])),
    () => badLine(JSON.stringify({ messages: [{ role: 'user', content: rng.int(100) }] })), // wrong type
    () => badLine(JSON.stringify({ messages: { role: 'user', content: 'x' } })),
    () => badLine(JSON.stringify({ messages: [{ role: 'user' }] })), // missing content
    () => badLine(JSON.stringify({ messages: [] })),
    () => badLine(JSON.stringify({})), // missing messages
    () => badLine(JSON.stringify({ messages: [{ role: pick(['tool', 'function', 'gpt', 'human', 'USER', '']), content: 'x' }] })),
    () => badLine(JSON.stringify({ messages: [{ role: 42, content: 'x' }] })),
    () => badLine(JSON.stringify({ ...valid(), weight: 1 })), // unknown field
    () => badLine(JSON.stringify({ conversations: [{ from: 'human', value: 'x' }] })), // another format
    () => badLine(JSON.stringify({ messages: conv('x'.repeat(MAX_LINE + rng.int(5000)), 'y') })), // huge
    () => goodLine(JSON.stringify({ messages: conv('y'.repeat(MAX_LINE - 200), 'z') })), // large but allowed
    () => badLine(`{"messages": [{"role": "user", "content": "bad \\ud800 surrogate"}]}`), // malformed Unicode
    () => goodLine(`{"messages": [{"role": "user", "content": "ok \\ud83d\\ude00 pair"}, {"role": "assistant", "content": "\\u00e9"}]}`),
  ];
  while (lines.length < n) pick(generators)();
  return { text: lines.join(pick(['\n', '\r\n'])) + '\n', bad, good };
}

describe('THE FUZZ: 1,000 fuzzed import lines', () => {
  for (const seed of [11, 12, 13]) {
    it(`names exactly the bad lines and leaves the store byte-for-byte unchanged (seed ${seed})`, async () => {
      const { store, ds } = await setup();
      await importJsonl(store, ds.id, jsonl([{ messages: conv('pre-existing', 'record') }]));
      const before = await store.dump();
      const { text, bad, good } = fuzzFile(seed);
      expect(bad.length).toBeGreaterThan(100);
      const err = await importJsonl(store, ds.id, text, { maxLineChars: MAX_LINE }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImportError);
      const e = err as ImportError;
      expect(e.badLines).toBe(bad.length);
      expect(e.issues.map((i) => i.line)).toEqual(bad.slice(0, 50));
      for (const i of e.issues) expect(i.reason.length).toBeGreaterThan(5);
      expect(e.message).toContain(`${bad.length} of`);
      expect(e.message).toContain(`line ${bad[0]}: `);
      expect(e.message).toContain('nothing was written');
      expect(await store.dump()).toBe(before);
      // The valid lines alone import, deduped (and against the pre-existing record).
      const ok = await importJsonl(store, ds.id, good.join('\n'), { maxLineChars: MAX_LINE, batchSize: 64 });
      const unique = new Set(good.map((g) => JSON.stringify((JSON.parse(g) as { messages: unknown }).messages))).size;
      expect(ok.written).toBe(unique);
      expect(ok.duplicatesInFile).toBe(good.length - unique);
      expect((await store.counts(ds.id)).records).toBe(unique + 1);
    });
  }

  it('shows what the error looks like', async () => {
    const { store, ds } = await setup();
    const err = (await importJsonl(store, ds.id, fuzzFile(11, 40).text, { maxLineChars: MAX_LINE }).catch((e: unknown) => e)) as Error;
    console.log(err.message.split('\n').slice(0, 8).join('\n'));
    expect(err.message.split('\n').length).toBeGreaterThan(2);
  });
});
