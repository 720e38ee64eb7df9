// RemoteTeacher (src/teacher/remote.ts) against the real test server on 127.0.0.1: streaming and JSON round trips,
// logprobs equal to the BigramModel's (recomputed here), top lists sorted and ≤ 20, detection of servers without
// logprobs, seed determinism, n > 1, abort, the body-stall watchdog, SDK retries, the concurrency and rate limits
// measured on the server side, config validation, and the API key never appearing in any result, error or counter.

import { afterEach, describe, expect, it } from 'vitest';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { LOGPROBS_UNAVAILABLE_NOTE, TeacherError } from '../../src/teacher/types.ts';
import type { ChatMessage, ChatResult, TokenLogprob } from '../../src/teacher/types.ts';
import { startOpenAiServer } from '../support/openai-server.ts';
import type { OpenAiServer, OpenAiServerOptions } from '../support/openai-server.ts';
import { BigramModel, renderPrompt, topK } from '../support/text-model.ts';

const model = new BigramModel();
const servers: OpenAiServer[] = [];
async function start(o: OpenAiServerOptions = {}): Promise<OpenAiServer> {
  const s = await startOpenAiServer(o);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'What did the stranger carry?' },
];

function teacher(s: OpenAiServer, extra: Record<string, unknown> = {}): RemoteTeacher {
  return new RemoteTeacher({ baseURL: s.url, model: model.name, timeoutMs: 5000, ...extra });
}

/** Every token's logprob and top list recomputed from the model; returns the generated ids. */
function expectModelTokens(tokens: TokenLogprob[], k: number): number[] {
  const ctx = model.encode(renderPrompt(MESSAGES));
  const ids: number[] = [];
  for (const t of tokens) {
    const id = t.bytes![0]!;
    const dist = model.nextLogprobs(ctx);
    expect(t.logprob).toBe(dist[id]);
    expect(t.top.map((a) => a.logprob)).toEqual(topK(dist, k).map((i) => dist[i]));
    for (let j = 1; j < t.top.length; j++) expect(t.top[j]!.logprob).toBeLessThanOrEqual(t.top[j - 1]!.logprob);
    ctx.push(id);
    ids.push(id);
  }
  return ids;
}

