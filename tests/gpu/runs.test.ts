// Training runs of the app's engine (src/engine/runs/) on Dawn, with the app's two IndexedDB stores on
// fake-indexeddb: a run is created from a dataset (its ids snapshotted, the teacher's tokenizer), trains, pauses
// and resumes ON THE SAME LOSS CURVE as an uninterrupted twin, evaluates, and exports an ONNX file that
// onnxruntime runs to the same held-out loss. KD from the store's top-k rows (misaligned records left out and
// counted), dense-logit KD from a teacher folder (KL to the teacher falls), DPO from an SFT run (the pair loss
// falls), on-policy steps, generation and student samples.
import 'fake-indexeddb/auto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildRunData } from '../../src/engine/runs/data.ts';
import type { RunEvent, RunSpec, RunStepLog } from '../../src/engine/runs/types.ts';
import { exportModel } from '../../src/export/index.ts';
import { paddedVocab, realVocab } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import type { DistillStore } from '../../src/store/store.ts';
import { encodeTopK, packTopKRows } from '../../src/store/topk.ts';
import { BpeTokenizer } from '../../src/tokenizer/bpe.ts';
import { evalBatches } from '../../src/train/batches.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { logSoftmaxRow } from '../../src/util/logsoftmax.ts';
import { useGpu } from './gpu-context.ts';
import { engineOnFakeStores, prov, recordsOf, teacherConfig, tok } from './runs-fixture.ts';

const gpu = useGpu();
const teacherFiles = Object.fromEntries(exportModel({ config: teacherConfig, params: initParams(teacherConfig, 5), tokenizer: tok }, 'safetensors').map((f) => [f.path, f.bytes]));
const teacher = { label: 'tiny-teacher', source: { files: teacherFiles } };

const setup = () => engineOnFakeStores(gpu, 'test');

/** A dataset of counting records; with `topk`, each answer carries top-k rows (one misaligned record on purpose). */
async function dataset(data: DistillStore, n: number, topk = false): Promise<string> {
  const ds = await data.createDataset({ name: 'counting' });
  const vocab: string[] = [], index = new Map<string, number>();
  const idOf = (s: string) => { let i = index.get(s); if (i === undefined) { i = vocab.length; vocab.push(s); index.set(s, i); } return i; };
  const records = recordsOf(n).map((r, i) => {
    const ids = tok.encode(r.answer);
    const rows = ids.map((id, j) => {
      const alt = [id, (id + 1 + j) % tok.vocabSize, (id + 7) % tok.vocabSize].filter((x, k, a) => a.indexOf(x) === k);
      return encodeTopK(Uint32Array.from(alt, (x) => idOf(tok.decode([x]))), Float32Array.from(alt, (_, k) => [-0.2, -2.5, -3][k]!), 3);
    });
    const bad = i === 3; // one row short: must be left out, not trained on misaligned ids
    const kept = bad ? rows.slice(1) : rows;
    return {
      key: `r${i}`, messages: [{ role: 'user' as const, content: r.user }, { role: 'assistant' as const, content: r.answer }], provenance: prov,
      ...(topk ? { topk: [{ turn: 1, rows: packTopKRows(kept), tokens: kept.length }] } : {}),
    };
  });
  if (topk) {
    const job = await data.createJob({ kind: 'elicit:feature', datasetId: ds.id, config: {} });
    await data.updateJob(job.id, { cursor: { next: n, vocab }, status: 'done' }, { records });
  } else await data.putRecords(ds.id, records);
  return ds.id;
}

const spec = (datasetId: string, over: Record<string, unknown> = {}): RunSpec => ({
  name: 'test', datasetId, preset: 'nano', modelOverrides: { maxSeqLen: 64 }, tokenizer: { kind: 'teacher' }, format: 'continuation', method: 'sft',
  teacher, train: { batchSize: 4, seqLen: 24, steps: 6, lr: 0.01, warmupSteps: 1, evalEvery: 3, evalBatches: 2, checkpointEvery: 2, seed: 3 },
  sampleEvery: 0, samplePrompts: ['Count from two'], heldOutEvery: 5, ...over,
}) as RunSpec;

const losses = (events: RunEvent[]) => events.filter((e): e is RunStepLog => e.kind === 'step').map((e) => [e.step, e.loss] as const);

