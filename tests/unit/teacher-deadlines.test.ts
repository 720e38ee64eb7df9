// Deadlines of the remote teacher (src/teacher/deadlines.ts, issue #12): the auto deadlines learnt from observed
// answers (2 × p95, floors, the timeoutMs cap, the fallback before enough answers, the per-call scale); against the
// real test server: a request that never answers is cut at the time-to-first-byte deadline (fixed, or auto — even
// one that hung before anything was known), a stream that falls silent at the idle deadline, a trickle at the
// overall deadline; each ends the call at once with a retryable TeacherError('timeout') that the SDK did not retry;
// and the elicitation layer retries it like a 5xx, so the job still writes every record once.
import { afterEach, describe, expect, it } from 'vitest';
import { createElicitJob, runElicitJob } from '../../src/elicit/run.ts';
import { resolveRemoteTeacherConfig } from '../../src/teacher/config.ts';
import { AUTO_FACTOR, AUTO_FLOOR_MS, AUTO_MIN_SAMPLES, DeadlineClock, type DeadlineSettings } from '../../src/teacher/deadlines.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { TeacherError } from '../../src/teacher/types.ts';
import { BigramModel } from '../support/text-model.ts';
import { allRecords, closeServers, start } from './elicit-fixtures.ts';
import { freshStore } from './store-fixtures.ts';

afterEach(closeServers);

const AUTO: DeadlineSettings = { firstByteTimeoutMs: 'auto', idleTimeoutMs: 'auto', totalTimeoutMs: 'auto', timeoutMs: 60_000 };
const MESSAGES = [{ role: 'user' as const, content: 'The river' }];

/** Feeds `n` accepted attempts with the given first-byte / gap / total times into a clock driven by `t`. */
function observe(clock: DeadlineClock, t: { now: number }, n: number, firstMs: number, gapMs: number, totalMs: number): void {
  for (let i = 0; i < n; i++) {
    const w = clock.start(() => { throw new Error('no deadline may fire here'); });
    t.now += firstMs; w.headers(); w.chunk();
    t.now += gapMs; w.chunk();
    t.now += totalMs - firstMs - gapMs; w.end(); w.accept();
  }
}

describe('DeadlineClock', () => {
  it('auto = AUTO_FACTOR × p95 of the accepted attempts, with floors and the timeoutMs cap; timeoutMs / none before enough answers', () => {
    expect(AUTO_FACTOR).toBe(2);
    const t = { now: 0 };
    const clock = new DeadlineClock(AUTO, () => t.now);
    expect(clock.snapshot()).toEqual({ firstByteMs: 60_000, idleMs: 60_000, totalMs: null, samples: 0 });
    observe(clock, t, AUTO_MIN_SAMPLES - 1, 100, 10, 200);
    expect(clock.deadline('first-byte')).toBe(60_000);
    observe(clock, t, 1, 100, 10, 200);
    expect(clock.snapshot()).toEqual({ firstByteMs: AUTO_FLOOR_MS['first-byte'], idleMs: AUTO_FLOOR_MS.idle, totalMs: AUTO_FLOOR_MS.total, samples: AUTO_MIN_SAMPLES });
    observe(clock, t, 100, 400, 700, 2000);
    expect(clock.snapshot()).toMatchObject({ firstByteMs: 800, idleMs: 1400, totalMs: 4000 });
    expect(clock.deadline('first-byte', 4)).toBe(3200);
    expect(clock.deadline('first-byte', 1000)).toBe(60_000); // capped
    // An attempt that is never accepted (a failed call) is not an observation.
    const w = clock.start(() => undefined);
    t.now += 50_000; w.chunk(); w.end();
    expect(clock.snapshot().samples).toBe(108);
  });

  it('fixed settings are used as given (capped by timeoutMs)', () => {
    const clock = new DeadlineClock({ firstByteTimeoutMs: 250, idleTimeoutMs: 90_000, totalTimeoutMs: 5000, timeoutMs: 60_000 });
    expect(clock.snapshot()).toEqual({ firstByteMs: 250, idleMs: 60_000, totalMs: 5000, samples: 0 });
    expect(clock.deadline('total', 2)).toBe(10_000);
  });

  it('config: the deadlines are validated and default to auto; deadlineScale is checked', async () => {
    const base = { baseURL: 'http://127.0.0.1:1/v1', model: 'm' };
    expect(resolveRemoteTeacherConfig(base)).toMatchObject({ firstByteTimeoutMs: 'auto', idleTimeoutMs: 'auto', totalTimeoutMs: 'auto' });
    expect(resolveRemoteTeacherConfig({ ...base, firstByteTimeoutMs: 1500 }).firstByteTimeoutMs).toBe(1500);
    expect(() => resolveRemoteTeacherConfig({ ...base, idleTimeoutMs: 0 })).toThrow(/idleTimeoutMs must be 'auto' or an integer/);
    expect(() => resolveRemoteTeacherConfig({ ...base, totalTimeoutMs: 'soon' })).toThrow(/totalTimeoutMs/);
    await expect(new RemoteTeacher(base).chat(MESSAGES, { deadlineScale: 0.5 })).rejects.toThrow(/deadlineScale must be a number/);
  });
});

type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch to the real server, except that the calls for which `hang(n)` is true (n = 1, 2, …) never answer. */
function hangingFetch(hang: (n: number, body: string) => boolean): { fetch: FetchFn; calls: () => number } {
  let n = 0;
  return {
    calls: () => n,
    fetch: (input, init) => {
      n++;
      if (!hang(n, String(init?.body ?? ''))) return globalThis.fetch(input, init);
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true });
      });
    },
  };
}