describe('RemoteTeacher round trips', () => {
  for (const stream of [true, false]) {
    it(`${stream ? 'streams' : 'fetches JSON'}: text, logprobs equal to the model's, usage and cost`, async () => {
      const s = await start();
      const t = teacher(s, { topLogprobs: 7, pricePer1MInput: 2, pricePer1MOutput: 10 });
      const deltas: string[] = [];
      const r = await t.chat(MESSAGES, { stream, seed: 5, maxTokens: 40, onDelta: (d) => deltas.push(d.text) });
      expect(r.logprobsAvailable).toBe(true);
      expect(r.logprobsNote).toBeUndefined();
      const c = r.choices[0]!;
      const ids = expectModelTokens(c.tokens!, 7);
      expect(c.text).toBe(model.decode(ids));
      if (stream) expect(deltas.join('')).toBe(c.text);
      else expect(deltas).toEqual([]);
      expect(r.usage).toEqual({ promptTokens: model.encode(renderPrompt(MESSAGES)).length, completionTokens: ids.length, totalTokens: r.usage.promptTokens + ids.length, reported: true });
      expect(r.cost).toBeCloseTo((r.usage.promptTokens * 2 + ids.length * 10) / 1e6, 12);
      const body = s.stats.chatBodies.at(-1)!;
      expect(body.stream).toBe(stream);
      expect(body.stream_options).toEqual(stream ? { include_usage: true } : undefined);
      expect(body.logprobs).toBe(true);
      expect(body.top_logprobs).toBe(7);
      expect(t.counters).toMatchObject({ requests: 1, attempts: 1, retries: 0, succeeded: 1, promptTokens: r.usage.promptTokens, completionTokens: ids.length });
      expect(t.logprobsAvailable).toBe(true);
    });
  }

  it('asks for 20 alternatives at most and gets them sorted', async () => {
    const s = await start();
    const r = await teacher(s, { topLogprobs: 20 }).chat(MESSAGES, { seed: 1, maxTokens: 10 });
    for (const tok of r.choices[0]!.tokens!) expect(tok.top).toHaveLength(20);
    expect(() => teacher(s, { topLogprobs: 21 })).toThrow(/topLogprobs/);
  });

  it('same seed → same text; n > 1 gives n choices', async () => {
    const s = await start();
    const t = teacher(s);
    const a = await t.chat(MESSAGES, { seed: 9, maxTokens: 30 });
    const b = await t.chat(MESSAGES, { seed: 9, maxTokens: 30, stream: false });
    const c = await t.chat(MESSAGES, { seed: 10, maxTokens: 30 });
    expect(b.choices[0]!.text).toBe(a.choices[0]!.text);
    expect(c.choices[0]!.text).not.toBe(a.choices[0]!.text);
    for (const stream of [true, false]) {
      const m = await t.chat(MESSAGES, { seed: 9, maxTokens: 30, n: 3, stream });
      expect(m.choices.map((x) => x.index)).toEqual([0, 1, 2]);
      expect(m.choices[0]!.text).toBe(a.choices[0]!.text);
      expect(new Set(m.choices.map((x) => x.text)).size).toBeGreaterThan(1);
      for (const ch of m.choices) expect(model.decode(ch.tokens!.map((x) => x.bytes![0]!))).toBe(ch.text);
    }
  });

  it('detects a server that returns no logprobs and says what it means', async () => {
    const s = await start({ omitLogprobs: true });
    const t = teacher(s);
    for (const stream of [true, false]) {
      const r = await t.chat(MESSAGES, { stream, seed: 2, maxTokens: 10 });
      expect(r.logprobsAvailable).toBe(false);
      expect(r.logprobsNote).toBe(LOGPROBS_UNAVAILABLE_NOTE);
      expect(r.choices[0]!.tokens).toBeUndefined();
      expect(r.choices[0]!.text.length).toBeGreaterThan(0);
    }
    expect(t.logprobsAvailable).toBe(false);
    expect(LOGPROBS_UNAVAILABLE_NOTE).toContain('token-level KD is unavailable');
    const off = await teacher(s, { logprobs: 'off' }).chat(MESSAGES, { maxTokens: 3 });
    expect(off.logprobsAvailable).toBe(false);
    expect(s.stats.chatBodies.at(-1)!.logprobs).toBeUndefined();
  });

  it('sends no Authorization header without a key, and the key only as Bearer when given', async () => {
    const s = await start();
    await teacher(s).chat(MESSAGES, { maxTokens: 2 });
    expect(s.stats.authorizations.at(-1)).toBeNull();
    const k = await start({ apiKey: 'sk-test-key-123' });
    await teacher(k, { apiKey: 'sk-test-key-123' }).chat(MESSAGES, { maxTokens: 2 });
    expect(k.stats.authorizations.at(-1)).toBe('Bearer sk-test-key-123');
  });

  it('lists models', async () => {
    const s = await start();
    expect(await teacher(s).listModels()).toEqual([model.name]);
  });
});

