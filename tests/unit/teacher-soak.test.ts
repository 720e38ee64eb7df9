// THE SOAK: 2,000 chat requests through one RemoteTeacher against the test server injecting 30% faults of every
// kind (429/500/503 with retry-after-ms 1–5, hung and late answers, cut streams, malformed JSON/SSE). The SDK retries
// what it can; what still fails comes back as a retryable TeacherError and the driver below (the job layer's
// re-queue loop, here for now) tries the key again in a later round. Every success is written under its
// idempotency key into a sink that refuses a second write. At the end all 2,000 keys are present exactly once, each
// result is checked against the model, and no promise rejection went unhandled. The numbers are printed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { TeacherError } from '../../src/teacher/types.ts';
import type { ChatMessage, ChatResult, TeacherErrorKind } from '../../src/teacher/types.ts';
import { startOpenAiServer } from '../support/openai-server.ts';
import type { OpenAiServer } from '../support/openai-server.ts';
import { BigramModel, renderPrompt } from '../support/text-model.ts';

const KEYS = 2000;
const MAX_ROUNDS = 8;

/** In-memory result store keyed by idempotency key: a second write of a key is a bug and throws. */
class IdempotentSink {
  readonly map = new Map<string, ChatResult>();
  put(key: string, r: ChatResult): void {
    if (this.map.has(key)) throw new Error(`sink: key ${key} written twice`);
    this.map.set(key, r);
  }
}

function messagesFor(key: string): ChatMessage[] {
  return [{ role: 'user', content: `Tell story ${key} about the mill.` }];
}

let unhandled = 0;
const onUnhandled = () => void unhandled++;
let server: OpenAiServer;
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = await startOpenAiServer({
    seed: 2024,
    faults: {
      p429: 0.06, p500: 0.05, p503: 0.05, pTimeout: 0.05, pCutStream: 0.045, pMalformed: 0.045,
      retryAfterMs: [1, 5], timeoutMode: 'mixed', lateMs: 600,
    },
  });
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await server.close();
});

describe('soak', () => {
  it('2,000 requests with 30% injected faults: every key stored exactly once, nothing unhandled', async () => {
    const model = new BigramModel();
    const teacher = new RemoteTeacher({
      baseURL: server.url, model: model.name, apiKey: 'sk-soak', maxConcurrency: 48, maxRetries: 3, timeoutMs: 300, topLogprobs: 3,
    });
    const sink = new IdempotentSink();
    const keys = Array.from({ length: KEYS }, (_, i) => `job-${i.toString().padStart(4, '0')}`);
    const requeuedByRound: number[] = [];
    const failKinds: Partial<Record<TeacherErrorKind, number>> = {};
    const t0 = performance.now();

    let pending = keys;
    for (let round = 0; round < MAX_ROUNDS && pending.length > 0; round++) {
      const failed: string[] = [];
      await Promise.all(
        pending.map(async (key) => {
          const i = Number(key.slice(4));
          try {
            const r = await teacher.chat(messagesFor(key), { seed: i, maxTokens: 8, stream: i % 2 === 0 });
            sink.put(key, r);
          } catch (e) {
            if (!(e instanceof TeacherError) || !e.retryable) throw e;
            failKinds[e.kind] = (failKinds[e.kind] ?? 0) + 1;
            failed.push(key);
          }
        }),
      );
      requeuedByRound.push(failed.length);
      pending = failed;
    }
    const wallMs = performance.now() - t0;

    const c = teacher.counters;
    const report = {
      keys: KEYS,
      wallSeconds: +(wallMs / 1000).toFixed(2),
      httpRequestsSent: c.attempts,
      serverChatRequests: server.stats.chatRequests,
      faultsByKind: server.stats.faults,
      faultRate: +(Object.values(server.stats.faults).reduce((a, b) => a + b, 0) / server.stats.chatRequests).toFixed(3),
      sdkRetries: c.retries,
      jobLevelRequeuesByRound: requeuedByRound,
      jobLevelFailureKinds: failKinds,
      unhandledRejections: unhandled,
    };
    console.log('[teacher soak]', JSON.stringify(report));

    expect(pending).toEqual([]);
    expect(sink.map.size).toBe(KEYS);
    for (const k of keys) expect(sink.map.has(k)).toBe(true);
    expect(unhandled).toBe(0);
    expect(c.succeeded).toBe(KEYS);
    expect(c.failed).toBe(requeuedByRound.reduce((a, b) => a + b, 0));
    expect(c.inFlight).toBe(0);
    // Every kind of fault really happened, at about the configured 30%, and both retry layers were exercised.
    for (const n of Object.values(server.stats.faults)) expect(n).toBeGreaterThan(20);
    expect(report.faultRate).toBeGreaterThan(0.25);
    expect(report.faultRate).toBeLessThan(0.35);
    expect(c.retries).toBeGreaterThan(0);
    expect(requeuedByRound[0]).toBeGreaterThan(0);
    expect(server.stats.chatRequests).toBeLessThanOrEqual(c.attempts);

    // No stored result is partial or corrupted: text, tokens and logprobs agree with the model.
    for (const [key, r] of sink.map) {
      const ch = r.choices[0]!;
      expect(r.logprobsAvailable).toBe(true);
      const ids = ch.tokens!.map((t) => t.bytes![0]!);
      expect(model.decode(ids)).toBe(ch.text);
      expect(ids.length).toBe(r.usage.completionTokens);
      const ctx = model.encode(renderPrompt(messagesFor(key)));
      for (const [j, id] of ids.entries()) {
        expect(ch.tokens![j]!.logprob).toBe(model.nextLogprobs(ctx)[id]);
        ctx.push(id);
      }
    }
  }, 120_000);
});
