// The test OpenAI server serving a REAL model: the embedded default teacher (public/models/brown-teacher, trained
// by our engine on the Brown corpus, exported by us) run by onnxruntime-node with its KV cache. What the server
// sends — greedy text, every logprob and top-5 list, streamed or not — is recomputed independently with our CPU
// reference model on the same folder's safetensors weights. Faults still apply on top of the real model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { refForward } from '../../src/model/ref-model.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { logSoftmaxRow } from '../../src/util/logsoftmax.ts';
import { TeacherError } from '../../src/teacher/types.ts';
import { OnnxTextModel } from '../support/onnx-text-model.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { renderPrompt } from '../support/text-model.ts';

const DIR = 'public/models/brown-teacher';
let server: OpenAiServer;
let model: OnnxTextModel;

const ref = importHfFolder(readFolder(DIR));

beforeAll(async () => {
  model = await OnnxTextModel.load(DIR);
  server = await startOpenAiServer({ model });
});
afterAll(async () => { await server?.close(); });

const MESSAGES = [{ role: 'user', content: 'Tell me about the county jury.' }];

/** Log-softmax of the reference model's last-position logits after `ids`. */
function refLogprobs(ids: number[]): Float64Array {
  const V = ref.config.vocabSize, T = ids.length;
  const out = new Float64Array(V);
  logSoftmaxRow(refForward(ref.config, ref.params, Uint32Array.from(ids), 1, T).logits, (T - 1) * V, V, out);
  return out;
}

describe('the OpenAI test server on the embedded teacher (onnxruntime-node)', () => {
  it.each([false, true])('stream = %s: greedy text, logprobs and top-5 equal the CPU reference model', async (stream) => {
    const teacher = new RemoteTeacher({ preset: 'custom', baseURL: server.url, apiKey: '', model: model.name, maxRetries: 0, topLogprobs: 5 });
    const res = await teacher.chat(MESSAGES as never, { temperature: 0, maxTokens: 10, topLogprobs: 5, stream });
    expect(res.logprobsAvailable).toBe(true);
    const choice = res.choices[0]!;
    expect(choice.tokens?.length).toBeGreaterThan(0);
    const ctx = model.encode(renderPrompt(MESSAGES));
    const gen: number[] = [];
    for (const t of choice.tokens!) {
      const lp = refLogprobs([...ctx, ...gen]);
      let best = 0;
      for (let i = 1; i < lp.length; i++) if (lp[i]! > lp[best]!) best = i;
      expect(t.token, `token ${gen.length}`).toBe(model.tokenText(best)); // greedy = the reference argmax
      expect(Math.abs(t.logprob - lp[best]!)).toBeLessThan(1e-4);
      const top = [...lp.keys()].sort((a, b) => lp[b]! - lp[a]!).slice(0, 5);
      expect(t.top!.map((x) => x.logprob)).toEqual(top.map((i) => expect.closeTo(lp[i]!, 4)));
      gen.push(best);
    }
    expect(choice.text).toBe(model.decode(gen));
  }, 120_000);
});

describe('faults on top of the real model', () => {
  it('30% injected faults: every request ends with the fault-free answer (SDK retries + job-level re-queue)', async () => {
    const faulty = await startOpenAiServer({
      model, seed: 5,
      faults: { p429: 0.06, p500: 0.06, p503: 0.06, pCutStream: 0.06, pMalformed: 0.06, retryAfterMs: [5, 20] },
    });
    try {
      const clean = new RemoteTeacher({ preset: 'custom', baseURL: server.url, apiKey: '', model: model.name, maxRetries: 0 });
      const teacher = new RemoteTeacher({ preset: 'custom', baseURL: faulty.url, apiKey: '', model: model.name, maxRetries: 8, maxConcurrency: 4 });
      const prompts = Array.from({ length: 16 }, (_, i) => [{ role: 'user', content: `Story number ${i} about the county.` }]);
      const want = await Promise.all(prompts.map((m) => clean.chat(m as never, { temperature: 0, maxTokens: 6, stream: false })));
      let requeued = 0;
      // Cut streams and malformed bodies arrive with status 200: the SDK cannot retry them, the job re-queues them.
      const once = async (m: unknown, i: number): Promise<Awaited<ReturnType<typeof teacher.chat>>> => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await teacher.chat(m as never, { temperature: 0, maxTokens: 6, stream: i % 2 === 0 });
          } catch (e) {
            if (!(e instanceof TeacherError) || !e.retryable || attempt >= 10) throw e;
            requeued++;
          }
        }
      };
      const got = await Promise.all(prompts.map(once));
      expect(got.map((r) => r.choices[0]!.text)).toEqual(want.map((r) => r.choices[0]!.text));
      const faults = Object.values(faulty.stats.faults).reduce((a, b) => a + b, 0);
      expect(faults).toBeGreaterThan(0);
      // Every fault was absorbed: by an SDK retry (counted in attempts) or a re-queue (failed calls' retries uncounted).
      expect(got.reduce((a, r) => a + r.attempts - 1, 0) + requeued).toBeGreaterThan(0);
      expect(got.reduce((a, r) => a + r.attempts - 1, 0) + requeued).toBeLessThanOrEqual(faults);
    } finally {
      await faulty.close();
    }
  }, 120_000);
});
