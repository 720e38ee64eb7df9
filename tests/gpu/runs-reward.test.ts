// Reward model and RL as runs of the app's engine (issue #24; src/engine/runs/, RewardTrainer, RlTrainer) on Dawn
// with fake-indexeddb: a reward model trained from an SFT run on the dataset's preference pairs learns them (loss
// falls, held-out pair accuracy from the Evaluate stage), pauses and resumes on the same loss curve, exports as an HF
// sequence-classification folder (and refuses language-model formats); an RL run from the SFT run against that
// reward model logs reward, spread, KL and length every step, stores its frozen reference once, pauses and resumes
// on the same curve (its prompts and samples are seeded by step); plans refuse RL without a trained reward model.
// RL judged by the teacher: a RemoteTeacher on the test OpenAI server (faults on) grades every answer through the
// elicitation layer (src/elicit/judge.ts); a run that fails mid-step (the judge throws for one answer) resumes from
// its checkpoint and asks only for that answer again — every other grade is asked exactly once — and its curve is an
// uninterrupted twin's; its rewards are the judge's grades, (s − 1)/9.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { RunEvent, RunSpec, RunStepLog } from '../../src/engine/runs/types.ts';
import { exportModel } from '../../src/export/index.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { judgeAll, type JudgeItem } from '../../src/elicit/judge.ts';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { startOpenAiServer } from '../support/openai-server.ts';
import { judgeScore, JudgeModel } from '../e2e/remote-support.ts';
import { useGpu } from './gpu-context.ts';
import { engineOnFakeStores, prov, recordsOf, teacherConfig, tok } from './runs-fixture.ts';

const gpu = useGpu();
const teacherFiles = Object.fromEntries(exportModel({ config: teacherConfig, params: initParams(teacherConfig, 5), tokenizer: tok }, 'safetensors').map((f) => [f.path, f.bytes]));
const teacher = { label: 'tiny-teacher', source: { files: teacherFiles } };
const TRAIN = { batchSize: 2, seqLen: 24, steps: 4, lr: 0.01, warmupSteps: 1, evalEvery: 3, evalBatches: 2, checkpointEvery: 2, seed: 3 };

const spec = (datasetId: string, over: Record<string, unknown> = {}): RunSpec => ({
  name: 'test', datasetId, preset: 'nano', modelOverrides: { maxSeqLen: 64 }, tokenizer: { kind: 'teacher' }, format: 'continuation', method: 'sft',
  teacher, train: TRAIN, sampleEvery: 0, samplePrompts: ['Count from two'], heldOutEvery: 5, ...over,
}) as RunSpec;

const steps = (events: RunEvent[]) => events.filter((e): e is RunStepLog => e.kind === 'step');
const curve = (events: RunEvent[]) => steps(events).map((e) => [e.step, e.loss] as const);

