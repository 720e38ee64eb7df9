// The runs database (src/engine/runs/run-store.ts) on fake-indexeddb: runs, logs in order, truncation after a
// checkpoint's step (and of everything without one), blobs as checkpoints, deletion of a run with everything it
// owns, and a full disk: a clear StorageFullError, the previous checkpoint kept.
import { describe, expect, it } from 'vitest';
import { IDBFactory } from 'fake-indexeddb';
import { RunStore, type StoredRun } from '../../src/engine/runs/run-store.ts';
import { failPutAt, quotaError } from './store-fixtures.ts';

const run = (id: string): StoredRun => ({
  id, name: `run ${id}`, createdAt: 1, updatedAt: 1, status: 'created', spec: {} as StoredRun['spec'], model: {} as StoredRun['model'],
  train: {} as StoredRun['train'], params: 10, step: 0, checkpointStep: 0,
  data: { trainRecords: 1, heldOutRecords: 0, trainTokens: 0, heldOutTokens: 0, targetTokens: 0, trainPairs: 0, heldOutPairs: 0, notes: [] },
  tokenizerVocab: 300, snapshot: { records: [1, 2], pairs: [] }, tokenizer: {} as StoredRun['tokenizer'],
});
const step = (n: number) => ({ kind: 'step' as const, step: n, lr: 0.1, loss: 1 / n, ce: 1, kd: 0, gradNorm: 1, skipped: false, tokensPerSec: 1, ms: 1 });

describe('RunStore', () => {
  it('keeps runs, logs in order, truncates after a step, stores checkpoints and deletes a run with all it owns', async () => {
    const rs = await RunStore.open('runs', new IDBFactory());
    await rs.putRun(run('a'));
    await rs.putRun(run('b'));
    for (let i = 1; i <= 5; i++) await rs.appendLog('a', step(i));
    await rs.appendLog('a', { kind: 'eval', step: 5, loss: 2, ppl: Math.exp(2) });
    await rs.appendLog('b', step(1));
    expect((await rs.logs('a')).map((l) => `${l.kind}${l.step}`)).toEqual(['step1', 'step2', 'step3', 'step4', 'step5', 'eval5']);
    await rs.truncateLogs('a', 3);
    expect((await rs.logs('a')).map((l) => l.step)).toEqual([1, 2, 3]);
    await rs.appendLog('a', step(4));
    expect((await rs.logs('a')).map((l) => l.step)).toEqual([1, 2, 3, 4]); // appended after the kept ones
    await rs.truncateLogs('a', -1);
    expect(await rs.logs('a')).toEqual([]);
    expect((await rs.logs('b')).map((l) => l.step)).toEqual([1]);

    const ck = rs.checkpoints('a');
    await ck.put('latest', Uint8Array.of(1, 2, 3));
    await rs.putBlob('a:teacher:config.json', Uint8Array.of(9), 'a teacher file');
    expect(await ck.get('latest')).toEqual(Uint8Array.of(1, 2, 3));
    expect((await ck.list()).sort()).toEqual(['latest', 'teacher:config.json']);
    expect((await rs.updateRun('a', { status: 'running', step: 4 })).status).toBe('running');
    await rs.deleteRun('a');
    expect(await rs.getRun('a')).toBeUndefined();
    expect(await rs.logs('a')).toEqual([]);
    expect(await rs.blobKeys('a:')).toEqual([]);
    expect((await rs.listRuns()).map((r) => r.id)).toEqual(['b']);
    await expect(rs.updateRun('a', { step: 1 })).rejects.toThrow(/run a does not exist/);
  });

  it('a full disk is a clear StorageFullError and the previous checkpoint stays', async () => {
    const rs = await RunStore.open('runs', new IDBFactory());
    const ck = rs.checkpoints('x');
    await ck.put('latest', Uint8Array.of(1));
    const restore = failPutAt(1, quotaError);
    try {
      await expect(ck.put('latest', new Uint8Array(3 * 1048576))).rejects.toThrow(/Storage is full while writing checkpoint 'latest' of run x \(3\.0 MiB; the previous checkpoint is kept\)/);
    } finally {
      restore();
    }
    expect(await ck.get('latest')).toEqual(Uint8Array.of(1));
  });
});
