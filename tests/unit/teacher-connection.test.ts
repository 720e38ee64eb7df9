// "Test connection" (src/teacher/connection.ts) against the real OpenAI-protocol test server on 127.0.0.1: logprobs
// and top alternatives detected (token-level KD), a server without logprobs said plainly (sequence-level only), the
// models listed (and the first one taken when no model is given), a wrong key explained without echoing it (even by
// a server that echoes the Authorization header), a wrong path and an unknown model told apart, nothing listening
// reported as refused, a 429 and a timeout explained. The CORS diagnosis (a browser-only failure) is checked with a
// fetch that fails like a browser's: a TypeError for the request, an opaque answer for the no-cors probe.
import { afterEach, describe, expect, it } from 'vitest';
import { corsAdvice, isMixedContent, testConnection, type ConnectionReport } from '../../src/teacher/connection.ts';
import { startOpenAiServer, type OpenAiServer, type OpenAiServerOptions } from '../support/openai-server.ts';
import { freePort as closedPort } from '../support/net.ts';

const MODEL = 'bigram-test-model';
const KEY = 'sk-test-0123456789abcdef';
const servers: OpenAiServer[] = [];
async function start(o: OpenAiServerOptions = {}): Promise<OpenAiServer> {
  const s = await startOpenAiServer(o);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** No text field of the report contains the key. */
function expectNoKey(r: ConnectionReport, key = KEY): void {
  expect(JSON.stringify(r)).not.toContain(key);
}


describe('testConnection', () => {
  it('reports logprobs with top alternatives: token-level KD possible, models listed, latency, the model that answered', async () => {
    const s = await start({ apiKey: KEY });
    const r = await testConnection({ preset: 'custom', baseURL: s.url, apiKey: KEY, model: MODEL });
    expect(r.ok, r.summary).toBe(true);
    expect(r.reachable).toBe(true);
    expect(r.problem).toBeNull();
    expect(r.models).toEqual([MODEL]);
    expect(r.servedModel).toBe(MODEL);
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    expect(r.logprobs).toBe(true);
    expect(r.topLogprobs).toBe(true);
    expect(r.kd).toBe('token');
    expect(r.kdNote).toMatch(/token-level KD possible/i);
    expect(r.summary).toMatch(new RegExp(`Connected: ${MODEL} answered in [\\d.]+ s\\.$`));
    expect(r.sample).not.toBeNull();
    // The one chat request asked for logprobs and top alternatives, with the key only in the Authorization header.
    const body = s.stats.chatBodies.at(-1)!;
    expect(body.logprobs).toBe(true);
    expect(body.top_logprobs).toBe(5);
    expect(s.stats.authorizations.every((a) => a === `Bearer ${KEY}`)).toBe(true);
    expectNoKey(r);
  });

  it('a server without logprobs: said plainly, only sequence-level KD', async () => {
    const s = await start({ omitLogprobs: true });
    const r = await testConnection({ preset: 'vllm', baseURL: s.url, model: MODEL });
    expect(r.ok).toBe(true);
    expect(r.logprobs).toBe(false);
    expect(r.topLogprobs).toBe(false);
    expect(r.kd).toBe('sequence');
    expect(r.kdNote).toBe("Only sequence-level KD (SFT on the teacher's answers): this server returns no log-probabilities.");
  });

  it('no model given: the first listed one is tested, and said so', async () => {
    const s = await start();
    const r = await testConnection({ preset: 'custom', baseURL: s.url, model: '' });
    expect(r.ok).toBe(true);
    expect(r.model).toBe(MODEL);
    expect(r.warnings.join(' ')).toMatch(/No model was given: tested the first one the server lists, bigram-test-model/);
  });

  it('a wrong key: 401, the message names the key and never echoes it (even from a server that echoes it)', async () => {
    const s = await start({ apiKey: 'sk-the-right-one', echoAuthInErrors: true });
    const r = await testConnection({ preset: 'openai', baseURL: s.url, apiKey: KEY, model: MODEL });
    expect(r.ok).toBe(false);
    expect(r.reachable).toBe(true);
    expect(r.problem).toBe('auth');
    expect(r.status).toBe(401);
    expect(r.summary).toBe('The server refused the API key (HTTP 401).');
    expect(r.advice[0]).toMatch(/^Check the API key for 127\.0\.0\.1:\d+/);
    expect(r.models).toBeNull();
    expectNoKey(r);
    expect(s.stats.chatRequests).toBe(0); // the listing already failed: no chat request sent
  });

  it('no key where one is needed: asks for it', async () => {
    const s = await start({ apiKey: KEY });
    const r = await testConnection({ preset: 'custom', baseURL: s.url, model: MODEL });
    expect(r.problem).toBe('auth');
    expect(r.summary).toMatch(/wants an API key \(HTTP 401\) and none was entered/);
  });

  it('a wrong path: 404 with the /v1 hint', async () => {
    const s = await start();
    const r = await testConnection({ preset: 'ollama', baseURL: s.url.replace(/\/v1$/, ''), model: MODEL });
    expect(r.ok).toBe(false);
    expect(r.problem).toBe('not-found');
    expect(r.status).toBe(404);
    expect(r.summary).toMatch(/\/chat\/completions does not exist \(HTTP 404\)/);
    expect(r.advice[0]).toMatch(/usually ends in \/v1 \(e\.g\. http:\/\/127\.0\.0\.1:\d+\/v1; Ollama: http:\/\/localhost:11434\/v1\)/);
    expect(r.modelsNote).toMatch(/did not list its models \(HTTP 404\)/);
  });

  it('an unknown model: 404 told apart from a wrong path, with the models the server lists', async () => {
    const s = await start();
    const r = await testConnection({ preset: 'custom', baseURL: s.url, model: 'gpt-9' });
    expect(r.problem).toBe('model-not-found');
    expect(r.summary).toBe('The server does not know the model "gpt-9" (HTTP 404).');
    expect(r.advice[0]).toBe(`Pick a model the server lists: ${MODEL}.`);
    expect(r.models).toEqual([MODEL]);
  });

  it('nothing listening: connection refused, start the server', async () => {
    const port = await closedPort();
    const r = await testConnection({ preset: 'ollama', baseURL: `http://127.0.0.1:${port}/v1`, model: 'llama3' });
    expect(r.ok).toBe(false);
    expect(r.reachable).toBe(false);
    expect(r.problem).toBe('refused');
    expect(r.summary).toBe(`Connection refused at 127.0.0.1:${port}: no server is listening there.`);
    expect(r.advice[0]).toBe('Start the server (ollama serve), then test again.');
  });

  it('a rate limit: 429 explained (no retries in a test)', async () => {
    const s = await start({ faults: { p429: 1 } });
    const r = await testConnection({ preset: 'custom', baseURL: s.url, model: MODEL });
    expect(r.problem).toBe('rate-limit');
    expect(r.status).toBe(429);
    expect(r.advice.join(' ')).toMatch(/requests per minute/);
    expect(s.stats.chatRequests).toBe(1);
  });

  it('a server that never answers: a timeout', async () => {
    const s = await start({ faults: { pTimeout: 1, timeoutMode: 'hang' } });
    const r = await testConnection({ preset: 'custom', baseURL: s.url, model: MODEL }, { timeoutMs: 400 });
    expect(r.problem).toBe('timeout');
    expect(r.summary).toMatch(/^No answer from http:\/\/127\.0\.0\.1:\d+ within 0\.40 s\.$/);
  });

  it('invalid settings: no request, the field named', async () => {
    const r = await testConnection({ preset: 'custom', baseURL: 'localhost:8000', model: MODEL });
    expect(r.problem).toBe('config');
    expect(r.summary).toMatch(/baseURL/);
  });

  it('CORS (as a browser reports it): the server answers a no-cors probe, so CORS blocked the real request', async () => {
    const s = await start();
    const seen: { url: string; mode: string | undefined; auth: boolean }[] = [];
    const browserLike = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      seen.push({ url, mode: init?.mode, auth: new Headers(init?.headers).has('authorization') });
      if (init?.mode === 'no-cors') return new Response(null, { status: 200 }); // stands for an opaque answer
      throw new TypeError('Failed to fetch');
    };
    const r = await testConnection({ preset: 'ollama', baseURL: s.url, apiKey: KEY, model: MODEL }, { fetch: browserLike, pageOrigin: 'http://127.0.0.1:5173' });
    expect(r.problem).toBe('cors');
    expect(r.summary).toMatch(/is running, but the browser blocked its answer: it does not allow requests from this page's origin \(http:\/\/127\.0\.0\.1:5173\)\. This is CORS\./);
    expect(r.advice[0]).toBe('Ollama: start it with OLLAMA_ORIGINS=http://127.0.0.1:5173 ollama serve (for the desktop app, set OLLAMA_ORIGINS in its environment and restart it).');
    // The probe carries no key.
    const probe = seen.find((x) => x.mode === 'no-cors')!;
    expect(probe.auth).toBe(false);
    expectNoKey(r);
  });

  it('an https page and a plain-http remote server: mixed content, nothing sent', async () => {
    let sent = 0;
    const r = await testConnection({ preset: 'vllm', baseURL: 'http://gpu-box.example:8000/v1', model: 'm' }, {
      pageOrigin: 'https://distill.example', fetch: async () => { sent++; throw new TypeError('Failed to fetch'); },
    });
    expect(r.problem).toBe('mixed-content');
    expect(sent).toBe(0);
    expect(isMixedContent('https://a.example', 'http://localhost:11434/v1')).toBe(false);
    expect(isMixedContent('https://a.example', 'http://127.0.0.1:8000/v1')).toBe(false);
    expect(isMixedContent('http://a.example', 'http://b.example/v1')).toBe(false);
  });

  it('CORS advice names each server\'s switch', () => {
    const all = corsAdvice('custom', 'http://127.0.0.1:5173').join('\n');
    expect(all).toMatch(/Access-Control-Allow-Origin: http:\/\/127\.0\.0\.1:5173/);
    expect(all).toMatch(/OLLAMA_ORIGINS=http:\/\/127\.0\.0\.1:5173 ollama serve/);
    expect(all).toMatch(/--allowed-origins/);
    expect(all).toMatch(/llama-server/);
    expect(all).toMatch(/Enable CORS/);
  });
});
