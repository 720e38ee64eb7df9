// The elicitation throughput benchmark (bench/elicit-bench.ts, issue #5) at a tiny size: it runs a real labeling
// job against the real test server, every prompt's record is stored exactly once (checked here on the store itself,
// not only by the benchmark's own check), and every field of the report is present. No timing is asserted.
// Also: labeling's automatic step size from the teacher's maxConcurrency, and steps wider than 10 requests
// without Node's listener-leak warning.
import { afterEach, describe, expect, it } from 'vitest';
import { ELICIT_BENCH_DEFAULTS, formatElicitTable, quantile, runElicitBench, type ElicitBenchRow } from '../../bench/elicit-bench.ts';
import { AUTO_BATCH_WAVES, labelingBatchSize } from '../../src/elicit/labeling.ts';
import type { TeacherLike } from '../../src/elicit/types.ts';
import type { DistillStore } from '../../src/store/store.ts';
import 'fake-indexeddb/auto';

const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
afterEach(() => { process.off('warning', onWarning); });

const FIELDS: (keyof ElicitBenchRow)[] = [
  'suite', 'concurrency', 'latencyMs', 'prompts', 'batchSize', 'server', 'wallMs', 'measuredRps', 'capacityRps', 'ratio', 'p50Ms',
  'p95Ms', 'utilization', 'commits', 'commitMsTotal', 'commitMsMax', 'eventLoopBusy', 'cpuMsPerRequest', 'serverMaxInFlight',
  'requests', 'records', 'skippedEmpty', 'checkOk', 'checkDetail',
];

