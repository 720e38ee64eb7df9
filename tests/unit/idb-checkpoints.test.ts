import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { DEFAULT_TRAIN } from '../../src/train/config.ts';
import { IdbCheckpointStore } from '../../src/train/idb-checkpoints.ts';

const ck = (step: number) => ({
  model: makeConfig(), train: DEFAULT_TRAIN, step, adamStep: step, cursor: { epoch: 0, row: step },
  params: Float32Array.of(step, 2), m: Float32Array.of(3, 4), v: Float32Array.of(5, 6),
});

describe('IdbCheckpointStore', () => {
  it('stores, lists and reads back checkpoints across reopen; overwrites by name', async () => {
    const a = await IdbCheckpointStore.open('ck-test-1');
    expect(await a.get('latest')).toBeUndefined();
    await a.put('latest', encodeCheckpoint(ck(3)));
    await a.put('best', encodeCheckpoint(ck(2)));
    await a.put('latest', encodeCheckpoint(ck(7)));
    a.close();
    const b = await IdbCheckpointStore.open('ck-test-1');
    expect(await b.list()).toEqual(['best', 'latest']);
    expect(decodeCheckpoint((await b.get('latest'))!)).toEqual(ck(7));
    expect(decodeCheckpoint((await b.get('best'))!).step).toBe(2);
    b.close();
  });

  it('reports a full quota clearly and keeps the previous checkpoint', async () => {
    const s = await IdbCheckpointStore.open('ck-test-2');
    await s.put('latest', encodeCheckpoint(ck(1)));
    const orig = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    try {
      await expect(s.put('latest', encodeCheckpoint(ck(2)))).rejects.toThrow(/does not fit in this browser's storage quota; the previous checkpoint is kept/);
    } finally {
      IDBObjectStore.prototype.put = orig;
    }
    expect(decodeCheckpoint((await s.get('latest'))!).step).toBe(1);
    s.close();
  });
});
