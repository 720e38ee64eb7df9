// The DOM-free modules behind the Data stage: the topic-tree text format (src/elicit/topic-text.ts), the
// strategy form's config builder and metadata (src/elicit/strategy-info.ts) against every strategy's own validate()
// and the template table, and record search over the store's paging API (src/store/search.ts, fake-indexeddb).
import { describe, expect, it } from 'vitest';
import { topicLeaves } from '../../src/elicit/curation.ts';
import { strategyByName } from '../../src/elicit/run.ts';
import { configFromForm, otherTeachers, plannedTotal, splitLines, STRATEGY_INFO, type FormValues } from '../../src/elicit/strategy-info.ts';
import { TEMPLATES, type TemplateName } from '../../src/elicit/templates.ts';
import { parseTopicText, topicsToText } from '../../src/elicit/topic-text.ts';
import { ElicitError, STRATEGY_NAMES } from '../../src/elicit/types.ts';
import { recordMatches, searchRecords } from '../../src/store/search.ts';
import { freshStore, rec } from './store-fixtures.ts';

describe('topic tree text', () => {
  it('parses indented lines (bullets, tabs, blank lines) into TopicNode[] and writes it back', () => {
    const text = 'Science\n  Physics\n    - Optics\n    * Mechanics\n\n  Biology\n\tCells\nCooking\n';
    const tree = parseTopicText(text.replace('\tCells', '  Cells'));
    expect(tree).toEqual([{ topic: 'Science', subtopics: [{ topic: 'Physics', subtopics: ['Optics', 'Mechanics'] }, 'Biology', 'Cells'] }, 'Cooking']);
    expect(parseTopicText(topicsToText(tree))).toEqual(tree);
    expect(topicLeaves(tree).map((l) => l.path.join(' > '))).toContain('Science > Physics > Optics');
    // A tab counts as four spaces.
    expect(parseTopicText('A\n\tB\n\tC')).toEqual([{ topic: 'A', subtopics: ['B', 'C'] }]);
  });

  it('names the line of an indentation that matches no parent, and refuses an empty tree', () => {
    expect(() => parseTopicText('A\n    B\n  C')).toThrow(/line 3: “C” is indented 2 spaces/);
    expect(() => parseTopicText('  A\nB')).toThrow(/line 1: the first topic is indented/);
    expect(() => parseTopicText(' \n\n')).toThrow(ElicitError);
    expect(() => parseTopicText('A\n  - \nB')).toThrow(/line 2: a bullet without a topic/);
  });

  it('reads JSON when the text starts with [ (checked in depth by curation.validate)', () => {
    expect(parseTopicText('[{"topic": "A", "subtopics": ["B"]}, "C"]')).toEqual([{ topic: 'A', subtopics: ['B'] }, 'C']);
    expect(() => parseTopicText('[{"topic": "A",')).toThrow(/not valid JSON/);
    const bad = parseTopicText('[{"topic": "A", "subtopics": []}]');
    expect(() => strategyByName('curation').validate({ topics: bad })).toThrow(/topics\[0\]\.subtopics/);
  });
});

function values(name: (typeof STRATEGY_NAMES)[number], extra: Partial<FormValues> = {}): FormValues {
  const info = STRATEGY_INFO[name];
  const fields: FormValues['fields'] = {};
  for (const f of info.fields) {
    const d = info.defaults[f.key];
    fields[f.key] = f.kind === 'bool' ? d === true : f.kind === 'multi' ? (d as string[]) : d === null || d === undefined ? '' : String(d);
  }
  return {
    lines: 'The history of the city\nThe river ran through the valley\n',
    topics: 'Science\n  Optics\nCooking',
    fields,
    common: { temperature: '0.5', maxTokens: '16', seed: '7', batchSize: '2' },
    templates: Object.fromEntries(info.templates.map((t) => [t.name, TEMPLATES[t.name].text])),
    ...extra,
  };
}

