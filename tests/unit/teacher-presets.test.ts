// Server presets (src/teacher/presets.ts) and the client-side limits (src/teacher/limits.ts): every preset's
// constraints as applied to real requests against the test server (n clamped with a warning, top_logprobs
// clamped, logprobs not sent where unsupported, the max-tokens field, Together's integer logprobs and response
// shape normalised to ours), the user-facing notes, and the semaphore / token bucket driven by a fake clock.

import { afterEach, describe, expect, it } from 'vitest';
import { Semaphore, TokenBucket } from '../../src/teacher/limits.ts';
import type { Clock } from '../../src/teacher/limits.ts';
import { normalizeLogprobs } from '../../src/teacher/logprobs.ts';
import { constrainRequest, PRESETS } from '../../src/teacher/presets.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { PRESET_NAMES, TeacherError } from '../../src/teacher/types.ts';
import type { ChatMessage, PresetName } from '../../src/teacher/types.ts';
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

const MESSAGES: ChatMessage[] = [{ role: 'user', content: 'Where did the river run?' }];

function teacherFor(preset: PresetName, s: OpenAiServer, extra: Record<string, unknown> = {}): RemoteTeacher {
  return new RemoteTeacher({ preset, baseURL: s.url, model: model.name, timeoutMs: 5000, ...extra });
}

describe('presets', () => {
  it('cover every preset name with sane limits and notes', () => {
    expect(Object.keys(PRESETS).sort()).toEqual([...PRESET_NAMES].sort());
    for (const p of Object.values(PRESETS)) {
      expect(p.maxTopLogprobs).toBeLessThanOrEqual(20);
      expect(p.notes.length).toBeGreaterThan(0);
      if (p.name !== 'custom') expect(p.baseURL).toMatch(/^https?:\/\/.+\/v1$/);
    }
    expect(PRESETS.ollama.notes.join(' ')).toContain("OLLAMA_ORIGINS set to this page's origin");
    expect(PRESETS.llamacpp.nAllowed).toBe(false);
    expect(PRESETS.groq.logprobs).toBe(false);
    expect(PRESETS.vllm.maxTopLogprobs).toBe(20);
  });

  it('constrainRequest clamps n and top_logprobs with a warning and drops logprobs where unsupported', () => {
    const ll = constrainRequest(PRESETS.llamacpp, { n: 4, topLogprobs: 5, logprobs: 'auto' });
    expect(ll).toMatchObject({ n: 1, topLogprobs: 5, askLogprobs: true });
    expect(ll.warnings.join()).toMatch(/n = 1 instead of n = 4/);
    const g = constrainRequest(PRESETS.groq, { n: 1, topLogprobs: 5, logprobs: 'auto' });
    expect(g).toMatchObject({ askLogprobs: false, topLogprobs: 0 });
    expect(g.logprobsNote).toMatch(/sequence-level KD/);
    const v = constrainRequest({ ...PRESETS.vllm, maxTopLogprobs: 5 }, { n: 2, topLogprobs: 9, logprobs: 'auto' });
    expect(v).toMatchObject({ n: 2, topLogprobs: 5 });
    expect(v.warnings).toHaveLength(1);
    expect(constrainRequest(PRESETS.openai, { n: 2, topLogprobs: 9, logprobs: 'off' })).toMatchObject({ askLogprobs: false, n: 2 });
  });

  for (const preset of ['llamacpp', 'ollama', 'openrouter', 'lmstudio'] as const) {
    it(`${preset}: n > 1 is sent as n = 1 with a warning`, async () => {
      const s = await start();
      const r = await teacherFor(preset, s).chat(MESSAGES, { n: 3, maxTokens: 4 });
      expect(s.stats.chatBodies.at(-1)!.n).toBeUndefined();
      expect(r.choices).toHaveLength(1);
      expect(r.warnings.join()).toMatch(/n = 1 instead of n = 3/);
    });
  }

  it('vllm and openai keep n; openai uses max_completion_tokens', async () => {
    const s = await start();
    const r = await teacherFor('vllm', s).chat(MESSAGES, { n: 2, maxTokens: 4 });
    expect(r.choices).toHaveLength(2);
    expect(s.stats.chatBodies.at(-1)).toMatchObject({ n: 2, max_tokens: 4 });
    await teacherFor('openai', s).chat(MESSAGES, { n: 2, maxTokens: 4 });
    expect(s.stats.chatBodies.at(-1)).toMatchObject({ n: 2, max_completion_tokens: 4 });
    expect(s.stats.chatBodies.at(-1)!.max_tokens).toBeUndefined();
  });

  it('groq: logprobs are never sent and the result says why', async () => {
    const s = await start();
    const r = await teacherFor('groq', s, { topLogprobs: 5 }).chat(MESSAGES, { maxTokens: 4 });
    const body = s.stats.chatBodies.at(-1)!;
    expect(body.logprobs).toBeUndefined();
    expect(body.top_logprobs).toBeUndefined();
    expect(r.logprobsAvailable).toBe(false);
    expect(r.logprobsNote).toMatch(/Groq does not support logprobs/);
  });

  for (const stream of [true, false]) {
    it(`together: integer logprobs, response shape normalised (${stream ? 'stream' : 'JSON'})`, async () => {
      const s = await start({ shape: 'together' });
      const t = teacherFor('together', s, { topLogprobs: 4 });
      const r = await t.chat(MESSAGES, { maxTokens: 12, temperature: 0, stream });
      expect(s.stats.chatBodies.at(-1)!.logprobs).toBe(4);
      expect(r.logprobsAvailable).toBe(true);
      const toks = r.choices[0]!.tokens!;
      expect(toks.map((x) => x.token).join('')).toBe(r.choices[0]!.text);
      // Greedy + ASCII: every token maps back to its byte; recompute the model's numbers.
      const ctx = model.encode(renderPrompt(MESSAGES));
      for (const tok of toks) {
        const id = tok.token.charCodeAt(0);
        const dist = model.nextLogprobs(ctx);
        expect(tok.logprob).toBe(dist[id]);
        const want = topK(dist, 4);
        expect(tok.top.map((a) => a.logprob)).toEqual(want.map((i) => dist[i]));
        expect(tok.top.map((a) => a.token)).toEqual(want.map((i) => model.tokenText(i)));
        ctx.push(id);
      }
    });
  }

  it('an OpenAI-shape client against a Together server gets a 400, not silent garbage', async () => {
    const s = await start({ shape: 'together' });
    const e = (await teacherFor('vllm', s).chat(MESSAGES, { maxTokens: 3 }).catch((x: unknown) => x)) as TeacherError;
    expect(e).toBeInstanceOf(TeacherError);
    expect(e.kind).toBe('bad-request');
  });
});