describe('reward model and RL runs', () => {
  it('a reward model learns the pairs, resumes exactly, evaluates and exports; RL against it logs its metrics and resumes exactly', async () => {
    const { data, runs, engine } = await engineOnFakeStores(gpu, 'reward');
    const ds = (await data.createDataset({ name: 'counting' })).id;
    await data.putRecords(ds, recordsOf(30).map((r, i) => ({ key: `r${i}`, messages: [{ role: 'user' as const, content: r.user }, { role: 'assistant' as const, content: r.answer }], provenance: prov })));
    await data.putPairs(ds, recordsOf(30).map((r, i) => ({
      key: `p${i}`, prompt: [{ role: 'user' as const, content: r.user }], chosen: r.answer, rejected: ' no no no no.', provenance: prov,
    })));
    const sft = await engine.createRun(spec(ds, { name: 'sft' }));
    await engine.runRun(sft.id);

    // RL needs a trained reward model: the plan says so.
    const rlSettings = { G: 2, beta: 0.1, advantage: 'grpo', maxNewTokens: 6, temperature: 1 };
    const noRm = await engine.planRun(spec(ds, { method: 'rl', rewardRun: '', rl: rlSettings, initFrom: sft.id }));
    expect(noRm.problems.join(' ')).toMatch(/RL needs rewards: pick a reward model run \(train one with the method "Reward model"/);
    const notRm = await engine.planRun(spec(ds, { method: 'rl', rewardRun: sft.id, rl: rlSettings, initFrom: sft.id }));
    expect(notRm.problems.join(' ')).toMatch(/is not a reward model \(sft\)/);

    const rmSpec = (name: string) => spec(ds, { name, method: 'reward', initFrom: sft.id, train: { ...TRAIN, steps: 10, evalEvery: 5, lr: 0.02 } });
    const a = await engine.createRun(rmSpec('rm-a'));
    expect(a.data.trainPairs).toBe(24);
    const aEv: RunEvent[] = [];
    expect((await engine.runRun(a.id, (e) => aEv.push(e))).status).toBe('done');
    const b = await engine.createRun(rmSpec('rm-b'));
    const bEv: RunEvent[] = [];
    expect((await engine.runRun(b.id, (e) => { bEv.push(e); if (e.kind === 'step' && e.step === 3) void engine.pauseRun(b.id); })).status).toBe('paused');
    expect((await engine.runRun(b.id, (e) => bEv.push(e))).status).toBe('done');
    expect(curve(bEv)).toEqual(curve(aEv));
    const rmSteps = steps(aEv);
    expect(rmSteps).toHaveLength(10);
    expect(rmSteps.every((s) => s.pairAccuracy !== undefined && Number.isFinite(s.margin!))).toBe(true);
    expect(rmSteps.slice(-3).reduce((x, s) => x + s.loss, 0)).toBeLessThan(rmSteps.slice(0, 3).reduce((x, s) => x + s.loss, 0));
    // A reward model is not sampled from, and its Evaluate figure is held-out pair accuracy, not a perplexity.
    expect(aEv.some((e) => e.kind === 'sample')).toBe(false);
    const report = await engine.evaluate({ runId: a.id });
    expect(report.pairAccuracy).toBeGreaterThanOrEqual(0.8);
    expect(report.loss).toBeUndefined();
    const rmCk = decodeCheckpoint((await runs.checkpoints(a.id).get('latest'))!);
    expect(rmCk.tail).toHaveLength(rmCk.model.hidden);
    const out = await engine.exportModel({ source: { runId: a.id }, format: 'safetensors', name: 'rm' });
    const config = JSON.parse(new TextDecoder().decode(out.files.find((f) => f.path === 'config.json')!.bytes));
    expect(config).toMatchObject({ architectures: ['LlamaForSequenceClassification'], num_labels: 1 });
    expect(out.files.some((f) => f.path === 'training.json')).toBe(true);
    await expect(engine.exportModel({ source: { runId: a.id }, format: 'gguf', name: 'rm' })).rejects.toThrow(/is a reward model: it exports as a Hugging Face sequence-classification folder/);

    const rlSpec = (name: string) => spec(ds, { name, method: 'rl', rewardRun: a.id, rl: rlSettings, initFrom: sft.id, train: { ...TRAIN, steps: 3, evalEvery: 3, checkpointEvery: 1 } });
    const plan = await engine.planRun(rlSpec('rl'));
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    expect(plan.memory.parts.map((p) => p.name)).toEqual(expect.arrayContaining(['reward model (weights and forward buffers)', 'frozen reference model']));
    const r1 = await engine.createRun(rlSpec('rl-a'));
    const r1Ev: RunEvent[] = [];
    expect((await engine.runRun(r1.id, (e) => r1Ev.push(e))).status).toBe('done');
    const rs = steps(r1Ev);
    expect(rs.map((s) => s.step)).toEqual([1, 2, 3]);
    for (const s of rs) {
      expect(Number.isFinite(s.reward!) && s.rewardStd! >= 0 && s.kl! >= 0 && s.length! >= 1 && s.length! <= 7, JSON.stringify(s)).toBe(true);
    }
    const rlEval = r1Ev.filter((e) => e.kind === 'eval').at(-1) as { reward?: number; kl?: number; ppl: number } | undefined;
    expect(Number.isFinite(rlEval?.reward) && rlEval!.kl! >= 0 && Number.isFinite(rlEval!.ppl)).toBe(true);
    // The frozen reference is stored once: the SFT run's weights.
    const ref = decodeCheckpoint((await runs.checkpoints(r1.id).get('reference'))!);
    expect(ref.params).toEqual(decodeCheckpoint((await runs.checkpoints(sft.id).get('latest'))!).params);
    const r2 = await engine.createRun(rlSpec('rl-b'));
    const r2Ev: RunEvent[] = [];
    expect((await engine.runRun(r2.id, (e) => { r2Ev.push(e); if (e.kind === 'step' && e.step === 1) void engine.pauseRun(r2.id); })).status).toBe('paused');
    // A reward model trained further while RL is paused would change its rewards mid-run: the resume refuses.
    const rmBytes = (await runs.checkpoints(a.id).get('latest'))!;
    await runs.checkpoints(a.id).put('latest', encodeCheckpoint({ ...decodeCheckpoint(rmBytes.slice()), step: 11 }));
    await expect(engine.runRun(r2.id)).rejects.toThrow(/was at step 10 when this run started and is at step 11 now: its rewards would change mid-run/);
    await runs.checkpoints(a.id).put('latest', rmBytes);
    expect((await engine.runRun(r2.id, (e) => r2Ev.push(e))).status).toBe('done');
    // A reward model writes no text, and no run starts from it.
    await expect(engine.generate({ model: { runId: a.id }, prompt: 'Count from two', maxNewTokens: 2, temperature: 0, seed: 1 })).rejects.toThrow(/is a reward model: it scores answers and cannot write text/);
    expect((await engine.planRun(spec(ds, { name: 'from-rm', initFrom: a.id }))).problems.join(' ')).toMatch(/is a reward model \(it scores answers\): a run starts from a language model/);
    expect(curve(r2Ev)).toEqual(curve(r1Ev));
    expect(steps(r2Ev).map((s) => s.reward)).toEqual(rs.map((s) => s.reward));
  }, 600_000);

  it('RL judged by the teacher over HTTP with faults: every answer graded exactly once across a failure mid-step; the same curve', async () => {
    const { data, engine } = await engineOnFakeStores(gpu, 'judge');
    const server = await startOpenAiServer({ model: new JudgeModel(), seed: 5, faults: { p429: 0.1, p500: 0.05, pCutStream: 0.05, retryAfterMs: [1, 5] } });
    try {
      const ds = (await data.createDataset({ name: 'counting' })).id;
      await data.putRecords(ds, recordsOf(30).map((r, i) => ({ key: `r${i}`, messages: [{ role: 'user' as const, content: r.user }, { role: 'assistant' as const, content: r.answer }], provenance: prov })));
      const sft = await engine.createRun(spec(ds, { name: 'sft' }));
      await engine.runRun(sft.id);
      const teacherClient = new RemoteTeacher({ baseURL: server.url, model: 'judge-bigram-model', maxConcurrency: 4, timeoutMs: 5000 });
      const asked: JudgeItem[] = [];
      let failAt = -1;
      const judge = async (items: JudgeItem[]) => {
        asked.push(...items);
        if (asked.length === failAt) throw new Error('the judge went away');
        return judgeAll(teacherClient, items, { retryDelayMs: 1 });
      };
      const judged = { ref: { kind: 'remote', preset: 'custom', baseURL: server.url, model: 'judge-bigram-model' }, label: 'judge-bigram-model' };
      const rlSpec = (name: string) => spec(ds, { name, method: 'rl', judge: judged, rl: { G: 2, beta: 0.1, advantage: 'grpo', maxNewTokens: 6, temperature: 1 }, initFrom: sft.id, train: { ...TRAIN, steps: 4, evalEvery: 4, checkpointEvery: 2 } });
      // Uninterrupted: 4 steps × 2 prompts × G 2 answers, then the 6 held-out prompts' answers.
      const a = await engine.createRun(rlSpec('judged-a'));
      const aEv: RunEvent[] = [];
      expect((await engine.runRun(a.id, (e) => aEv.push(e), judge)).status).toBe('done');
      expect(asked).toHaveLength(4 * 2 * 2 + 6);
      const grades = asked.map((it) => (judgeScore(it.response) - 1) / 9);
      steps(aEv).forEach((s, k) => expect(s.reward).toBeCloseTo(grades.slice(4 * k, 4 * k + 4).reduce((x, y) => x + y, 0) / 4, 9));
      expect(server.stats.faults['429'] + server.stats.faults['500'] + server.stats.faults.cutStream).toBeGreaterThan(0);
      // Without the judge the run cannot go on, and says what to do.
      const b = await engine.createRun(rlSpec('judged-b'));
      await expect(engine.runRun(b.id)).rejects.toThrow(/judged by the teacher judge-bigram-model, and this page has no judge to ask: load that teacher in step 1/);
      // The judge fails on the second answer of step 3: the run fails after its step-2 checkpoint; resumed, it asks
      // for that answer alone again (step 3's other answers were stored), then goes on.
      asked.length = 0;
      failAt = 2 * 4 + 2;
      const bEv: RunEvent[] = [];
      await expect(engine.runRun(b.id, (e) => bEv.push(e), judge)).rejects.toThrow(/the judge went away/);
      expect(asked).toHaveLength(3 * 4);
      failAt = -1;
      expect((await engine.runRun(b.id, (e) => bEv.push(e), judge)).status).toBe('done');
      expect(asked).toHaveLength(4 * 2 * 2 + 6 + 1);
      const again = asked[2 * 4 + 1]!;
      expect(asked.filter((x) => x.prompt === again.prompt && x.response === again.response).length).toBeGreaterThanOrEqual(2);
      const last = new Map<number, number>();
      for (const s of steps(bEv)) last.set(s.step, s.loss);
      expect([...last.entries()]).toEqual(curve(aEv));
    } finally {
      await server.close();
    }
  }, 600_000);
});
