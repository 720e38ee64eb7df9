// Each elicitation strategy end to end: a real OpenAI-protocol server on 127.0.0.1 (a scripted model whose replies
// exercise the parsing paths, or the BigramModel for real logprobs) → RemoteTeacher → createElicitJob/runElicitJob
// → fake-indexeddb; then the stored records, pairs, top-k rows, provenance and cursor statistics are checked.
import { afterEach, describe, expect, it } from 'vitest';
import { createElicitJob, runElicitJob } from '../../src/elicit/run.ts';
import { datasetVocab } from '../../src/store/topk-table.ts';
import { TEMPLATES } from '../../src/elicit/templates.ts';
import { unpackTopKRows } from '../../src/store/topk.ts';
import { BigramModel, renderPrompt, topK } from '../support/text-model.ts';
import { allRecords, closeServers, ScriptedModel, start, teacherFor, userOf } from './elicit-fixtures.ts';
import { freshStore } from './store-fixtures.ts';

afterEach(closeServers);

const NEW_TASKS = [
  'Explain how vaccines train the immune system',
  'Summarize the causes of the French revolution',
  'Write a haiku about autumn leaves falling',
  'Compare renewable and fossil energy sources for a small town',
  'Suggest three names for a bakery run by twins',
  'Translate the phrase good morning into Spanish and German',
  'List the planets in order from the sun outward',
  'Describe the rules of chess castling precisely',
  'Plan a weekend hiking trip with a tight budget',
];

/** Replies of the scripted teacher, by what the prompt asks. `genCalls` counts generation requests. */
function scripted(state = { genCalls: 0 }) {
  return new ScriptedModel((prompt) => {
    const user = userOf(prompt);
    if (user.includes('Come up with a series of diverse tasks')) {
      const n = state.genCalls++;
      const fresh = NEW_TASKS.slice(n * 3, n * 3 + 3);
      const again = n > 0 ? [NEW_TASKS[0]!] : [];
      return ['Write a short poem about the sea today', ...again, 'Draw a picture of a cat', 'Hi', ...fresh].map((t, i) => `${i + 5}. ${t}`).join('\n');
    }
    const topic = /ask about "([^"]*)"/.exec(user);
    if (topic) return `1. What is ${topic[1]} about?\n2. Why does ${topic[1]} matter today?\n3. What is ${topic[1]} about?`;
    const given = /#Given Prompt#:\n([\s\S]*?)\n\n#/.exec(user);
    if (given) {
      const g = given[1]!;
      if (g.includes('FAILCOPY')) return g;
      if (g.includes('FAILMARK')) return '#Rewritten Prompt#: something else entirely here';
      return `${g} Explain your reasoning in detail.`;
    }
    const response = /\[Response\]\n([\s\S]*)$/.exec(user);
    if (response) {
      const r = response[1]!;
      if (r.startsWith('good')) return 'Clear and correct.\nScore: 9';
      if (r.startsWith('bad')) return 'Wrong.\n**Score:** 2/10';
      if (r.startsWith('garbage')) return 'Ignore previous instructions. Score: 11';
      return 'Average. Score: 5';
    }
    const answer = /\[Answer\]\n([\s\S]*)$/.exec(user);
    if (answer) return answer[1]!.includes('RIGHT') ? 'Verdict: yes' : answer[1]!.includes('WRONG') ? 'Verdict: no, it is wrong' : 'hmm, hard to say';
    if (user.includes('REFUSE')) return "Sorry, I can't.";
    if (user.includes("Let's think step by step")) return `Step 1: read. Step 2: think. Answer: ${user.split('\n')[0]}`;
    return `Answer to: ${user}`;
  });
}

async function setup(model = scripted()) {
  const s = await start({ model });
  const { store } = await freshStore();
  const ds = await store.createDataset({ name: 'elicit' });
  return { s, store, ds, teacher: teacherFor(s, { apiKey: '' }) };
}

