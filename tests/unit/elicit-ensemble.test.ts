// The ensemble strategy (src/elicit/ensemble.ts, ensemble-choice.ts): several teachers answer each prompt, one
// answer is kept by ROUGE-L consensus or by a judge, every answer is stored and can be chosen again. Over real HTTP:
// one test OpenAI server serving two models of different quality (word bigrams of the same prose: one sharp, whose
// samples are fluent and agree with each other, one so smoothed its words are near random) plus a scripted judge,
// with faults on.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { elicitCommand } from '../../src/elicit/cli.ts';
import { chooseAnswer, consensusScores, ensemble, ensembleChoiceOf } from '../../src/elicit/ensemble.ts';
import { ensembleSummary, rechooseEnsemble } from '../../src/elicit/ensemble-choice.ts';
import { createElicitJob, runElicitJob } from '../../src/elicit/run.ts';
import { wordTokens } from '../../src/elicit/text.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { binomialTail } from '../support/binomial.ts';
import { TRAINING_PARAGRAPH, WordBigramModel } from '../support/text-model.ts';
import { allRecords, closeServers, ScriptedModel, start, userOf } from './elicit-fixtures.ts';
import { freshStore } from './store-fixtures.ts';

afterEach(closeServers);

const PROSE = wordTokens(TRAINING_PARAGRAPH);
const PAIRS = new Set(PROSE.slice(1).map((w, i) => `${PROSE[i]} ${w}`));
/** The share of an answer's adjacent word pairs that occur in the prose (what the scripted judge grades by). */
const englishShare = (text: string): number => {
  const w = wordTokens(text);
  return w.length < 2 ? 0 : w.slice(1).filter((x, i) => PAIRS.has(`${w[i]} ${x}`)).length / (w.length - 1);
};

const PROMPTS = Array.from({ length: 48 }, (_, i) => `Tell me about the river, part ${i + 1}.`);

describe('ensemble: scores and choice', () => {
  it('binomialTail (the tests\' helper)', () => {
    expect(binomialTail(0, 10)).toBeCloseTo(1, 12);
    expect(binomialTail(10, 10)).toBeCloseTo(1 / 1024, 12);
    expect(binomialTail(9, 10)).toBeCloseTo(11 / 1024, 12);
  });

  it('consensus is the mean ROUGE-L against every other answer; the majority wins, two answers tie', () => {
    const s = consensusScores([{ text: 'the river ran past the mill' }, { text: 'the river ran past the old mill' }, { text: 'zq xv wk' }]);
    expect(s[2]).toBe(0);
    expect(s[0]).toBeGreaterThan(0.4);
    expect(chooseAnswer([{ member: 0, consensus: s[0]!, judge: null }, { member: 0, consensus: s[1]!, judge: null }, { member: 1, consensus: s[2]!, judge: null }], 'consensus')).toBeLessThan(2);
    const two = consensusScores([{ text: 'a b c' }, { text: 'a x y z' }]);
    expect(two[0]).toBe(two[1]);
  });

  it('judge: the highest grade wins, consensus breaks ties, ungraded answers never win; a fixed member', () => {
    const a = [
      { member: 0, consensus: 0.9, judge: 3 },
      { member: 1, consensus: 0.1, judge: 8 },
      { member: 1, consensus: 0.5, judge: 8 },
      { member: 2, consensus: 1, judge: null },
    ];
    expect(chooseAnswer(a, 'judge')).toBe(2);
    expect(chooseAnswer(a, 'consensus')).toBe(3);
    expect(chooseAnswer(a, { member: 0 })).toBe(0);
    expect(chooseAnswer(a.map((x) => ({ ...x, judge: null })), 'judge')).toBe(-1);
  });

  it('validation names the key: too few teachers, consensus of two answers, an unknown rule', () => {
    expect(() => ensemble.validate({ inputs: ['x'], teachers: ['a'] })).toThrow(/teachers must have 2–8 entries/);
    expect(() => ensemble.validate({ inputs: ['x'], teachers: ['a', 'b'], answersPerTeacher: 1 })).toThrow(/consensus needs at least 3 answers/);
    expect(() => ensemble.validate({ inputs: ['x'], teachers: ['a', 'b'], select: 'vote' })).toThrow(/select must be one of consensus, judge/);
    expect(ensemble.validate({ inputs: ['x'], teachers: ['a', 'b'] }).answersPerTeacher).toBe(2);
  });
});