describe('RemoteTeacher failures', () => {
  it('SDK retries 429/503 using retry-after-ms, and counts them', async () => {
    const s = await start({ faults: { p429: 0.5, p503: 0.3 }, seed: 3 });
    const t = teacher(s, { maxRetries: 10 });
    for (let i = 0; i < 10; i++) await t.chat(MESSAGES, { maxTokens: 3, stream: i % 2 === 0 });
    const c = t.counters;
    expect(c.succeeded).toBe(10);
    expect(c.retries).toBe(s.stats.faults['429'] + s.stats.faults['503']);
    expect(c.retries).toBeGreaterThan(0);
    expect(c.attempts).toBe(s.stats.chatRequests);
  });

  it('gives up after maxRetries with a retryable rate-limit error', async () => {
    const s = await start({ faults: { p429: 1 } });
    const t = teacher(s, { maxRetries: 2 });
    const err = await t.chat(MESSAGES, { maxTokens: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TeacherError);
    expect((err as TeacherError).kind).toBe('rate-limit');
    expect((err as TeacherError).retryable).toBe(true);
    expect(s.stats.chatRequests).toBe(3);
    expect(t.counters).toMatchObject({ failed: 1, attempts: 3, retries: 2 });
  });

  it('classifies cut streams, malformed chunks/bodies and bad requests', async () => {
    const kinds = async (o: OpenAiServerOptions, stream: boolean) => {
      const s = await start(o);
      const e = await teacher(s, { maxRetries: 0 }).chat(MESSAGES, { maxTokens: 20, stream }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TeacherError);
      return (e as TeacherError).kind;
    };
    expect(await kinds({ faults: { pCutStream: 1, cutMode: 'destroy' } }, true)).toBe('connection');
    expect(await kinds({ faults: { pCutStream: 1, cutMode: 'end' } }, true)).toBe('incomplete');
    expect(await kinds({ faults: { pCutStream: 1 } }, false)).toBe('connection');
    expect(await kinds({ faults: { pMalformed: 1 } }, true)).toBe('malformed');
    expect(await kinds({ faults: { pMalformed: 1 } }, false)).toBe('malformed');
    const s = await start({ maxN: 2 });
    const e = (await teacher(s).chat(MESSAGES, { n: 3 }).catch((x: unknown) => x)) as TeacherError;
    expect(e.kind).toBe('bad-request');
    expect(e.status).toBe(400);
    expect(e.retryable).toBe(false);
  });

  it('times out hung requests (SDK timeout + retries) and stalled bodies (watchdog)', async () => {
    const hung = await start({ faults: { pTimeout: 1, timeoutMode: 'hang' } });
    const e1 = (await teacher(hung, { timeoutMs: 100, maxRetries: 1 }).chat(MESSAGES, { maxTokens: 3 }).catch((x: unknown) => x)) as TeacherError;
    expect(e1.kind).toBe('timeout');
    expect(hung.stats.chatRequests).toBe(2);
    const slow = await start({ tokensPerSecond: 2 });
    const t = teacher(slow, { timeoutMs: 150, maxRetries: 0 });
    const e2 = (await t.chat(MESSAGES, { maxTokens: 50 }).catch((x: unknown) => x)) as TeacherError;
    expect(e2.kind).toBe('timeout');
    expect(e2.message).toMatch(/stalled/);
  });

  it('abort stops an in-flight stream and a queued call', async () => {
    const s = await start({ tokensPerSecond: 50 });
    const t = teacher(s, { maxConcurrency: 1 });
    const ctl = new AbortController();
    let got = '';
    const first = t.chat(MESSAGES, {
      maxTokens: 500, signal: ctl.signal, onDelta: (d) => {
        got += d.text;
        if (got.length >= 3) ctl.abort();
      },
    });
    const queuedCtl = new AbortController();
    const queued = t.chat(MESSAGES, { maxTokens: 5, signal: queuedCtl.signal }).catch((x: unknown) => x);
    queuedCtl.abort();
    const e1 = (await first.catch((x: unknown) => x)) as TeacherError;
    const e2 = (await queued) as TeacherError;
    expect(e1.kind).toBe('aborted');
    expect(e2.kind).toBe('aborted');
    expect(s.stats.chatRequests).toBe(1); // the queued call never reached the server
    expect(t.counters).toMatchObject({ aborted: 2, inFlight: 0 });
    expect(s.stats.served).toBe(0);
    // The teacher still works afterwards (the slot was released).
    expect((await t.chat(MESSAGES, { maxTokens: 2 })).choices).toHaveLength(1);
  });

  it('rejects bad configs and call options with a clear message', () => {
    expect(() => new RemoteTeacher({ baseURL: 'http://127.0.0.1:1/v1', model: 'm', colour: 'red' })).toThrow(/unknown key 'colour'/);
    expect(() => new RemoteTeacher({ baseURL: 'ftp://x/v1', model: 'm' })).toThrow(/http/);
    expect(() => new RemoteTeacher({ model: 'm' })).toThrow(/baseURL is required/);
    expect(() => new RemoteTeacher({ baseURL: 'http://127.0.0.1:1/v1', model: 'm', maxConcurrency: 0 })).toThrow(/maxConcurrency/);
    expect(() => new RemoteTeacher({ baseURL: 'http://127.0.0.1:1/v1', model: 'm', extraHeaders: { Authorization: 'x' } })).toThrow(/Authorization/);
    const t = new RemoteTeacher({ preset: 'openai', model: 'gpt-4o-mini', apiKey: 'sk-abc' });
    expect(t.settings.baseURL).toBe('https://api.openai.com/v1');
    expect(t.settings.hasApiKey).toBe(true);
    return expect(t.chat(MESSAGES, { n: 2, colour: 'red' } as never)).rejects.toThrow(/unknown option 'colour'/);
  });
});

describe('RemoteTeacher limits', () => {
  it('never has more than maxConcurrency requests in flight at the server', async () => {
    const s = await start({ latencyMs: 20 });
    const t = teacher(s, { maxConcurrency: 3 });
    await Promise.all(Array.from({ length: 15 }, (_, i) => t.chat(MESSAGES, { maxTokens: 3, stream: i % 2 === 0 })));
    expect(s.stats.maxInFlight).toBe(3);
    expect(t.counters.succeeded).toBe(15);
  });

  it('spreads request starts to the requests-per-window rate (token bucket)', async () => {
    const s = await start();
    // 20 per 400 ms = one every 20 ms, burst 1: 15 requests cannot start within less than 14 × 20 ms.
    const t = teacher(s, { maxConcurrency: 16, requestsPerMinute: 20, rateWindowMs: 400 });
    await Promise.all(Array.from({ length: 15 }, () => t.chat(MESSAGES, { maxTokens: 2 })));
    const a = s.stats.arrivals;
    expect(a).toHaveLength(15);
    // Server arrival times lag the client's token times by a delay that grows under CPU load (the first request
    // also opens the connection), so only the whole span is bounded below: 14 gaps of 20 ms = 280 ms, minus a
    // generous 120 ms for that lag. Without the limiter all 15 arrive within a few ms.
    const span = Math.max(...a) - Math.min(...a);
    expect(span).toBeGreaterThanOrEqual(160);
  });
});

describe('the API key never leaks', () => {
  it('appears in no result, error, counter, setting or log line', async () => {
    const KEY = 'sk-SECRET-never-print-me-4242';
    const logged: string[] = [];
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => {
      const orig = console[m];
      console[m] = (...args: unknown[]) => {
        logged.push(args.map(String).join(' '));
      };
      return () => (console[m] = orig);
    });
    try {
      const good = await start({ apiKey: KEY, faults: { p429: 0.3, pCutStream: 0.2, pMalformed: 0.2 }, seed: 4 });
      const wrong = await start({ apiKey: 'sk-other', echoAuthInErrors: true });
      const objects: unknown[] = [];
      for (const s of [good, wrong]) {
        const t = teacher(s, { apiKey: KEY, maxRetries: 1, timeoutMs: 2000 });
        for (let i = 0; i < 12; i++) {
          try {
            objects.push(await t.chat(MESSAGES, { maxTokens: 5, stream: i % 2 === 0 }));
          } catch (e) {
            objects.push(e, (e as Error).message, (e as Error).stack);
          }
        }
        objects.push(t.counters, t.settings, t, Object.entries(t));
      }
      // The sloppy server really did echo the key: the scrubber is what kept it out.
      const kinds = objects.filter((o) => o instanceof TeacherError).map((e) => (e as TeacherError).kind);
      expect(kinds).toContain('auth');
      expect(objects.filter((o) => typeof o === 'string').join('\n')).toContain('[redacted]');
      expect(good.stats.authorizations.every((a) => a === `Bearer ${KEY}`)).toBe(true);
      const text = objects.map((o) => JSON.stringify(o) + String(o)).join('\n') + logged.join('\n');
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(KEY.slice(3, 20));
      expect(objects.some((o) => (o as ChatResult)?.choices !== undefined)).toBe(true);
    } finally {
      for (const restore of spies) restore();
    }
  });
});