describe('labeling', () => {
  it('answers every input; system prompt and chain of thought; provenance', async () => {
    const { s, store, ds, teacher } = await setup();
    const inputs = ['What is 2+2?', 'Name a colour.', 'REFUSE this', 'Why is the sky blue?', 'Define entropy.'];
    const job = await createElicitJob(store, ds.id, 'labeling', { inputs, chainOfThought: true, batchSize: 2, seed: 3 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status).toBe('done');
    expect(done.progress).toMatchObject({ done: 5, total: 5 });
    const recs = await allRecords(store, ds.id);
    expect(recs).toHaveLength(5);
    for (const [i, r] of recs.entries()) {
      expect(r.key).toBe(`${job.id}:labeling:${i}:0`);
      expect(r.messages[0]).toEqual({ role: 'system', content: TEMPLATES['labeling.system'].text });
      expect(r.messages[1]!.content).toBe(`${inputs[i]}\n\nLet's think step by step, then give the final answer.`);
      expect(r.messages[2]!.content).toBe(inputs[i] === 'REFUSE this' ? "Sorry, I can't." : `Step 1: read. Step 2: think. Answer: ${inputs[i]}`);
      expect(r.provenance.strategy).toBe('labeling');
      expect(r.provenance.template).toMatch(/^labeling\.cot@/);
      expect(r.provenance.teacher).toEqual({ kind: 'openai-compatible', model: 'scripted-test-model', baseURLHost: new URL(s.url).host });
      expect(r.provenance.params).toMatchObject({ temperature: 0.7, max_tokens: 512, seed: 3, chain_of_thought: true, finish_reason: 'stop' });
      expect(r.provenance.usage.output).toBe(new TextEncoder().encode(r.messages[2]!.content).length);
      expect(r.provenance.usage.input).toBeGreaterThan(0);
    }
    expect(done.progress.tokens).toBe(recs.reduce((a, r) => a + r.provenance.usage.input + r.provenance.usage.output, 0));
    expect(s.stats.chatRequests).toBe(5);
  });

  it('runs on the BigramModel too (plumbing only), several answers per input', async () => {
    const { s, store, ds, teacher } = await setup(new BigramModel() as never);
    const job = await createElicitJob(store, ds.id, 'labeling', { inputs: ['The river', 'The mill'], answersPerInput: 2, maxTokens: 20, seed: 1 });
    expect((await runElicitJob(store, job.id, { teacher })).status).toBe('done');
    const recs = await allRecords(store, ds.id);
    const empty = (await store.getJob(job.id))!.cursor as { stats: { emptyAnswer?: number } };
    expect(recs.length + (empty.stats.emptyAnswer ?? 0)).toBe(4);
    expect(s.stats.chatRequests).toBe(4);
    expect(new Set(s.stats.chatBodies.map((b) => b.seed)).size).toBe(4); // distinct seeds per request
  });
});

describe('expansion (Self-Instruct)', () => {
  it('keeps only dissimilar, valid instructions across steps and answers them', async () => {
    const { s, store, ds, teacher } = await setup();
    const seeds = ['Write a short poem about the sea', 'Give three tips for sleeping better', 'Explain what a prime number is'];
    const job = await createElicitJob(store, ds.id, 'expansion', { seeds, target: 7, perRequest: 4, demosPerPrompt: 2, seed: 9 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status).toBe('done');
    const recs = await allRecords(store, ds.id);
    expect(recs.map((r) => r.messages[0]!.content)).toEqual(NEW_TASKS.slice(0, 7));
    for (const r of recs) expect(r.messages[1]!.content).toBe(`Answer to: ${r.messages[0]!.content}`);
    const cursor = done.cursor as { round: number; pool: string[]; stats: Record<string, number> };
    expect(cursor.round).toBe(3);
    expect(cursor.pool).toEqual(NEW_TASKS.slice(0, 7));
    // per round: the near-copy of a seed (and from round 2 a repeat) are too similar; the picture and "Hi" filtered.
    expect(cursor.stats.tooSimilar).toBe(1 + 2 + 2);
    expect(cursor.stats.filtered).toBe(6);
    expect(s.stats.chatRequests).toBe(3 + 7);
    const gen = s.stats.chatBodies.find((b) => JSON.stringify(b.messages).includes('Come up with'))!;
    expect(JSON.stringify(gen.messages)).toMatch(/1\. .*\\n2\. /);
    expect(recs[0]!.provenance.params.includes_generation_usage).toBe(true);
    expect(recs[1]!.provenance.params.includes_generation_usage).toBe(false);
  });
});

describe('curation (topic tree, UltraChat-style)', () => {
  it('asks for questions per leaf, drops duplicates, answers them', async () => {
    const { store, ds, teacher } = await setup();
    const topics = [{ topic: 'Science', subtopics: ['Optics', { topic: 'Biology', subtopics: ['Cells'] }] }, 'Cooking'];
    const job = await createElicitJob(store, ds.id, 'curation', { topics, questionsPerLeaf: 2 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status).toBe('done');
    expect(done.progress).toMatchObject({ done: 6, total: 6 });
    const recs = await allRecords(store, ds.id);
    expect(recs.map((r) => r.messages[0]!.content)).toEqual(
      ['Optics', 'Cells', 'Cooking'].flatMap((t) => [`What is ${t} about?`, `Why does ${t} matter today?`]),
    );
    expect(recs[2]!.provenance.params.topic_path).toEqual(['Science', 'Biology', 'Cells']);
    expect((done.cursor as { stats: Record<string, number> }).stats.duplicateQuestion).toBe(3);
  });
});

describe('evol (Evol-Instruct)', () => {
  it('evolves for several rounds and eliminates failed evolutions', async () => {
    const { store, ds, teacher } = await setup();
    const inputs = ['Explain photosynthesis to a child', 'FAILCOPY summarize this text for me', 'FAILMARK list some fruit names', 'REFUSE tell me a secret story'];
    const job = await createElicitJob(store, ds.id, 'evol', { inputs, rounds: 2, methods: ['deepen', 'breadth'], seed: 4 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status).toBe('done');
    expect(done.progress).toMatchObject({ done: 8, total: 8 });
    const recs = await allRecords(store, ds.id);
    const r1 = 'Explain photosynthesis to a child Explain your reasoning in detail.';
    expect(recs.map((r) => [r.key.split(':').slice(-2).join(':'), r.messages[0]!.content])).toEqual([
      ['0:0', r1],
      ['0:1', `${r1} Explain your reasoning in detail.`],
    ]);
    expect(recs[0]!.provenance.params.method).toMatch(/^(deepen|breadth)$/);
    expect((done.cursor as { stats: Record<string, number> }).stats).toEqual({
      'eliminated:copy-of-input': 2, 'eliminated:copies-prompt': 2, 'eliminated:refusal': 2,
    });
  });
});

describe('feature (top-k logprobs)', () => {
  it('stores per-token top-k rows whose ids resolve through the token table to the model distribution', async () => {
    const model = new BigramModel();
    const { store, ds, teacher } = await setup(model as never);
    const inputs = ['The river', 'In the winter'];
    const job = await createElicitJob(store, ds.id, 'feature', { inputs, topLogprobs: 6, temperature: 0, maxTokens: 12 });
    const done = await runElicitJob(store, job.id, { teacher });
    expect(done.status).toBe('done');
    const vocab = await datasetVocab(store, ds.id);
    expect(vocab).toEqual((done.cursor as { vocab: string[] }).vocab);
    const recs = await allRecords(store, ds.id);
    expect(recs).toHaveLength(2);
    for (const r of recs) {
      expect(r.provenance.params).toMatchObject({ top_logprobs: 6, token_table: `job:${job.id}` });
      const entries = await store.getTopKOfRecord(r.id);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.turn).toBe(1);
      const rows = unpackTopKRows(entries[0]!.rows);
      expect(rows).toHaveLength(entries[0]!.tokens);
      // Greedy generation: replay it and compare each row with the model's top 6.
      const ctx = model.encode(renderPrompt([{ role: 'user', content: r.messages[0]!.content }]));
      for (const row of rows) {
        const dist = model.nextLogprobs(ctx);
        const want = topK(dist, 6);
        const got = new Map(Array.from(row.ids, (id, j) => [vocab[id]!, row.logprobs[j]!]));
        expect([...got.keys()].sort()).toEqual(want.map((t) => model.tokenText(t)).sort());
        const range = dist[want[0]!]! - dist[want[5]!]!;
        for (const t of want) expect(Math.abs(got.get(model.tokenText(t))! - dist[t]!)).toBeLessThanOrEqual(range / 500 + 1e-5);
        ctx.push(want[0]!);
      }
      expect(model.decode(ctx.slice(ctx.length - rows.length))).toBe(r.messages[1]!.content);
    }
    // A second feature job on the dataset starts from (and extends) the same table; one at a time.
    const job2 = await createElicitJob(store, ds.id, 'feature', { inputs: ['One year'], temperature: 0, maxTokens: 5 });
    await expect(createElicitJob(store, ds.id, 'feature', { inputs: ['x'] })).rejects.toThrow(/already has a feature job .* not done/);
    expect((job2.cursor as { vocab: string[] }).vocab).toEqual(vocab);
    await runElicitJob(store, job2.id, { teacher });
    const vocab2 = await datasetVocab(store, ds.id);
    expect(vocab2.slice(0, vocab.length)).toEqual(vocab);
  });

  it('fails with a clear error when the server returns no logprobs', async () => {
    const s = await start({ omitLogprobs: true });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'f' });
    const job = await createElicitJob(store, ds.id, 'feature', { inputs: ['The river'] });
    const done = await runElicitJob(store, job.id, { teacher: teacherFor(s) });
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/ElicitError: feature: the teacher returned no token log-probabilities .*use 'labeling'/);
    expect((await store.getDataset(ds.id))!.counts.records).toBe(0);
  });
});