describe('normalizeLogprobs', () => {
  it('reads the OpenAI, Together and bare-number shapes and rejects others', () => {
    const openai = normalizeLogprobs(
      { content: [{ token: 'a', logprob: -0.5, bytes: [97], top_logprobs: [{ token: 'b', logprob: -2 }, { token: 'a', logprob: -0.5 }] }] }, 'a', 5, 'x');
    expect(openai).toEqual([{ token: 'a', logprob: -0.5, bytes: [97], top: [{ token: 'a', logprob: -0.5 }, { token: 'b', logprob: -2 }] }]);
    expect(normalizeLogprobs({ tokens: ['a'], token_logprobs: [-1], top_logprobs: [{ z: -3, a: -1 }] }, 'a', 1, 'x')).toEqual([
      { token: 'a', logprob: -1, top: [{ token: 'a', logprob: -1 }] },
    ]);
    expect(normalizeLogprobs(-0.25, 'hi', 5, 'x')).toEqual([{ token: 'hi', logprob: -0.25, top: [] }]);
    expect(normalizeLogprobs(null, '', 5, 'x')).toBeNull();
    expect(normalizeLogprobs({ content: null }, '', 5, 'x')).toBeNull();
    expect(() => normalizeLogprobs({ weird: 1 }, '', 5, 'chunk 3')).toThrow(/chunk 3: logprobs has an unknown shape/);
    expect(() => normalizeLogprobs({ content: [{ token: 'a', logprob: 'x' }] }, '', 5, 'c')).toThrow(TeacherError);
    expect(() => normalizeLogprobs({ tokens: ['a', 'b'], token_logprobs: [-1] }, '', 5, 'c')).toThrow(/equal length/);
  });
});

/** A clock that only moves when told to; sleepers wake in time order. */
class FakeClock implements Clock {
  t = 0;
  private sleepers: { at: number; wake: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = { at: this.t + ms, wake: resolve };
      this.sleepers.push(s);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        reject(new Error('aborted'));
      });
    });
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setTimeout(r, 0));
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0];
      if (!next || next.at > end) break;
      this.sleepers.shift();
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
    this.t = end;
    await new Promise((r) => setTimeout(r, 0));
  }
}

describe('limits', () => {
  it('TokenBucket: at most burst + rate·t/window takes in any prefix of time, in FIFO order', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(10, 1000, 2, clock); // 10 per second, burst 2
    const times: number[] = [];
    const order: number[] = [];
    const all = Array.from({ length: 12 }, (_, i) => bucket.take().then(() => {
      times.push(clock.now());
      order.push(i);
    }));
    for (let step = 0; step < 20; step++) await clock.advance(50);
    await Promise.all(all);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(times.slice(0, 2)).toEqual([0, 0]); // the burst
    for (let i = 0; i < times.length; i++) expect(i + 1).toBeLessThanOrEqual(2 + (10 * times[i]!) / 1000 + 1e-9);
    expect(times[11]).toBe(1000); // the 12th take: 2 free + 10 at 100 ms spacing
  });

  it('TokenBucket: an aborted take leaves the queue moving; takeNow goes into debt', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1, 100, 1, clock);
    await bucket.take();
    const ctl = new AbortController();
    const a = bucket.take(ctl.signal).then(() => 'took', () => 'aborted');
    const b = bucket.take().then(() => clock.now());
    ctl.abort();
    await clock.advance(100);
    expect(await a).toBe('aborted');
    expect(await b).toBe(100);
    bucket.takeNow(); // debt of one token
    const c = bucket.take().then(() => clock.now());
    await clock.advance(300);
    expect(await c).toBe(300);
  });

  it('Semaphore: at most max holders, FIFO, aborted waiters leave the queue', async () => {
    const sem = new Semaphore(2);
    const r1 = await sem.acquire();
    const r2 = await sem.acquire();
    const got: string[] = [];
    const ctl = new AbortController();
    const w1 = sem.acquire().then((r) => (got.push('w1'), r));
    const w2 = sem.acquire(ctl.signal).then(() => got.push('w2'), () => got.push('w2 aborted'));
    const w3 = sem.acquire().then((r) => (got.push('w3'), r));
    expect(sem.inUse).toBe(2);
    expect(sem.waiting).toBe(3);
    ctl.abort();
    await w2;
    r1();
    r1(); // a second release does nothing
    await w1;
    expect(sem.inUse).toBe(2);
    r2();
    (await w3)();
    expect(got).toEqual(['w2 aborted', 'w1', 'w3']);
    expect(sem.inUse).toBe(1);
  });
});
