// The store schema's guards: `sanitize` refuses anything that looks like a credential (and never echoes it),
// provenance validation names the field, and the versioned upgrade creates every store and index.
import { describe, expect, it } from 'vitest';
import { SecretLeakError, StoreValidationError } from '../../src/store/errors.ts';
import { checkProvenance, MIGRATIONS, sanitize, SCHEMA_VERSION } from '../../src/store/schema.ts';
import { freshStore, provenance, rec } from './store-fixtures.ts';

const SECRET = 'sk-proj-AbCdEf0123456789xyzXYZ';

describe('sanitize', () => {
  const badNames: [string, unknown][] = [
    ['apiKey', { apiKey: 'abc' }],
    ['api_key', { api_key: 'abc' }],
    ['X-API-Key header', { headers: { 'X-API-Key': 'abc' } }],
    ['Authorization header', { headers: { Authorization: 'abc' } }],
    ['token', { token: 'abc' }],
    ['access_token', { nested: [{ access_token: 'abc' }] }],
    ['password', { password: 'hunter2' }],
    ['client_secret', { client_secret: 'abc' }],
    ['key', { key: 'abc' }],
  ];
  for (const [what, params] of badNames) {
    it(`refuses a field named like a credential: ${what}`, () => {
      expect(() => sanitize(params, 'p')).toThrow(SecretLeakError);
    });
  }
  const badValues: [string, string][] = [
    ['an OpenAI-style key', SECRET],
    ['a bearer token', 'Bearer abcdefghijklmnop'],
    ['a Hugging Face token', 'hf_abcdefghijklmnopqrstuvwxyz'],
    ['a URL with credentials', 'https://user:pass@api.example.com/v1'],
    ['a URL with a key in its query', 'https://api.example.com/v1?key=abc123'],
    ['a JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig'],
  ];
  for (const [what, value] of badValues) {
    it(`refuses a value that looks like ${what}, without echoing it`, () => {
      let err: unknown;
      try { sanitize({ params: { note: value } }, 'record.provenance'); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(SecretLeakError);
      expect((err as Error).message).toMatch(/record\.provenance\.params\.note/);
      expect((err as Error).message).not.toContain(value);
    });
  }
  it('accepts ordinary sampling parameters', () => {
    const params = { temperature: 0.7, top_p: 0.9, top_k: 40, max_tokens: 512, seed: 7, stop: ['</s>'], logprobs: true, top_logprobs: 20, stop_token: '<eot>', tokenizer: 'bpe' };
    expect(sanitize(params, 'p')).toBe(params);
    expect(() => checkProvenance(provenance({ params }), 'p')).not.toThrow();
  });
});

describe('record validation', () => {
  it('refuses records carrying a credential and writes nothing', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const before = await store.dump();
    const leaky = rec('a', 'q');
    leaky.provenance.params = { temperature: 1, apiKey: SECRET };
    await expect(store.putRecords(ds.id, [rec('ok', 'q'), leaky])).rejects.toThrow(/records\[1\]\.provenance\.params: field "apiKey"/);
    const leaky2 = rec('b', 'q');
    leaky2.provenance.template = `system prompt with ${SECRET}`;
    await expect(store.putRecords(ds.id, [leaky2])).rejects.toThrow(SecretLeakError);
    await expect(store.createJob({ kind: 'elicit', datasetId: ds.id, config: { teacher: { baseURL: 'x', apiKey: SECRET } } })).rejects.toThrow(SecretLeakError);
    expect(await store.dump()).toBe(before);
    expect(before).not.toContain(SECRET);
  });

  it('names the bad provenance field', () => {
    const p = provenance() as unknown as Record<string, unknown>;
    expect(() => checkProvenance({ ...p, usage: { input: -1, output: 0 } }, 'r')).toThrow(/r\.usage\.input: must be a finite number ≥ 0/);
    expect(() => checkProvenance({ ...p, teacher: { kind: 'k', model: 'm', baseURLHost: 'https://api.x.com/v1' } }, 'r')).toThrow(/baseURLHost: must be a bare host/);
    expect(() => checkProvenance({ ...p, colour: 'red' }, 'r')).toThrow(/unknown field "colour"/);
    expect(() => checkProvenance({ ...p, params: { t: Infinity } }, 'r')).toThrow(StoreValidationError);
  });

  it('refuses malformed Unicode in message content', async () => {
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    await expect(store.putRecords(ds.id, [rec('a', 'bad \uD800 surrogate')])).rejects.toThrow(/unpaired UTF-16 surrogate/);
    expect((await store.putRecords(ds.id, [rec('b', 'fine 😀 ünïcödé')])).written).toBe(1);
  });
});

describe('schema versions', () => {
  it('has one migration per version and creates every store and index', async () => {
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    const { store } = await freshStore();
    expect(store.db.version).toBe(SCHEMA_VERSION);
    const indexes = (name: 'datasets' | 'records' | 'topk' | 'pairs' | 'jobs') => [...store.db.transaction(name).store.indexNames].sort();
    expect(indexes('records')).toEqual(['by-dataset', 'by-hash', 'by-key']);
    expect(indexes('topk')).toEqual(['by-dataset', 'by-record']);
    expect(indexes('pairs')).toEqual(['by-dataset', 'by-key']);
    expect(indexes('jobs')).toEqual(['by-dataset']);
    expect(store.db.transaction('records').store.index('by-key').unique).toBe(true);
  });
});