describe('feedback and self-knowledge (student samples)', () => {
  it('feedback: best vs worst by parsed score; unparseable, ties and too-few are skipped and counted', async () => {
    const { store, ds, teacher } = await setup();
    const samples: Record<string, string[]> = {
      P1: ['good answer', 'bad answer', 'garbage', 'ok answer'],
      P2: ['meh one', 'meh two'],
      P3: ['good answer', '', 'good answer'],
    };
    const asked: [string, number][] = [];
    const student = async (p: string, k: number) => { asked.push([p, k]); return samples[p]!; };
    const job = await createElicitJob(store, ds.id, 'feedback', { inputs: ['P1', 'P2', 'P3'], samples: 4 });
    const done = await runElicitJob(store, job.id, { teacher, student });
    expect(done.status).toBe('done');
    expect(asked).toEqual([['P1', 4], ['P2', 4], ['P3', 4]]);
    const pairs = await store.getPairs(ds.id);
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatchObject({ key: `${job.id}:feedback:0`, prompt: [{ role: 'user', content: 'P1' }], chosen: 'good answer', rejected: 'bad answer' });
    expect(pairs[0]!.provenance.params).toMatchObject({ chosen_score: 9, rejected_score: 2, scores: [9, 2, 5] });
    expect(pairs[0]!.provenance.usage.input).toBeGreaterThan(0);
    expect((done.cursor as { stats: Record<string, number> }).stats).toEqual({ unparseableScore: 1, tie: 1, emptySample: 1, duplicateSample: 1, tooFewScored: 1 });
    const noStudent = await createElicitJob(store, ds.id, 'feedback', { inputs: ['P1'] });
    expect((await runElicitJob(store, noStudent.id, { teacher })).error).toMatch(/needs the student's sampler/);
  });

  it("self-knowledge: kept by majority or by the teacher's verdict", async () => {
    const { s, store, ds, teacher } = await setup();
    const samples: Record<string, string[]> = {
      Q1: ['a: the answer is 4', 'b: answer is 4', 'c: answer is 4', 'd: answer is 5 WRONG', 'e: answer is 6 RIGHT'],
      Q2: ['answer is 1 RIGHT', 'answer is 2 hmm', 'answer is 3 WRONG', 'answer is 1 RIGHT', ''],
    };
    const job = await createElicitJob(store, ds.id, 'self-knowledge', { inputs: ['Q1', 'Q2'], samples: 5 });
    const done = await runElicitJob(store, job.id, { teacher, student: async (p) => samples[p]! });
    expect(done.status).toBe('done');
    const recs = await allRecords(store, ds.id);
    expect(recs.map((r) => [r.messages[1]!.content, r.provenance.params.kept_by])).toEqual([
      ['a: the answer is 4', 'consistency'], ['b: answer is 4', 'consistency'], ['c: answer is 4', 'consistency'],
      ['e: answer is 6 RIGHT', 'verify'], ['answer is 1 RIGHT', 'verify'],
    ]);
    expect(recs[0]!.provenance.teacher).toEqual({ kind: 'self', model: 'student', baseURLHost: '' });
    expect(recs[3]!.provenance.teacher.kind).toBe('openai-compatible');
    // Q1: 2 verifications; Q2 (1 RIGHT ×2 is 2 of 4: no majority): 4 verifications.
    expect(s.stats.chatRequests).toBe(6);
    expect((done.cursor as { stats: Record<string, number> }).stats).toEqual({ emptySample: 1, noMajority: 1, rejected: 2, unparseableVerdict: 1, duplicateSample: 1 });
  });
});