describe('ensemble: two teachers of different quality behind one OpenAI server', () => {
  const good = new WordBigramModel('prose-teacher', 0.01);
  const weak = new WordBigramModel('noisy-teacher', 1);
  // The judge grades the response by its share of the prose's word pairs: 1..10.
  const judge = new ScriptedModel((prompt) => {
    const response = userOf(prompt).split('[Response]\n')[1] ?? '';
    return `Looks fine.\nScore: ${1 + Math.round(9 * englishShare(response))}`;
  });

  async function setup(faults = {}) {
    const s = await start({ model: judge, models: [good, weak], seed: 3, faults });
    const teacher = (model: string) => new RemoteTeacher({ baseURL: s.url, model, maxConcurrency: 4, timeoutMs: 5000 });
    const { store } = await freshStore();
    const ds = await store.createDataset({ name: 'ensemble' });
    return { s, store, ds, judgeTeacher: teacher(judge.name), members: [teacher(good.name), teacher(weak.name)] };
  }

  it('consensus keeps the better teacher\'s answer far more often than chance, with faults on; every answer stored; exactly once across a pause', async () => {
    const { s, store, ds, judgeTeacher, members } = await setup({ p429: 0.1, p500: 0.05, pCutStream: 0.05 });
    const job = await createElicitJob(store, ds.id, 'ensemble', { inputs: PROMPTS, teachers: [good.name, weak.name], answersPerTeacher: 2, maxTokens: 60, seed: 11, batchSize: 3 });
    // Refused with the wrong members, naming the job's teachers.
    const wrong = await runElicitJob(store, job.id, { teacher: judgeTeacher, members: [members[1]!, members[0]!], retryDelayMs: 1 });
    expect(wrong.status).toBe('failed');
    expect(wrong.error).toMatch(/made for the teachers prose-teacher, noisy-teacher, but noisy-teacher, prose-teacher were given/);
    await store.updateJob(job.id, { status: 'queued', error: null });
    // Pause after the first commit, then resume.
    const ctl = new AbortController();
    const paused = await runElicitJob(store, job.id, { teacher: judgeTeacher, members, retryDelayMs: 1, signal: ctl.signal, onProgress: () => ctl.abort() });
    expect(paused.status).toBe('paused');
    expect(paused.progress.done).toBeLessThan(PROMPTS.length);
    const done = await runElicitJob(store, job.id, { teacher: judgeTeacher, members, retryDelayMs: 1 });
    expect(done.status).toBe('done');
    expect(s.stats.faults['429'] + s.stats.faults['500'] + s.stats.faults.cutStream).toBeGreaterThan(0);
    const recs = await allRecords(store, ds.id);
    expect(new Set(recs.map((r) => r.key)).size).toBe(recs.length);
    expect(recs.length).toBe(PROMPTS.length);
    for (const r of recs) {
      const e = ensembleChoiceOf(r.provenance)!;
      expect(e.rule).toBe('consensus');
      expect(new Set(e.answers.map((a) => a.teacher.model))).toEqual(new Set([good.name, weak.name]));
      expect(r.messages.at(-1)!.content).toBe(e.answers[e.chosen]!.text);
      expect(r.provenance.teacher.model).toBe(e.answers[e.chosen]!.teacher.model);
      expect(r.provenance.strategy).toBe('ensemble');
    }
    const sum = await ensembleSummary(store, ds.id);
    const kept = Object.fromEntries(sum.teachers.map((t) => [t.model, t.kept]));
    // Chance would keep each teacher's answer half the time (2 answers each): the better teacher's count is far
    // in the tail of Binomial(48, ½).
    expect(binomialTail(kept[good.name]!, PROMPTS.length)).toBeLessThan(0.01);
    expect(kept[good.name]! + (kept[weak.name] ?? 0)).toBe(PROMPTS.length);
    expect(sum.teachers.find((t) => t.model === good.name)!.meanConsensus).toBeGreaterThan(sum.teachers.find((t) => t.model === weak.name)!.meanConsensus);
    // Chosen again: always the weak teacher (a baseline) — a new dataset; the source is unchanged; no judge to ask.
    const again = await rechooseEnsemble(store, ds.id, { teacher: weak.name });
    expect(again.records).toBe(PROMPTS.length);
    const weakRecs = await allRecords(store, again.datasetId);
    expect(weakRecs.every((r) => r.provenance.teacher.model === weak.name && r.provenance.params.chosen_by === `teacher ${weak.name}`)).toBe(true);
    expect(weakRecs.every((r) => { const e = ensembleChoiceOf(r.provenance)!; return r.messages.at(-1)!.content === e.answers[e.chosen]!.text; })).toBe(true);
    expect((await allRecords(store, ds.id)).map((r) => r.messages.at(-1)!.content)).toEqual(recs.map((r) => r.messages.at(-1)!.content));
    await expect(rechooseEnsemble(store, ds.id, 'judge')).rejects.toThrow(/made without a judge/);
  }, 60_000);

  it('judge: every answer graded by the job\'s teacher over HTTP; the highest grade kept; re-chosen by consensus', async () => {
    const { s, store, ds, judgeTeacher, members } = await setup();
    const n = 8;
    const job = await createElicitJob(store, ds.id, 'ensemble', { inputs: PROMPTS.slice(0, n), teachers: [good.name, weak.name], select: 'judge', answersPerTeacher: 1, maxTokens: 60, seed: 5 });
    const done = await runElicitJob(store, job.id, { teacher: judgeTeacher, members, retryDelayMs: 1 });
    expect(done.status).toBe('done');
    const graded = s.stats.chatBodies.filter((b) => b.model === judge.name);
    expect(graded.length).toBe(2 * n);
    const recs = await allRecords(store, ds.id);
    expect(recs.length).toBe(n);
    for (const r of recs) {
      const e = ensembleChoiceOf(r.provenance)!;
      for (const a of e.answers) expect(a.judge).toBe(1 + Math.round(9 * englishShare(a.text)));
      expect(e.answers[e.chosen]!.judge).toBe(Math.max(...e.answers.map((a) => a.judge!)));
    }
    const sum = await ensembleSummary(store, ds.id);
    expect(sum.teachers.find((t) => t.model === good.name)!.meanGrade!).toBeGreaterThan(sum.teachers.find((t) => t.model === weak.name)!.meanGrade!);
    const byConsensus = await rechooseEnsemble(store, ds.id, 'consensus', 'by consensus');
    expect(byConsensus.records).toBe(n);
    expect((await store.getDataset(byConsensus.datasetId))!.name).toBe('by consensus');
  }, 60_000);

  it('CLI: --members names the teachers, --model judges; the JSONL holds the kept answers with every answer in provenance', async () => {
    const s = await start({ model: judge, models: [good, weak], seed: 4 });
    const dir = await mkdtemp(join(tmpdir(), 'elicit-ensemble-'));
    try {
      await writeFile(join(dir, 'cfg.json'), JSON.stringify({ inputs: PROMPTS.slice(0, 3), select: 'judge', answersPerTeacher: 1, maxTokens: 20, seed: 1 }));
      const logs: string[] = [];
      const io = { env: {}, log: (l: string) => logs.push(l) };
      const args = ['--base-url', s.url, '--model', judge.name, '--strategy', 'ensemble', '--config', join(dir, 'cfg.json'), '--out', join(dir, 'out.jsonl'), '--with-provenance'];
      expect(await elicitCommand(args, io)).toBe(1);
      expect(logs.at(-1)).toMatch(/name them with --members/);
      expect(await elicitCommand([...args, '--members', `${good.name},${weak.name}@${s.url}`], io)).toBe(0);
      const lines = (await readFile(join(dir, 'out.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { provenance: { teacher: { model: string }; params: { ensemble: { answers: { teacher: { model: string } }[] } } } });
      expect(lines.length).toBe(3);
      for (const l of lines) expect(l.provenance.params.ensemble.answers.map((a) => a.teacher.model)).toEqual([good.name, weak.name]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