describe('training runs in the engine', () => {
  it('pauses and resumes on the same loss curve as an uninterrupted run; evaluates; its ONNX export gives the same held-out loss', async () => {
    const { data, engine } = await setup();
    const ds = await dataset(data, 60);
    const plan = await engine.planRun(spec(ds));
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    // The teacher's tokenizer, padded to the kernels' multiple (the padding is masked out of the loss, cut on export).
    expect(plan.model.vocabSize).toBe(paddedVocab(tok.vocabSize).vocabSize);
    expect(realVocab(plan.model)).toBe(tok.vocabSize);
    expect(plan.memory.bytes).toBeGreaterThan(4 * 4 * plan.params);

    const a = await engine.createRun(spec(ds, { name: 'a' }));
    expect(a.data.trainRecords).toBe(48);
    expect(a.data.heldOutRecords).toBe(12);
    const aEvents: RunEvent[] = [];
    expect((await engine.runRun(a.id, (e) => aEvents.push(e))).status).toBe('done');

    const b = await engine.createRun(spec(ds, { name: 'b' }));
    const bEvents: RunEvent[] = [];
    const paused = await engine.runRun(b.id, (e) => { bEvents.push(e); if (e.kind === 'step' && e.step === 3) void engine.pauseRun(b.id); });
    expect(paused.status).toBe('paused');
    expect(paused.checkpointStep).toBe(3);
    const resumed = await engine.runRun(b.id, (e) => bEvents.push(e));
    expect(resumed.status).toBe('done');
    expect(losses(bEvents)).toEqual(losses(aEvents));
    expect(losses(aEvents)).toHaveLength(6);
    const history = await engine.runHistory(b.id);
    expect(history.logs.filter((l) => l.kind === 'step').map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(history.logs.some((l) => l.kind === 'event' && /resumed from the checkpoint of step 3/.test(l.message))).toBe(true);

    const report = await engine.evaluate({ runId: a.id });
    expect(report.step).toBe(6);
    expect(report.ppl).toBeCloseTo(Math.exp(report.loss!), 6);
    expect(report.teacher?.label).toBe('tiny-teacher');
    expect(report.klToTeacher).toBeGreaterThan(0);
    expect(report.top1Agreement).toBeGreaterThanOrEqual(0);

    // What each GGUF format costs: F32 is the Evaluate stage's figure; sizes are the exported files'.
    const cmp = await engine.compareFormats(a.id);
    expect(cmp.rows.map((r) => r.dtype)).toEqual(['F32', 'F16', 'Q8_0', 'Q4_K_M', 'Q4_0']);
    expect(cmp.tokens).toBe(report.tokens);
    expect(cmp.rows[0]!.loss).toBeCloseTo(report.loss!, 9);
    expect(Math.abs(cmp.rows[2]!.pplChangePct!)).toBeLessThan(1);
    expect(cmp.rows[4]!.ppl).not.toBe(cmp.rows[0]!.ppl);
    const sizes = cmp.rows.map((r) => r.bytes);
    expect([sizes[0]! > sizes[1]!, sizes[1]! > sizes[2]!, sizes[2]! > sizes[4]!]).toEqual([true, true, true]);
    for (const r of [cmp.rows[1]!, cmp.rows[4]!]) {
      const f = await engine.exportModel({ source: { runId: a.id }, format: r.format, name: 'x' });
      expect(f.files.find((x) => x.path === 'model.gguf')!.bytes.length, r.format).toBe(r.bytes);
    }
    console.log('formats:', cmp.rows.map((r) => `${r.dtype} ${r.bytes} B ppl ${r.ppl?.toFixed(3)} (${r.pplChangePct?.toFixed(2)}%)`).join('; '));

    // Independent check: onnxruntime on the exported ONNX, the same held-out batches, the same cross-entropy.
    const exp = await engine.exportModel({ source: { runId: a.id }, format: 'onnx', name: 'a-onnx' });
    const file = (p: string) => exp.files.find((f) => f.path === p)!.bytes;
    const record = JSON.parse(new TextDecoder().decode(file('training.json')));
    expect(record.heldOut.loss).toBeCloseTo(report.loss!, 6);
    const session = await ort.InferenceSession.create(file('onnx/model.onnx'));
    const exportedTok = BpeTokenizer.fromJSON(JSON.parse(new TextDecoder().decode(file('tokenizer.json'))));
    const recs = await data.getRecords(ds, { limit: 1000 });
    const built = await buildRunData(recs, [], { format: 'continuation', tok: exportedTok, eos: exportedTok.tokenToId('<|endoftext|>')!, T: 24, heldOutEvery: 5 });
    let sum = 0, count = 0;
    for (const batch of evalBatches(built.evalRows, 4, 24, 2, true)) {
      for (let r = 0; r < 4; r++) {
        const ids = batch.ids.subarray(r * 24, (r + 1) * 24);
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, 24]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(24).fill(1n), [1, 24]),
          position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: 24 }, (_, i) => BigInt(i)), [1, 24]),
        };
        for (let l = 0; l < plan.model.layers; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, plan.model.kvHeads, 0, plan.model.headDim]);
        const logits = (await session.run(feeds)).logits!.data as Float32Array;
        // The export cuts the vocabulary padding: rows of the tokenizer's real width.
        const Vr = realVocab(plan.model);
        expect(logits.length).toBe(24 * Vr);
        const lp = new Float32Array(Vr);
        for (let t = 0; t < 24; t++) {
          if (batch.weights[r * 24 + t] === 0) continue;
          logSoftmaxRow(logits, t * Vr, Vr, lp);
          sum -= lp[batch.labels[r * 24 + t]!]!;
          count++;
        }
      }
    }
    expect(count).toBe(report.tokens);
    expect(Math.abs(sum / count - report.loss!)).toBeLessThan(1e-3);

    const g = await engine.generate({ model: { runId: a.id }, prompt: 'Count from two', maxNewTokens: 8, temperature: 0 });
    expect(g.promptIds).toEqual(tok.encode('Count from two'));
    expect(g.ids.length).toBeGreaterThan(0);
    expect(g.ids.length).toBeLessThanOrEqual(8);
    expect(g.text).toBe(tok.decode(g.ids));
    const s = await engine.sampleStudent(a.id, 'Count from two', 3, { maxNewTokens: 6, temperature: 1, seed: 9 });
    expect(s).toHaveLength(3);
    expect(await engine.listRuns()).toHaveLength(2);
    await engine.deleteRun(b.id);
    expect((await engine.listRuns()).map((r) => r.id)).toEqual([a.id]);
  }, 600_000);

  it('KD from the stored top-k: aligned records train, a misaligned one is left out and counted; dense KD lowers the KL to the teacher', async () => {
    const { data, engine } = await setup();
    const ds = await dataset(data, 60, true);
    const run = await engine.createRun(spec(ds, { method: 'kd', kdSource: 'store-topk', train: { ...spec(ds).train, steps: 4, objective: 'fkl', kdWeight: 1, ceWeight: 0 } }));
    expect(run.data.topkRecords).toBe(59);
    expect(run.data.topkSkipped).toBe(1);
    expect(run.data.notes.join(' ')).toMatch(/left out of KD training: N teacher rows for N answer tokens/);
    const ev: RunEvent[] = [];
    expect((await engine.runRun(run.id, (e) => ev.push(e))).status).toBe('done');
    const steps = ev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(steps.every((s) => Number.isFinite(s.kd) && s.kd > 0 && s.ce === s.ce)).toBe(true);
    expect(steps.at(-1)!.kd).toBeLessThan(steps[0]!.kd);

    // Dense KD pulls the student toward the teacher's distributions: its KL to the teacher ends below its SFT twin's.
    const twin = { ...spec(ds).train, steps: 6, lr: 0.03, evalEvery: 3 };
    const dense = await engine.createRun(spec(ds, { name: 'dense', method: 'kd', kdSource: 'dense', train: { ...twin, objective: 'fkl', kdWeight: 1, ceWeight: 0 } }));
    const sft = await engine.createRun(spec(ds, { name: 'sft', train: twin }));
    const kdEvals: number[] = [];
    for (const r of [dense, sft]) {
      const ev: RunEvent[] = [];
      expect((await engine.runRun(r.id, (e) => ev.push(e))).status).toBe('done');
      if (r === dense) kdEvals.push(...ev.filter((e) => e.kind === 'eval').map((e) => (e as { klToTeacher: number }).klToTeacher));
    }
    expect(kdEvals).toHaveLength(2);
    expect(kdEvals[1]!).toBeLessThan(kdEvals[0]!);
    const [kdKl, sftKl] = [(await engine.evaluate({ runId: dense.id })).klToTeacher!, (await engine.evaluate({ runId: sft.id })).klToTeacher!];
    expect(kdKl).toBeCloseTo(kdEvals[1]!, 5); // the Evaluate stage's figure is the training-time evaluation's
    expect(kdKl).toBeLessThan(sftKl * 0.8);
  }, 600_000);

  it('DPO from an SFT run lowers the pair loss; on-policy steps train on the student\'s samples', async () => {
    const { data, runs, engine } = await setup();
    const ds = await dataset(data, 30);
    const sft = await engine.createRun(spec(ds, { name: 'sft', train: { ...spec(ds).train, steps: 4 } }));
    await engine.runRun(sft.id);
    await data.putPairs(ds, recordsOf(25).map((r, i) => ({
      key: `p${i}`, prompt: [{ role: 'user' as const, content: r.user }], chosen: r.answer, rejected: ' no no no no.', provenance: prov,
    })));
    const dpo = await engine.createRun(spec(ds, { name: 'dpo', method: 'dpo', pairBeta: 0.5, initFrom: sft.id, train: { ...spec(ds).train, steps: 4, lr: 0.01, batchSize: 2 } }));
    expect(dpo.data.trainPairs).toBe(20);
    const ev: RunEvent[] = [];
    expect((await engine.runRun(dpo.id, (e) => ev.push(e))).status).toBe('done');
    const steps = ev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(steps[0]!.loss).toBeCloseTo(Math.log(2), 5); // policy = reference at the start: margin 0
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    expect(steps.at(-1)!.pairAccuracy).toBeGreaterThan(0.5);
    expect((await engine.evaluate({ runId: dpo.id })).pairAccuracy).toBeGreaterThanOrEqual(0.5);
    // The frozen reference is stored once as the SFT run's weights, without moments (it never trains).
    const ref = decodeCheckpoint((await runs.checkpoints(dpo.id).get('reference'))!);
    const sftWeights = decodeCheckpoint((await runs.checkpoints(sft.id).get('latest'))!).params;
    expect([ref.m.length, ref.v.length]).toEqual([0, 0]);
    expect(ref.params).toEqual(sftWeights);

    const op = await engine.createRun(spec(ds, { name: 'op', method: 'on-policy', onPolicy: { lambda: 1, maxNewTokens: 4, temperature: 1 }, train: { ...spec(ds).train, steps: 2, batchSize: 2, objective: 'jsd', beta: 0.5 } }));
    const oev: RunEvent[] = [];
    expect((await engine.runRun(op.id, (e) => oev.push(e))).status).toBe('done');
    const os = oev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(os.map((s) => s.onPolicy)).toEqual([true, true]);
    expect(os.every((s) => Number.isFinite(s.loss) && s.kd > 0 && s.ce >= 0)).toBe(true);
  }, 600_000);

  it('refuses what cannot work, saying what to change', async () => {
    const { data, engine } = await setup();
    const ds = await dataset(data, 8);
    const plan = await engine.planRun(spec(ds, { method: 'dpo', pairBeta: 0.1 }));
    expect(plan.ok).toBe(false);
    expect(plan.problems.join(' ')).toMatch(/preference pairs and this dataset has 0: make some with the feedback strategy/);
    await expect(engine.createRun(spec(ds, { method: 'kd', kdSource: 'store-topk' }))).rejects.toThrow(/no teacher top-k rows/);
    await expect(engine.createRun(spec(ds, { method: 'kd', kdSource: 'dense', tokenizer: { kind: 'bpe', vocabSize: 300 } }))).rejects.toThrow(/token-level KD is unavailable: a new BPE's tokens are not the teacher's.*SeqKD/);
    await expect(engine.createRun(spec(ds, { train: { ...spec(ds).train, batchSize: 16 } }))).rejects.toThrow(/not enough data: \d+ rows of 25 tokens for a batch of 16/);
    await expect(engine.createRun(spec(ds, { preset: 'huge' }))).rejects.toThrow(/unknown student preset 'huge'/);
  }, 120_000);
});
