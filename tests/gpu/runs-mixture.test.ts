// Token-level KD from a weighted mixture of teachers in the app's engine (issue #23), on Dawn with fake-indexeddb:
// two tiny teachers that share the student's tokenizer but not their weights. A mixture of weights (1, 0) trains on
// the same losses as the single-teacher dense run; at (0.5, 0.5) the first step's KD loss is the CPU loss (float64
// reference forwards, the mixture summed directly, classifierLossRef) and a paused run resumes on the same losses
// from the teachers' files stored with it; evaluation reports KL, agreement and loss against the mixture (checked on
// the CPU) and against each teacher; training toward (0.9, 0.1) ends nearer the first teacher than toward (0.1, 0.9);
// on-policy steps score the student's samples with the mixture; planning refuses a mixture teacher with another tokenizer, naming it, and counts every teacher's memory.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.ts';
import { buildRunData } from '../../src/engine/runs/data.ts';
import type { EngineTeacher, RunEvent, RunInfo, RunSpec, RunStepLog, SpecOf } from '../../src/engine/runs/types.ts';
import { exportModel } from '../../src/export/index.ts';
import { classifierLossRef } from '../../src/kernels/loss/loss.ref.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { initParams, refForward } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { BatchLoader, evalBatches, type Batch } from '../../src/train/batches.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { mixedProbsRef } from '../../src/train/teacher-mixture.ts';
import { useGpu } from './gpu-context.ts';
import { engineOnFakeStores, prov, recordsOf, teacherConfig, tok } from './runs-fixture.ts';

const gpu = useGpu();
const teacherParams = [initParams(teacherConfig, 5), initParams(teacherConfig, 9)];
const folder = (params: Float32Array, tokenizer = tok): Record<string, Uint8Array> =>
  Object.fromEntries(exportModel({ config: { ...teacherConfig, vocabSize: tokenizer.vocabSize }, params, tokenizer }, 'safetensors').map((f) => [f.path, f.bytes]));