async function failure(p: Promise<unknown>): Promise<{ e: TeacherError; ms: number }> {
  const t0 = performance.now();
  const e = await p.then(() => { throw new Error('expected a failure'); }, (x: unknown) => x);
  expect(e).toBeInstanceOf(TeacherError);
  return { e: e as TeacherError, ms: performance.now() - t0 };
}

describe('RemoteTeacher deadlines against the test server', () => {
  it('a request that never answers fails at the fixed first-byte deadline, at once and without SDK retries', async () => {
    const s = await start({ faults: { pTimeout: 1, timeoutMode: 'hang' } });
    const t = new RemoteTeacher({ baseURL: s.url, model: s.model.name, firstByteTimeoutMs: 200, timeoutMs: 20_000, maxRetries: 2 });
    const { e, ms } = await failure(t.chat(MESSAGES, { maxTokens: 4 }));
    expect(e.kind).toBe('timeout');
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/no first byte within 200 ms/);
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(2000);
    expect(s.stats.chatRequests).toBe(1); // not retried inside the SDK (which would hold the slot through its backoff)
    expect(t.counters).toMatchObject({ firstByteTimeouts: 1, attempts: 1, failed: 1, inFlight: 0 });
    const scaled = await failure(t.chat(MESSAGES, { maxTokens: 4, deadlineScale: 3 }));
    expect(scaled.e.message).toMatch(/within 600 ms/);
    expect(scaled.ms).toBeGreaterThanOrEqual(590);
  });

  it('auto: a request that hung before anything was known is cut once answers show the usual latency', async () => {
    const s = await start({ latencyMs: 20 });
    const h = hangingFetch((n) => n === 1);
    const t = new RemoteTeacher({ baseURL: s.url, model: s.model.name, timeoutMs: 30_000, maxConcurrency: 4 }, { fetch: h.fetch });
    const hung = failure(t.chat(MESSAGES, { maxTokens: 4 }));
    for (let i = 0; i < AUTO_MIN_SAMPLES + 2; i++) await t.chat(MESSAGES, { maxTokens: 4, seed: i });
    const d = t.deadlines;
    expect(d.samples).toBe(AUTO_MIN_SAMPLES + 2);
    expect(d.firstByteMs).toBe(AUTO_FLOOR_MS['first-byte']); // 2 × p95 of ~20 ms answers is below the floor
    const { e, ms } = await hung;
    expect(e.message).toMatch(/no first byte within 500 ms/);
    expect(ms).toBeLessThan(5000); // not the 30 s timeout
    expect(t.counters.firstByteTimeouts).toBe(1);
  });

  it('a stream that falls silent fails at the idle deadline, a slow trickle at the overall deadline', async () => {
    const slow = await start({ tokensPerSecond: 3 });
    const idle = await failure(new RemoteTeacher({ baseURL: slow.url, model: slow.model.name, idleTimeoutMs: 150, maxRetries: 0 }).chat(MESSAGES, { maxTokens: 20 }));
    expect(idle.e.kind).toBe('timeout');
    expect(idle.e.message).toMatch(/stalled for more than 150 ms between chunks/);
    const trickle = await start({ faults: { pTrickle: 1, trickleMs: 40 } });
    const t = new RemoteTeacher({ baseURL: trickle.url, model: trickle.model.name, totalTimeoutMs: 300, maxRetries: 0 });
    const total = await failure(t.chat(MESSAGES, { maxTokens: 40, temperature: 0 }));
    expect(total.e.message).toMatch(/took longer than 300 ms \(overall deadline\)/);
    expect(total.ms).toBeLessThan(1500);
    expect(t.counters.totalTimeouts).toBe(1);
    // The same trickle within its deadline is a correct answer (non-streamed: a body in slices).
    const ok = await new RemoteTeacher({ baseURL: trickle.url, model: trickle.model.name }).chat(MESSAGES, { maxTokens: 6, temperature: 0, stream: false });
    expect(ok.choices[0]!.text.length).toBeGreaterThan(0);
    expect(trickle.stats.trickled).toBe(2);
  });

  it('the elicitation layer retries a missed deadline like a 5xx: every record once, with a doubled deadline', async () => {
    const s = await start({ model: new BigramModel() });
    // The first try of input 3 hangs; its retry answers.
    let hungOnce = false;
    const h = hangingFetch((_n, body) => {
      if (hungOnce || !body.includes('part 3.')) return false;
      hungOnce = true;
      return true;
    });
    const teacher = new RemoteTeacher({ baseURL: s.url, model: s.model.name, firstByteTimeoutMs: 150, maxConcurrency: 3 }, { fetch: h.fetch });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'd' });
    const inputs = Array.from({ length: 8 }, (_, i) => `Tell me about the river, part ${i}.`);
    const job = await createElicitJob(store, ds.id, 'labeling', { inputs, maxTokens: 6, seed: 1 });
    const scales: (number | undefined)[] = [];
    const wrapped = { settings: teacher.settings, chat: (m: typeof MESSAGES, o: Parameters<RemoteTeacher['chat']>[1]) => { scales.push(o?.deadlineScale); return teacher.chat(m, o); } };
    const done = await runElicitJob(store, job.id, { teacher: wrapped, retryDelayMs: 5 });
    expect(done.status).toBe('done');
    const recs = await allRecords(store, ds.id);
    const empty = Number((done.cursor as { stats: { emptyAnswer?: number } }).stats.emptyAnswer ?? 0);
    expect(recs.length + empty).toBe(8);
    expect(new Set(recs.map((r) => r.key)).size).toBe(recs.length);
    expect(teacher.counters).toMatchObject({ firstByteTimeouts: 1, inFlight: 0 });
    expect(h.calls()).toBe(9);
    expect(scales.filter((x) => x !== undefined)).toEqual([2]); // the retry of the hung request: deadlines doubled
  });
});
