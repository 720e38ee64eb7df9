// KD across tokenizers in the app's engine (issue #23), on Dawn with fake-indexeddb: a dataset whose stored top-k
// rows come from a teacher with its own BPE (another size, trained on other text: the feature strategy's token
// table holds its strings), and a student on a new BPE of the dataset. The same-tokenizer source is refused at
// planning (its rows are not the student's tokens), with KD across tokenizers and SeqKD offered; with 'cross-topk' the records are paired by text — the run
// counts the exact, ULD and label-only tokens and says so —, trains with the ULD term beside the exact KL (both
// finite, the ULD term falling), resumes, and evaluates.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.ts';
import { RunStore } from '../../src/engine/runs/run-store.ts';
import type { RunEvent, RunSpec, RunStepLog } from '../../src/engine/runs/types.ts';
import { exportModel } from '../../src/export/index.ts';
import { makeConfig } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { openStore } from '../../src/store/store.ts';
import { encodeTopK, packTopKRows } from '../../src/store/topk.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { Rng } from '../../src/util/rng.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const prov = { teacher: { kind: 'openai', model: 'other-tokenizer', baseURLHost: '' }, strategy: 'feature', params: {}, usage: { input: 1, output: 1 }, time: 1 };
const recordsOf = (n: number) => Array.from({ length: n }, (_, i) => ({
  user: `Count from ${WORDS[i % 10]}`,
  answer: ` ${WORDS[i % 10]}, ${WORDS[(i + 3) % 10]} and ${WORDS[(i + 7) % 10]}: counting on.`,
}));
// The teacher's own BPE: larger, trained on other text (whole words like " seven" are single tokens there).
const teacherTok = trainBpe([...WORDS.map((w) => ` ${w} ${w} ${w},`), 'counting on and on: counting'], { vocabSize: 330, specialTokens: ['<|endoftext|>'] });

async function setup(n: number) {
  const factory = new IDBFactory();
  const data = await openStore('cross-data', factory);
  const runs = await RunStore.open('cross-runs', factory);
  const engine = createEngine(async () => gpu(), { dataStore: async () => data, runStore: async () => runs });
  const ds = await data.createDataset({ name: 'counting, another tokenizer' });
  const vocab: string[] = [], index = new Map<string, number>();
  const idOf = (s: string) => { let i = index.get(s); if (i === undefined) { i = vocab.length; vocab.push(s); index.set(s, i); } return i; };
  const rng = new Rng(5);
  const records = recordsOf(n).map((r, i) => {
    const rows = teacherTok.encode(r.answer).map((id) => {
      const strings = [...new Set([id, 1 + rng.int(teacherTok.vocabSize - 1), 1 + rng.int(teacherTok.vocabSize - 1)].map((x) => teacherTok.decode([x])))];
      return encodeTopK(Uint32Array.from(strings, idOf), Float32Array.from(strings, (_, k) => [-0.1, -2.7, -3.5][k]!), 3);
    });
    return {
      key: `r${i}`, messages: [{ role: 'user' as const, content: r.user }, { role: 'assistant' as const, content: r.answer }], provenance: prov,
      topk: [{ turn: 1, rows: packTopKRows(rows), tokens: rows.length }],
    };
  });
  const job = await data.createJob({ kind: 'elicit:feature', datasetId: ds.id, config: {} });
  await data.updateJob(job.id, { cursor: { next: n, vocab }, status: 'done' }, { records });
  return { engine, ds: ds.id };
}

const spec = (datasetId: string, over: Record<string, unknown> = {}): RunSpec => ({
  name: 'cross', datasetId, preset: 'nano', modelOverrides: { maxSeqLen: 64 }, tokenizer: { kind: 'bpe', vocabSize: 280 }, format: 'continuation',
  method: 'kd', kdSource: 'cross-topk',
  train: { batchSize: 4, seqLen: 24, steps: 6, lr: 0.02, warmupSteps: 1, evalEvery: 3, evalBatches: 2, checkpointEvery: 3, seed: 3, objective: 'fkl', kdWeight: 0.5, ceWeight: 0.5 },
  sampleEvery: 0, samplePrompts: [], heldOutEvery: 5, ...over,
}) as RunSpec;

describe('KD across tokenizers in the engine', () => {
  it('same-tokenizer top-k leaves every record out; cross-topk pairs them by text, trains with the ULD term, resumes, evaluates', async () => {
    const { engine, ds } = await setup(60);
    // Planning already says so, and offers the rows across tokenizers (and SeqKD).
    const sameTok = await engine.planRun(spec(ds, { kdSource: 'store-topk' }));
    expect(sameTok.problems.join(' ')).toMatch(/the stored top-k rows are in the teacher's tokens, and a new BPE's tokens are others: pick the stored top-k across tokenizers/);
    expect([sameTok.offerCross, sameTok.offerSeqKd]).toEqual([true, true]);
    await expect(engine.createRun(spec(ds, { kdSource: 'store-topk' }))).rejects.toThrow(/the run cannot start: the stored top-k rows are in the teacher's tokens/);
    const cross = await engine.planRun(spec(ds));
    expect(cross.ok, cross.problems.join('; ')).toBe(true);
    expect(cross.crossShare).toBeUndefined(); // a new BPE: measured at creation
    // On the teacher's own tokenizer every answer token pairs exactly: planning measures it on the first answers.
    const cfg = makeConfig({ vocabSize: teacherTok.vocabSize, hidden: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 32, intermediate: 64, maxSeqLen: 64, initStd: 0.3 });
    const files = Object.fromEntries(exportModel({ config: cfg, params: initParams(cfg, 5), tokenizer: teacherTok }, 'safetensors').map((f) => [f.path, f.bytes]));
    const same = await engine.planRun(spec(ds, { tokenizer: { kind: 'teacher' }, teacher: { label: 'the teacher', source: { files } } }));
    const share = same.crossShare!;
    expect([share.answers, share.unaligned, share.uld, share.none]).toEqual([60, 0, 0, 0]);
    expect(share.exact).toBe(recordsOf(60).reduce((n, r) => n + teacherTok.encode(r.answer).length, 0));
    expect(cross.memory.parts.some((p) => /^ULD term \(its gradient chunk of 96 rows × V/.test(p.name))).toBe(true);

    const run = await engine.createRun(spec(ds));
    const c = run.data.crossTokens!;
    expect(run.data.topkRecords).toBe(60);
    expect(c.exact).toBeGreaterThan(0);
    expect(c.uld).toBeGreaterThan(0);
    expect(run.data.notes.join(' ')).toMatch(/across tokenizers: \d+% of the aligned answers' tokens learn the teacher's distribution exactly .* \d+% by ULD .* \d+% their label only/);
    expect(run.train.uldWeight).toBe(1);

    const ev: RunEvent[] = [];
    const paused = await engine.runRun(run.id, (e) => { ev.push(e); if (e.kind === 'step' && e.step === 3) void engine.pauseRun(run.id); });
    expect(paused.status).toBe('paused');
    expect((await engine.runRun(run.id, (e) => ev.push(e))).status).toBe('done');
    const steps = ev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps.every((s) => Number.isFinite(s.kd) && s.kd > 0 && Number.isFinite(s.uld!) && s.uld! > 0)).toBe(true);
    expect(steps.at(-1)!.uld!).toBeLessThan(steps[0]!.uld!);
    const report = await engine.evaluate({ runId: run.id });
    expect(Number.isFinite(report.loss!)).toBe(true);
  }, 600_000);
});