describe('strategy form → config', () => {
  it('every strategy: the form of its defaults validates, and its fields and templates are its own', () => {
    const covered = new Set<string>();
    for (const name of STRATEGY_NAMES) {
      const info = STRATEGY_INFO[name];
      expect(info.name).toBe(name);
      for (const f of info.fields) if (!f.formOnly) expect(Object.keys(info.defaults), `${name}.${f.key}`).toContain(f.key);
      // The ensemble asks its teachers with labeling's and feedback's templates; every other strategy has its own.
      for (const t of info.templates) { if (name !== 'ensemble') expect(t.name.startsWith(`${name}.`)).toBe(true); covered.add(t.name); }
      const c = name === 'ensemble'
        ? configFromForm(name, values(name, { fields: { ...values(name).fields, others: 'other-model' } }), { active: { model: 'first', baseURL: 'http://127.0.0.1:1/v1' } })
        : configFromForm(name, values(name));
      const v = strategyByName(name).validate(c) as Record<string, unknown>;
      expect(v.temperature).toBe(0.5);
      expect(v.maxTokens).toBe(16);
      expect(v.seed).toBe(7);
      expect('templates' in c, 'default templates are not repeated in the config').toBe(false);
      expect(plannedTotal(name, v)).toBeGreaterThan(0);
    }
    expect([...covered].sort()).toEqual(Object.keys(TEMPLATES).sort());
  });

  it('ensemble: the other teachers, one per line (same server, or model@URL); bad lines named', () => {
    const active = { model: 'first', baseURL: 'http://127.0.0.1:9/v1' };
    expect(otherTeachers('second\nthird@https://api.example.com/v1/', active)).toEqual([
      { model: 'second', baseURL: 'http://127.0.0.1:9/v1' }, { model: 'third', baseURL: 'https://api.example.com/v1' },
    ]);
    expect(configFromForm('ensemble', values('ensemble', { fields: { ...values('ensemble').fields, others: 'second' } }), { active })).toMatchObject({ teachers: ['first', 'second'] });
    expect(() => otherTeachers('', active)).toThrow(/name at least one more teacher/);
    expect(() => otherTeachers('second', { model: 'local', baseURL: null })).toThrow(/line 1: the active teacher is not a server.*second@https/);
    expect(() => otherTeachers('x@ftp://h/v1', active)).toThrow(/line 1: 'ftp:\/\/h\/v1' is not an http\(s\) URL/);
    expect(() => otherTeachers('second\nsecond', active)).toThrow(/line 2: "second" is named twice/);
    expect(() => otherTeachers('first', active)).toThrow(/line 1: "first" is named twice/);
  });

  it('parses numbers, empty = null where the strategy allows it, and names the field of a bad number', () => {
    const l = configFromForm('labeling', values('labeling', { common: { temperature: '0', maxTokens: '8', seed: '', batchSize: '' } }));
    expect(l).toMatchObject({ inputs: ['The history of the city', 'The river ran through the valley'], seed: null, batchSize: null, system: null });
    expect(() => configFromForm('labeling', values('labeling', { common: { temperature: 'hot', maxTokens: '8' } }))).toThrow(/temperature: “hot” is not a number/);
    expect(() => configFromForm('labeling', values('labeling', { common: { maxTokens: '8.5' } }))).toThrow(/max tokens: must be a whole number/);
    expect(() => configFromForm('feature', values('feature', { common: { batchSize: '' } }))).toThrow(/prompts per commit: enter a number/);
    const e = configFromForm('expansion', values('expansion'));
    expect(e.seeds).toHaveLength(2);
    expect(e.maxRequests).toBeNull();
    expect('batchSize' in e).toBe(false);
    expect(configFromForm('evol', values('evol', { inputsFrom: 'ds1' })).inputsFrom).toEqual({ datasetId: 'ds1' });
    expect(() => configFromForm('curation', values('curation', { topics: 'A\n    B\n  C' }))).toThrow(/topic tree, line 3/);
  });

  it('an edited template goes into the config and validate() names what is wrong with it', () => {
    const bad = values('labeling', { templates: { 'labeling.user': 'Answer this.' as string } as Partial<Record<TemplateName, string>> });
    const c = configFromForm('labeling', bad);
    expect(c.templates).toEqual({ 'labeling.user': 'Answer this.' });
    expect(() => strategyByName('labeling').validate(c)).toThrow(/templates\['labeling.user'\]: must contain \{\{input\}\}/);
    const unknown = configFromForm('feedback', values('feedback', { templates: { 'feedback.grade': '{{prompt}} {{response}} {{oops}}' } }));
    expect(() => strategyByName('feedback').validate(unknown)).toThrow(/unknown placeholder \{\{oops\}\}/);
  });

  it('splitLines drops blank lines and trims', () => {
    expect(splitLines(' a \n\n\r\nb\r\n  ')).toEqual(['a', 'b']);
  });
});

describe('record search', () => {
  it('pages through the matches of a substring over all messages, case-insensitively', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const recs = Array.from({ length: 57 }, (_, i) => rec(`k${i}`, i % 3 === 0 ? `River number ${i}` : `field ${i}`, i === 4 ? 'the RIVER again' : `answer ${i}`));
    await store.putRecords(ds.id, recs);
    const all = recs.filter((r) => recordMatches(r, 'river')).map((r) => r.key);
    expect(all.length).toBe(20);
    const p1 = await searchRecords(store, ds.id, 'river', { limit: 8, pageSize: 7 });
    expect(p1.records.map((r) => r.key)).toEqual(all.slice(0, 8));
    expect(p1.more).toBe(true);
    const p3 = await searchRecords(store, ds.id, 'RIVER', { offset: 16, limit: 8, pageSize: 7 });
    expect(p3.records.map((r) => r.key)).toEqual(all.slice(16));
    expect(p3.more).toBe(false);
    expect(p3.scanned).toBe(57);
    expect((await searchRecords(store, ds.id, 'river', { offset: 12, limit: 8 })).more).toBe(false);
    expect((await searchRecords(store, ds.id, '', { limit: 100 })).records).toHaveLength(57);
    expect((await searchRecords(store, ds.id, 'River', { caseSensitive: true, limit: 100 })).records).toHaveLength(19);
    expect((await searchRecords(store, ds.id, 'nothing like this')).records).toEqual([]);
  });

  it('stops at maxScan (truncated) and on an aborted signal', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    await store.putRecords(ds.id, Array.from({ length: 30 }, (_, i) => rec(`k${i}`, `q ${i}`)));
    const r = await searchRecords(store, ds.id, 'q 2', { maxScan: 10, pageSize: 4 });
    expect(r).toMatchObject({ scanned: 10, truncated: true, more: false });
    expect(r.records.map((x) => x.key)).toEqual(['k2']);
    const ac = new AbortController();
    ac.abort();
    await expect(searchRecords(store, ds.id, 'q', { signal: ac.signal })).rejects.toThrow();
    await expect(searchRecords(store, ds.id, 'q', { limit: -1 })).rejects.toThrow(/limit must be an integer/);
  });
});