const teacherA: EngineTeacher = { label: 'teacher-a', source: { files: folder(teacherParams[0]!) } };
const teacherB: EngineTeacher = { label: 'teacher-b', source: { files: folder(teacherParams[1]!) } };
// Same shapes, another tokenizer (trained on other text): its ids are not the student's.
const otherTok = trainBpe(['the quick brown fox jumps over the lazy dog', 'pack my box with five dozen liquor jugs'], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
const otherTeacher: EngineTeacher = { label: 'other-tok', source: { files: folder(teacherParams[1]!, otherTok) } };

const B = 2, T = 16, HELD = 5, N_RECORDS = 30, TAU = 2;

async function setup() {
  const { data, runs, engine } = await engineOnFakeStores(gpu, 'mix');
  const ds = await data.createDataset({ name: 'counting' });
  await data.putRecords(ds.id, recordsOf(N_RECORDS).map((r, i) => ({
    key: `r${i}`, messages: [{ role: 'user' as const, content: r.user }, { role: 'assistant' as const, content: r.answer }], provenance: prov,
  })));
  // The run's rows as the engine builds them (same records, order, split and tokens).
  const built = await buildRunData(await data.getRecords(ds.id, { limit: 1000 }), [], { format: 'continuation', tok, eos: tok.tokenToId('<|endoftext|>')!, T, heldOutEvery: HELD });
  return { runs, engine, ds: ds.id, built };
}

const spec = (datasetId: string, name: string, over: Record<string, unknown> = {}, train: Record<string, unknown> = {}): RunSpec => ({
  name, datasetId, preset: 'nano', modelOverrides: { maxSeqLen: 64 }, tokenizer: { kind: 'teacher' }, format: 'continuation', method: 'kd', kdSource: 'dense',
  teacher: teacherA,
  train: { batchSize: B, seqLen: T, steps: 3, lr: 0.01, warmupSteps: 1, evalEvery: 0, evalBatches: 2, checkpointEvery: 1, seed: 3, objective: 'fkl', temperature: TAU, ...train },
  sampleEvery: 0, samplePrompts: [], heldOutEvery: HELD, ...over,
}) as RunSpec;
const mixture = (weights: number[]) => ({ mixture: { teachers: [teacherB], weights } });

const stepsOf = (events: RunEvent[]) => events.filter((e): e is RunStepLog => e.kind === 'step');

async function train(engine: ReturnType<typeof createEngine>, s: RunSpec): Promise<{ run: RunInfo; steps: RunStepLog[] }> {
  const run = await engine.createRun(s);
  const ev: RunEvent[] = [];
  expect((await engine.runRun(run.id, (e) => ev.push(e))).status).toBe('done');
  return { run, steps: stepsOf(ev) };
}

/** float64 logits (N, V) of a model on a batch. */
const logitsOf = (config: ModelConfig, params: Float32Array, b: Batch) => refForward(config, params, b.ids, B, T).logits;

/** The mixture's probabilities (N, Vr) at τ on a batch: the teachers' float64 forwards, summed directly. */
function mixtureRef(b: Batch, weights: number[], tau: number): Float64Array {
  const logits = teacherParams.map((p) => Float32Array.from(logitsOf(teacherConfig, p, b)));
  return mixedProbsRef({ logits, weights, N: B * T, V: teacherConfig.vocabSize, temperature: tau });
}

describe('KD from a mixture of teachers', () => {
  it('weights (1, 0) train like the single teacher; (0.5, 0.5) is the CPU loss of the mixture, resumes on the same losses, and evaluates against the mixture and each teacher', async () => {
    const { runs, engine, ds, built } = await setup();
    const single = await train(engine, spec(ds, 'single'));
    const oneZero = await train(engine, spec(ds, 'one-zero', mixture([1, 0])));
    expect(oneZero.steps).toHaveLength(3);
    for (const [i, s] of single.steps.entries()) {
      for (const k of ['loss', 'kd', 'ce'] as const) expect(Math.abs(oneZero.steps[i]![k] - s[k]), `step ${s.step} ${k}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(s[k])));
    }

    const half = await train(engine, spec(ds, 'half', mixture([1, 1])));
    // Step 1 on the CPU: the run's first batch, the student's initial weights, the teachers' mixture at τ.
    const model = half.run.model, V = model.vocabSize, Vr = tok.vocabSize;
    const batch = new BatchLoader(built.rows, B, T, 3).next();
    const p = mixtureRef(batch, [0.5, 0.5], TAU);
    const teacherLogits = new Float64Array(B * T * V);
    for (let n = 0; n < B * T; n++) for (let v = 0; v < Vr; v++) teacherLogits[n * V + v] = TAU * Math.log(p[n * Vr + v]!);
    const ref = classifierLossRef({
      N: B * T, V, realVocab: Vr, logits: logitsOf(model, initParams(model, 3), batch), labels: batch.labels, weights: batch.weights,
      teacher: { kind: 'dense', logits: teacherLogits }, objective: 'fkl', temperature: TAU, kdWeight: half.run.train.kdWeight, ceWeight: half.run.train.ceWeight, lossScale: 1,
    });
    const wsum = batch.weights.reduce((s, w) => s + w, 0);
    let kd = 0;
    for (let n = 0; n < B * T; n++) kd += ref.losses[2 * n]!;
    expect(Math.abs(half.steps[0]!.kd - kd / wsum) / (kd / wsum)).toBeLessThan(1e-4);
    // ... and not the loss of either teacher alone.
    expect(Math.abs(half.steps[0]!.kd - single.steps[0]!.kd)).toBeGreaterThan(1e-3);

    // The second teacher's picked files are stored with the run; a pause and a resume read them back.
    const twin = await engine.createRun(spec(ds, 'half-twin', mixture([1, 1])));
    const stored = (await engine.listRuns()).find((r) => r.id === twin.id)!;
    expect(stored.spec.mixture!.teachers[0]!.source).toEqual({ files: {} });
    const ev: RunEvent[] = [];
    expect((await engine.runRun(twin.id, (e) => { ev.push(e); if (e.kind === 'step' && e.step === 1) void engine.pauseRun(twin.id); })).status).toBe('paused');
    expect((await engine.runRun(twin.id, (e) => ev.push(e))).status).toBe('done');
    expect(stepsOf(ev).map((s) => [s.step, s.loss])).toEqual(half.steps.map((s) => [s.step, s.loss]));

    // Evaluation: against the mixture at τ = 1 and against each teacher, checked on the CPU from the checkpoint.
    const report = await engine.evaluate({ runId: half.run.id });
    expect(report.perTeacher!.map((t) => [t.label, t.weight])).toEqual([['teacher-a', 0.5], ['teacher-b', 0.5]]);
    expect(report.teacher!.label).toBe('mixture of teacher-a 0.5, teacher-b 0.5');
    expect(report.notes.join(' ')).toMatch(/KL, agreement and the teacher's perplexity are against the mixture of teacher-a 0.5, teacher-b 0.5/);
    const params = decodeCheckpoint((await runs.checkpoints(half.run.id).get('latest'))!).params;
    const want = { mix: 0, each: [0, 0] as [number, number], rows: 0 };
    for (const b of evalBatches(built.evalRows, B, T, 2, true)) {
      const s = logitsOf(model, params, b);
      const dists = [mixtureRef(b, [0.5, 0.5], 1), mixtureRef(b, [1, 0], 1), mixtureRef(b, [0, 1], 1)];
      for (let n = 0; n < B * T; n++) {
        if (!(b.weights[n]! > 0)) continue;
        let max = -Infinity, sum = 0;
        for (let v = 0; v < Vr; v++) max = Math.max(max, s[n * V + v]!);
        for (let v = 0; v < Vr; v++) sum += Math.exp(s[n * V + v]! - max);
        const klOf = (d: Float64Array) => { let k = 0; for (let v = 0; v < Vr; v++) { const q = d[n * Vr + v]!; if (q > 0) k += q * (Math.log(q) - (s[n * V + v]! - max - Math.log(sum))); } return k; };
        want.mix += klOf(dists[0]!);
        want.each[0] += klOf(dists[1]!);
        want.each[1] += klOf(dists[2]!);
        want.rows++;
      }
    }
    expect(want.rows).toBeGreaterThan(0);
    expect(report.klToTeacher! / (want.mix / want.rows)).toBeCloseTo(1, 4);
    for (const i of [0, 1]) expect(report.perTeacher![i]!.klToTeacher / (want.each[i]! / want.rows)).toBeCloseTo(1, 4);
    // KL is convex in the teacher: the mixture's is at most the weighted mean of the teachers'.
    expect(report.klToTeacher!).toBeLessThanOrEqual(0.5 * report.perTeacher![0]!.klToTeacher + 0.5 * report.perTeacher![1]!.klToTeacher);
    expect(report.perTeacher!.every((t) => t.loss > 0 && t.ppl === Math.exp(t.loss) && t.top1Agreement >= 0 && t.top1Agreement <= 1)).toBe(true);
    // An export's training.json names the mixture's teachers and weights (no files) and holds this evaluation.
    const exp = await engine.exportModel({ source: { runId: half.run.id }, format: 'safetensors', name: 'half' });
    const record = JSON.parse(new TextDecoder().decode(exp.files.find((f) => f.path === 'training.json')!.bytes));
    expect(record.run.mixture).toEqual({ teachers: [{ label: 'teacher-b' }], weights: [1, 1] });
    expect(record.heldOut.perTeacher.map((t: { label: string }) => t.label)).toEqual(['teacher-a', 'teacher-b']);
    // A single-teacher run's report is unchanged: no per-teacher rows.
    expect((await engine.evaluate({ runId: single.run.id })).perTeacher).toBeUndefined();
  }, 600_000);

  it('trained toward (0.9, 0.1) ends nearer the first teacher than toward (0.1, 0.9)', async () => {
    const { engine, ds } = await setup();
    const kl: number[][] = [];
    for (const w of [[0.9, 0.1], [0.1, 0.9]]) {
      const r = await train(engine, spec(ds, `mix ${w}`, mixture(w), { steps: 8, lr: 0.03, temperature: 1, kdWeight: 1, ceWeight: 0, checkpointEvery: 8 }));
      kl.push((await engine.evaluate({ runId: r.run.id })).perTeacher!.map((t) => t.klToTeacher));
    }
    console.log('KL to (teacher-a, teacher-b) after 8 steps: toward (0.9, 0.1)', kl[0], 'toward (0.1, 0.9)', kl[1]);
    expect(kl[0]![0]!).toBeLessThan(kl[1]![0]!);
    expect(kl[0]![1]!).toBeGreaterThan(kl[1]![1]!);
  }, 600_000);

  it('on-policy from a mixture: (1, 0) gives the single teacher\'s step losses, (0.5, 0.5) others', async () => {
    const { engine, ds } = await setup();
    const onPolicy = (name: string, over: Record<string, unknown> = {}): RunSpec => {
      const { kdSource: _k, ...s } = spec(ds, name, { method: 'on-policy', onPolicy: { lambda: 1, maxNewTokens: 4, temperature: 1 }, ...over }, { steps: 2, objective: 'jsd', beta: 0.5 }) as SpecOf<'kd'>;
      return s as unknown as RunSpec;
    };
    const single = await train(engine, onPolicy('op single'));
    const oneZero = await train(engine, onPolicy('op one-zero', mixture([1, 0])));
    const half = await train(engine, onPolicy('op half', mixture([1, 1])));
    expect(single.steps.map((s) => s.onPolicy)).toEqual([true, true]);
    for (const [i, s] of single.steps.entries()) expect(Math.abs(oneZero.steps[i]!.loss - s.loss), `step ${s.step}`).toBeLessThanOrEqual(1e-6 * Math.max(1, s.loss));
    expect(half.steps.every((s) => Number.isFinite(s.loss) && s.kd > 0)).toBe(true);
    // The first step samples the same tokens (the same student and seed): only the teachers' mixture differs.
    expect(Math.abs(half.steps[0]!.kd - single.steps[0]!.kd)).toBeGreaterThan(1e-4);
  }, 600_000);

  it('planning refuses a mixture teacher with another tokenizer, naming it, and counts every teacher in the memory', async () => {
    const { engine, ds } = await setup();
    const ok = await engine.planRun(spec(ds, 'ok', mixture([1, 1])));
    expect(ok.ok, ok.problems.join('; ')).toBe(true);
    expect(ok.memory.parts.map((p) => p.name)).toEqual(expect.arrayContaining(['teacher model (weights and forward buffers)', 'mixture teacher 2 (weights and forward buffers)']));
    const bad = await engine.planRun(spec(ds, 'bad', { mixture: { teachers: [teacherB, otherTeacher], weights: [1, 1, 1] } }));
    expect(bad.ok).toBe(false);
    expect(bad.problems.join(' ')).toMatch(/the mixture teacher other-tok: token-level KD is unavailable: the teacher's tokens are not the student's/);
    expect(bad.problems.join(' ')).not.toMatch(/teacher-b/);
    await expect(engine.createRun(spec(ds, 'bad', { mixture: { teachers: [otherTeacher], weights: [1, 1] } }))).rejects.toThrow(/the mixture teacher other-tok/);
    await expect(engine.createRun(spec(ds, 'topk', { kdSource: 'store-topk', ...mixture([1, 1]) }))).rejects.toThrow(/mixture: a teacher mixture is for token-level KD from the teachers' dense logits/);
  }, 120_000);
});