describe('elicit throughput benchmark', () => {
  it('runs M=20 prompts at C=4 and C=12, L=20 ms: every record once, every field reported', async () => {
    process.on('warning', onWarning);
    const M = 20;
    const seen: { C: number; keys: string[]; inputs: string[]; status: string }[] = [];
    const logged: ElicitBenchRow[] = [];
    const rows = await runElicitBench({
      latencyMs: 20, prompts: M, concurrency: [4, 12], server: 'same-thread', log: (r) => logged.push(r),
      inspect: async (store: DistillStore, datasetId: string, jobId: string) => {
        const recs = await store.getRecords(datasetId, { limit: 1000 });
        const job = (await store.getJob(jobId))!;
        seen.push({ C: seen.length === 0 ? 4 : 12, keys: recs.map((r) => r.key), inputs: recs.map((r) => r.messages[0]!.content), status: job.status });
      },
    });
    expect(rows.map((r) => r.concurrency)).toEqual([4, 12]);
    expect(logged).toEqual(rows);
    for (const [n, r] of rows.entries()) {
      for (const f of FIELDS) expect(r[f], `${f} of C=${r.concurrency}`).toBeDefined();
      expect(r.checkDetail).toBe('');
      expect(r.checkOk).toBe(true);
      expect(r).toMatchObject({ suite: 'elicit', latencyMs: 20, prompts: M, server: 'same-thread', requests: M });
      expect(r.batchSize).toBe(AUTO_BATCH_WAVES * r.concurrency);
      expect(r.serverMaxInFlight).toBeLessThanOrEqual(r.concurrency);
      expect(r.capacityRps).toBeCloseTo(r.concurrency / 0.02, 6);
      for (const f of ['wallMs', 'measuredRps', 'ratio', 'p50Ms', 'p95Ms', 'utilization', 'cpuMsPerRequest'] as const) {
        expect(Number.isFinite(r[f]) && r[f] > 0, `${f} = ${r[f]}`).toBe(true);
      }
      expect(r.p95Ms).toBeGreaterThanOrEqual(r.p50Ms);
      expect(r.commits).toBe(Math.ceil(M / r.batchSize) + 1); // one per step, plus the runner's 'running' mark
      // The store itself: each prompt's record at most once, and every prompt answered or counted as empty.
      const s = seen[n]!;
      expect(s.status).toBe('done');
      expect(new Set(s.keys).size).toBe(s.keys.length);
      expect(new Set(s.inputs).size).toBe(s.inputs.length);
      expect(s.keys.length + r.skippedEmpty).toBe(M);
      expect(r.records).toBe(s.keys.length);
    }
    const table = formatElicitTable(rows);
    expect(table.split('\n')).toHaveLength(2 + rows.length);
    expect(table).not.toMatch(/CHECK FAILED/);
    // A step of 24 requests (C=12) gives each its own abort signal: no "MaxListenersExceededWarning".
    expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
  }, 60_000);

  it('with --faults: a fault-free and a 30% faulty run per C, goodput against the fault-free run, every record once', async () => {
    const rows = await runElicitBench({ latencyMs: 10, prompts: 40, concurrency: [4], faults: [0, 0.3], server: 'same-thread' });
    expect(rows.map((r) => [r.concurrency, r.faultRate])).toEqual([[4, 0], [4, 0.3]]);
    expect(rows[0]!.goodputRatio).toBeNull();
    expect(rows[0]!.faultsInjected).toBe(0);
    const f = rows[1]!;
    expect(f.checkDetail).toBe('');
    expect(f.checkOk).toBe(true);
    expect(f.goodputRatio).toBeCloseTo(f.measuredRps / rows[0]!.measuredRps, 3);
    expect(f.faultsInjected).toBeGreaterThan(0);
    expect(f.requests).toBeGreaterThan(40);
    expect(f.deadlineMisses).toBeGreaterThanOrEqual(f.hangs);
    expect(f.clientMaxInFlight).toBeLessThanOrEqual(4);
    expect(formatElicitTable(rows)).toMatch(/\| 30\.0% \(\d+ hung\) \|/);
  }, 60_000);

  it('rejects bad options with the name of the option', async () => {
    await expect(runElicitBench({ concurrency: [0] })).rejects.toThrow(/concurrency/);
    await expect(runElicitBench({ prompts: 0 })).rejects.toThrow(/prompts/);
    await expect(runElicitBench({ latencyMs: -1 })).rejects.toThrow(/latencyMs/);
    await expect(runElicitBench({ faults: [1.5] })).rejects.toThrow(/faults/);
    await expect(runElicitBench({ server: 'worker', prompts: 1, concurrency: [1] })).rejects.toThrow(/workerModule/);
    expect(ELICIT_BENCH_DEFAULTS.server).toBe('same-thread');
  });

  it('quantile by nearest rank', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([5, 1, 3, 2, 4], 0.95)).toBe(5);
    expect(quantile([7], 0.5)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });
});

describe('labeling step size', () => {
  const teacher = (maxConcurrency?: number): TeacherLike => ({
    settings: { model: 'm', baseURL: 'http://127.0.0.1:1/v1', ...(maxConcurrency === undefined ? {} : { maxConcurrency }) },
    chat: () => Promise.reject(new Error('not called')),
  });
  it('is the configured batchSize, or AUTO_BATCH_WAVES × the teacher concurrency in requests', () => {
    expect(labelingBatchSize({ batchSize: 3, answersPerInput: 1 }, teacher(32))).toBe(3);
    expect(labelingBatchSize({ batchSize: null, answersPerInput: 1 }, teacher(32))).toBe(2 * 32);
    expect(labelingBatchSize({ batchSize: null, answersPerInput: 4 }, teacher(32))).toBe(16); // 64 requests
    expect(labelingBatchSize({ batchSize: null, answersPerInput: 3 }, teacher(4))).toBe(3); // ⌈8 / 3⌉ inputs
    expect(labelingBatchSize({ batchSize: null, answersPerInput: 1 }, teacher())).toBe(4); // no maxConcurrency: 4 inputs
    expect(labelingBatchSize({ batchSize: null, answersPerInput: 1 }, teacher(1024))).toBe(256); // the validation cap
  });
});
