// Preference-pair import (src/store/pairs-io.ts; issue #24's "an imported preference dataset"): TRL's standard and
// conversational lines become pairs; repeats in the file and pairs already in the dataset are skipped and counted; a
// file with bad lines is refused whole, naming each line and why, with nothing written; and our own scale-out
// export's dpo/train.jsonl reads back as the pairs it was written from.
import { describe, expect, it } from 'vitest';
import { scaleoutExport } from '../../src/export/dataset.ts';
import { ImportError } from '../../src/store/errors.ts';
import { importPairsJsonl, isPairLine } from '../../src/store/pairs-io.ts';
import { freshStore, provenance } from './store-fixtures.ts';

const strip = (ps: { prompt: unknown; chosen: string; rejected: string }[]) => ps.map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }));

describe('preference pair import', () => {
  it('reads standard and conversational lines; counts repeats in the file and in the dataset', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'prefs' });
    const file = [
      JSON.stringify({ prompt: 'Name a colour', chosen: 'Blue.', rejected: 'Seven.', score_chosen: 8 }),
      '',
      JSON.stringify({ prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Two plus two?' }], chosen: [{ role: 'assistant', content: 'Four.' }], rejected: [{ role: 'assistant', content: 'Five.' }] }),
      JSON.stringify({ prompt: 'Name a colour', chosen: 'Blue.', rejected: 'Seven.' }),
    ].join('\n');
    expect(isPairLine(JSON.parse(file.split('\n')[0]!))).toBe(true);
    const r = await importPairsJsonl(store, ds.id, file, { sourceName: 'prefs.jsonl' });
    expect(r).toEqual({ format: 'mixed', lines: 3, written: 2, duplicatesInFile: 1, duplicatesInDataset: 0, blankLines: 1 });
    const pairs = await store.getPairs(ds.id);
    expect(strip(pairs)).toEqual([
      { prompt: [{ role: 'user', content: 'Name a colour' }], chosen: 'Blue.', rejected: 'Seven.' },
      { prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Two plus two?' }], chosen: 'Four.', rejected: 'Five.' },
    ]);
    expect(pairs[0]!.provenance).toMatchObject({ strategy: 'import', teacher: { kind: 'import', model: 'prefs.jsonl' } });
    expect((await store.getDataset(ds.id))!.counts.pairs).toBe(2);
    const again = await importPairsJsonl(store, ds.id, file);
    expect(again).toMatchObject({ written: 0, duplicatesInFile: 1, duplicatesInDataset: 2 });
  });

  it('refuses a file with bad lines whole, naming each line and why', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'prefs' });
    const file = [
      JSON.stringify({ prompt: 'ok', chosen: 'a', rejected: 'b' }),
      JSON.stringify({ chosen: 'a', rejected: 'b' }),
      JSON.stringify({ prompt: 'same', chosen: 'x', rejected: 'x' }),
      JSON.stringify({ prompt: 'form', chosen: 'x', rejected: [{ role: 'assistant', content: 'y' }] }),
      JSON.stringify({ prompt: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], chosen: 'x', rejected: 'y' }),
      JSON.stringify({ prompt: 'p', chosen: 'x', rejected: 'y', api_key: 'sk-1' }),
      '{not json',
    ].join('\n');
    const e = await importPairsJsonl(store, ds.id, file).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ImportError);
    expect((e as ImportError).issues.map((i) => i.line)).toEqual([2, 3, 4, 5, 6, 7]);
    const msg = (e as Error).message;
    expect(msg).toMatch(/6 of 7 lines are not valid preference pairs; nothing was written/);
    expect(msg).toMatch(/line 2: missing "prompt"/);
    expect(msg).toMatch(/line 3: chosen and rejected are the same answer/);
    expect(msg).toMatch(/line 4: chosen and rejected must have the same form/);
    expect(msg).toMatch(/line 5: prompt: its last message must be the user's/);
    expect(msg).toMatch(/line 6: unsupported field "api_key"/);
    expect(msg).toMatch(/line 7: not valid JSON/);
    expect(await store.getPairs(ds.id)).toEqual([]);
    await expect(importPairsJsonl(store, ds.id, '\n\n')).rejects.toThrow(/no preference pairs/);
  });

  it('reads back our scale-out export\'s dpo/train.jsonl as the pairs it was written from', async () => {
    const { store } = await freshStore();
    const src = await store.createDataset({ name: 'src' });
    const written = [
      { key: 'p1', prompt: [{ role: 'user' as const, content: 'pick' }], chosen: 'good', rejected: 'bad', provenance: provenance() },
      { key: 'p2', prompt: [{ role: 'system' as const, content: 's' }, { role: 'user' as const, content: 'pick2' }], chosen: 'g2', rejected: 'b2', provenance: provenance() },
    ];
    await store.putPairs(src.id, written);
    const { files } = await scaleoutExport(store, src.id);
    const dpo = new TextDecoder().decode(files.find((f) => f.path === 'dpo/train.jsonl')!.bytes);
    const dst = await store.createDataset({ name: 'dst' });
    expect((await importPairsJsonl(store, dst.id, dpo)).written).toBe(2);
    expect(strip(await store.getPairs(dst.id))).toEqual(strip(written));
  });
});
