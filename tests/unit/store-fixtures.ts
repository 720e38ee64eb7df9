// Shared fixtures for the store tests (tests/unit/store-*.test.ts): a fresh fake IndexedDB per test, valid
// records, and a switch that makes the fake object store's put throw (to simulate a full disk or a crash).
// idb's wrap() tests `instanceof IDBRequest` etc. against globals: install the fake's globals too.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBObjectStore } from 'fake-indexeddb';
import { openStore, type DistillStore } from '../../src/store/store.ts';
import type { Provenance, RecordInput } from '../../src/store/schema.ts';

export async function freshStore(): Promise<{ store: DistillStore; factory: IDBFactory; name: string }> {
  const factory = new IDBFactory();
  const name = 'test-store';
  return { store: await openStore(name, factory), factory, name };
}

export function provenance(extra: Partial<Provenance> = {}): Provenance {
  return {
    teacher: { kind: 'openai-compatible', model: 'teacher-7b', baseURLHost: '127.0.0.1:8080' },
    strategy: 'sample',
    params: { temperature: 0.7, seed: 1, max_tokens: 256, top_k: 20, stop: ['</s>'] },
    usage: { input: 10, output: 20 },
    cost: 0.001,
    time: 1_700_000_000_000,
    ...extra,
  };
}

export function rec(key: string, user: string, assistant = `answer to ${user}`): RecordInput {
  return {
    key,
    messages: [
      { role: 'user', content: user },
      { role: 'assistant', content: assistant },
    ],
    provenance: provenance(),
  };
}

/**
 * Makes IDBObjectStore.prototype.put throw `makeError()` on its `nth` call (1-based) from now on; returns a
 * restore function. `every` keeps throwing on every call after the nth.
 */
export function failPutAt(nth: number, makeError: () => Error, every = false): () => void {
  const proto = IDBObjectStore.prototype as unknown as { put: (...a: unknown[]) => unknown };
  const orig = proto.put;
  let calls = 0;
  proto.put = function (this: unknown, ...args: unknown[]) {
    calls++;
    if (calls === nth || (every && calls > nth)) throw makeError();
    return orig.apply(this, args);
  };
  return () => { proto.put = orig; };
}

export const quotaError = (): Error => new DOMException('The quota has been exceeded.', 'QuotaExceededError');
