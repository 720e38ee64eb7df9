// A pretrained student in the app's engine: a run whose `pretrained` folder (here the trained 0.65M Brown teacher
// fixture, an HF Llama folder) gives the student's architecture, starting weights and tokenizer. Proven against
// the folder itself: the run's model config is the folder's, its held-out loss before any real update equals
// the folder's own weights' held-out loss on the same batches (and is far below a random student's), dense KD
// from the same folder as teacher starts at KL 0, the export names its base model, and a run created from a
// folder whose config.json then changes refuses to start on other weights.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { readFolder } from '../../src/cli/export.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { buildRunData } from '../../src/engine/runs/data.ts';
import { RunStore } from '../../src/engine/runs/run-store.ts';
import type { RunEvent, RunSpec, RunStepLog } from '../../src/engine/runs/types.ts';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { readSafetensors, writeSafetensors } from '../../src/export/safetensors.ts';
import { makeConfig } from '../../src/model/config.ts';
import { paramLayout } from '../../src/model/params.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { openStore } from '../../src/store/store.ts';
import { evalBatches } from '../../src/train/batches.ts';
import { evaluateHeldOut } from '../../src/train/evaluate.ts';
import { CE_ONLY } from '../../src/train/step-trainer.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const folder = Object.fromEntries(readFolder('tests/fixtures/brown-teacher-small'));
const base = importHfFolder(new Map(Object.entries(folder)), 'fixture');
const model = { label: 'brown-teacher-small', source: { files: folder } };
const prov = { teacher: { kind: 'transformers-js', model: 'brown', baseURLHost: '' }, strategy: 'labeling', params: {}, usage: { input: 1, output: 1 }, time: 1 };
const TEXTS = [
  ['The history of the city', ' is the history of its people, who came from the farms and the hills to work in the mills.'],
  ['In the morning the farmers', ' went out to the fields before the sun was up, and they did not come back until dark.'],
  ['The committee said that', ' the new law would be passed by the end of the year if the governor agreed to sign it.'],
  ['He told the jury', ' that there was no evidence of any kind that the money had been taken from the bank.'],
];

async function setup() {
  const factory = new IDBFactory();
  const data = await openStore('pre-data', factory);
  const runs = await RunStore.open('pre-runs', factory);
  const engine = createEngine(async () => gpu(), { dataStore: async () => data, runStore: async () => runs });
  const ds = await data.createDataset({ name: 'brown lines' });
  await data.putRecords(ds.id, Array.from({ length: 12 }, (_, i) => {
    const [u, a] = TEXTS[i % TEXTS.length]!;
    return { key: `r${i}`, messages: [{ role: 'user' as const, content: `${u}` }, { role: 'assistant' as const, content: `${a}${i}` }], provenance: prov };
  }));
  return { data, runs, engine, ds: ds.id };
}

const spec = (datasetId: string, over: Record<string, unknown> = {}): RunSpec => ({
  name: 'pre', datasetId, preset: 'nano', tokenizer: { kind: 'bpe', vocabSize: 300 }, format: 'continuation', method: 'sft', pretrained: model,
  train: { batchSize: 2, seqLen: 24, steps: 1, lr: 1e-12, warmupSteps: 0, evalEvery: 1, evalBatches: 2, checkpointEvery: 1, seed: 3 },
  sampleEvery: 0, samplePrompts: [], heldOutEvery: 3, ...over,
}) as RunSpec;

describe('a pretrained student (an HF Llama folder) in the app engine', () => {
  it('starts from the folder’s weights, architecture and tokenizer; KD from the same folder starts at KL 0; the export names the base', async () => {
    const { data, engine, ds } = await setup();
    const plan = await engine.planRun(spec(ds));
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    expect(plan.model).toEqual(base.config);

    const run = await engine.createRun(spec(ds));
    expect(run.model).toEqual(base.config);
    expect(run.tokenizerVocab).toBe(base.textTokenizer!.vocabSize);
    const events: RunEvent[] = [];
    expect((await engine.runRun(run.id, (e) => events.push(e))).status).toBe('done');
    expect(events.some((e) => e.kind === 'event' && e.code === 'started' && /pretrained model brown-teacher-small/.test(e.message))).toBe(true);

    // The run's held-out loss (lr 1e-12: the weights are the folder's) = the folder's weights on the same batches.
    const report = await engine.evaluate({ runId: run.id });
    const recs = await data.getRecords(ds, { limit: 100 });
    const tok = base.textTokenizer!;
    const built = await buildRunData(recs, [], { format: 'continuation', tok, eos: tok.tokenToId('<|endoftext|>')!, T: 24, heldOutEvery: 3 });
    const g = new GpuModel(gpu().device, base.config, 2, 24, CE_ONLY);
    g.uploadParams(base.params);
    const direct = (await evaluateHeldOut(g, evalBatches(built.evalRows, 2, 24, 2, true)))!;
    g.destroy();
    expect(report.tokens).toBe(direct.tokens);
    expect(Math.abs(report.loss! - direct.loss)).toBeLessThan(1e-4);
    // A random model of this vocabulary is at about ln 1024 = 6.93 nats; the folder's weights are far below.
    expect(report.loss!).toBeLessThan(Math.log(1024) - 1.5);

    // Dense KD from the same folder: the student is the teacher at step 1, so the KL term is 0 (tokenizers aligned).
    const kd = await engine.createRun(spec(ds, { name: 'kd', method: 'kd', kdSource: 'dense', teacher: model, train: { ...spec(ds).train, objective: 'fkl', kdWeight: 1, ceWeight: 0 } }));
    const kdEvents: RunEvent[] = [];
    await engine.runRun(kd.id, (e) => kdEvents.push(e));
    const first = kdEvents.find((e): e is RunStepLog => e.kind === 'step')!;
    expect(Math.abs(first.kd)).toBeLessThan(1e-5);

    const exp = await engine.exportModel({ source: { runId: run.id }, format: 'safetensors', name: 'pre' });
    const record = JSON.parse(new TextDecoder().decode(exp.files.find((f) => f.path === 'training.json')!.bytes));
    expect(record.baseModel).toBe('brown-teacher-small');
    expect(record.run.pretrained).toEqual({ label: 'brown-teacher-small' });
    const cfg = JSON.parse(new TextDecoder().decode(exp.files.find((f) => f.path === 'config.json')!.bytes));
    expect([cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads]).toEqual([1024, 128, 3, 4]);
  }, 600_000);

  it('a Qwen2 folder (the fixture under Qwen2ForCausalLM, with q/k/v biases): the run keeps the family, KD from it starts at KL 0, the export is Qwen2 (#20)', async () => {
    const { engine, ds } = await setup();
    const config = makeConfig({ ...base.config, attentionBias: true });
    const params = new Float32Array(paramLayout(config).slabFloats);
    const from = paramLayout(base.config);
    for (const e of paramLayout(config).entries) {
      const src = from.byName.get(e.name);
      if (src) params.set(base.params.subarray(src.offset, src.offset + src.size), e.offset);
      else for (let i = 0; i < e.size; i++) params[e.offset + i] = 0.05 * Math.sin(3 * i + e.offset);
    }
    const files = Object.fromEntries(exportHfFolder({ config, params, tokenizer: base.textTokenizer!, eosToken: '<|endoftext|>' }).map((f) => [f.path, f.bytes]));
    const qwen = { label: 'brown-qwen2', source: { files } };
    const plan = await engine.planRun(spec(ds, { name: 'qwen', pretrained: qwen }));
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    expect(plan.model).toEqual(config);
    const kd = await engine.createRun(spec(ds, { name: 'qwen-kd', pretrained: qwen, method: 'kd', kdSource: 'dense', teacher: qwen, train: { ...spec(ds).train, objective: 'fkl', kdWeight: 1, ceWeight: 0 } }));
    const events: RunEvent[] = [];
    expect((await engine.runRun(kd.id, (e) => events.push(e))).status).toBe('done');
    const first = events.find((e): e is RunStepLog => e.kind === 'step')!;
    expect(Math.abs(first.kd)).toBeLessThan(1e-5);
    const exp = await engine.exportModel({ source: { runId: kd.id }, format: 'safetensors', name: 'qwen' });
    const cfg = JSON.parse(new TextDecoder().decode(exp.files.find((f) => f.path === 'config.json')!.bytes));
    expect([cfg.architectures, cfg.model_type]).toEqual([['Qwen2ForCausalLM'], 'qwen2']);
    const back = importHfFolder(new Map(exp.files.map((f) => [f.path, f.bytes])), 'export');
    expect(back.config.attentionBias).toBe(true);
    const bq = paramLayout(config).byName.get('layers.0.bq')!;
    expect(Array.from(back.params.subarray(bq.offset, bq.offset + bq.size))).not.toEqual(new Array(bq.size).fill(0));
  }, 600_000);

  it('LoRA on a bf16 folder: the base read tensor by tensor in 16 bits; evaluated and sampled as base + adapters; adapters and merged model exported; a start run refused (#21)', async () => {
    const { data, engine, ds } = await setup();
    // The fixture as the Hub ships most models: weights in bf16.
    const st = readSafetensors(folder['model.safetensors']!, 'fixture');
    const bf16 = { ...folder, 'model.safetensors': writeSafetensors([...st.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })), { dtype: 'BF16', metadata: st.metadata }) };
    const rounded = importHfFolder(new Map(Object.entries(bf16)), 'bf16 fixture');
    const pretrained = { label: 'brown-bf16', source: { files: bf16 } };
    const lora = { rank: 4, alpha: 8, targets: ['wq', 'wv', 'w_up'], dropout: 0, base: 'bf16' };
    const loraSpec = spec(ds, { name: 'lora', pretrained, train: { ...spec(ds).train, steps: 2, lora } });
    const plan = await engine.planRun(loraSpec);
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    const { heads, kvHeads, headDim, hidden: C, intermediate: F, layers } = base.config;
    expect(plan.lora!.trainedParams).toBe(layers * (4 * C + heads * headDim * 4 + 4 * C + kvHeads * headDim * 4 + 4 * C + F * 4));
    expect(plan.memory.parts.find((p) => /^weights \(frozen base, linears in bf16\)/.test(p.name))).toBeDefined();
    const run = await engine.createRun(loraSpec);
    expect((await engine.runRun(run.id)).status).toBe('done');
    // lr 1e-12 and B = 0 at the start: the model is the bf16 folder itself, evaluated as base + adapters.
    const report = await engine.evaluate({ runId: run.id });
    const tok = rounded.textTokenizer!;
    const built = await buildRunData(await data.getRecords(ds, { limit: 100 }), [], { format: 'continuation', tok, eos: tok.tokenToId('<|endoftext|>')!, T: 24, heldOutEvery: 3 });
    const g = new GpuModel(gpu().device, rounded.config, 2, 24, CE_ONLY);
    g.uploadParams(rounded.params);
    const direct = (await evaluateHeldOut(g, evalBatches(built.evalRows, 2, 24, 2, true)))!;
    g.destroy();
    expect(Math.abs(report.loss! - direct.loss)).toBeLessThan(1e-4);
    const sample = await engine.generate({ model: { runId: run.id }, prompt: 'The history of the city', maxNewTokens: 6, temperature: 0 });
    expect(sample.ids.length).toBeGreaterThan(0);
    const adapter = await engine.exportModel({ source: { runId: run.id }, format: 'lora-peft', name: 'lora' });
    const cfg = JSON.parse(new TextDecoder().decode(adapter.files.find((f) => f.path === 'adapter_config.json')!.bytes));
    expect([cfg.r, cfg.lora_alpha, cfg.target_modules, cfg.base_model_name_or_path]).toEqual([4, 8, ['q_proj', 'v_proj', 'up_proj'], 'brown-bf16']);
    const merged = await engine.exportModel({ source: { runId: run.id }, format: 'safetensors', name: 'merged' });
    expect(merged.files.some((f) => f.path === 'model.safetensors')).toBe(true);
    // LoRA adapts a pretrained model: a start run is refused, and so is starting from a LoRA run.
    const fromRun = await engine.planRun(spec(ds, { name: 'x', pretrained: undefined, initFrom: run.id, train: { ...spec(ds).train, lora } }));
    expect(fromRun.problems.join(' ')).toMatch(/LoRA adapts a pretrained model picked as the student/);
    expect(fromRun.problems.join(' ')).toMatch(/trained LoRA adapters: to start from it, export its merged model/);
  }, 600_000);

  it('LoRA with DPO (the reference is the folder\'s base, adapters off: nothing stored) and with on-policy KD (#21)', async () => {
    const { data, runs, engine, ds } = await setup();
    await data.putPairs(ds, Array.from({ length: 12 }, (_, i) => {
      const [u, a] = TEXTS[i % TEXTS.length]!;
      return { key: `p${i}`, prompt: [{ role: 'user' as const, content: `${u}` }], chosen: `${a}${i}`, rejected: ' no no no no.', provenance: prov };
    }));
    const lora = { rank: 4, alpha: 8, targets: ['wq', 'wv', 'w_down'], dropout: 0, base: 'f32' };
    const dpo = await engine.createRun(spec(ds, { name: 'dpo', method: 'dpo', pairBeta: 0.5, train: { ...spec(ds).train, steps: 2, evalEvery: 2, lr: 0.01, lora } }));
    const ev: RunEvent[] = [];
    expect((await engine.runRun(dpo.id, (e) => ev.push(e))).status).toBe('done');
    const steps = ev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(steps[0]!.loss).toBeCloseTo(Math.log(2), 5); // B = 0: the policy is the reference at the start
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    expect(await runs.checkpoints(dpo.id).list()).not.toContain('reference'); // the base is the stored folder's: no copy
    expect((await engine.evaluate({ runId: dpo.id })).pairAccuracy).toBeGreaterThanOrEqual(0.5);

    const op = await engine.createRun(spec(ds, {
      name: 'op', method: 'on-policy', teacher: model, onPolicy: { lambda: 1, maxNewTokens: 4, temperature: 1 },
      train: { ...spec(ds).train, steps: 1, lr: 0.01, objective: 'jsd', beta: 0.5, lora },
    }));
    const oev: RunEvent[] = [];
    expect((await engine.runRun(op.id, (e) => oev.push(e))).status).toBe('done');
    const os = oev.filter((e): e is RunStepLog => e.kind === 'step');
    expect(os.map((s) => s.onPolicy)).toEqual([true]);
    // The student is the teacher's own weights with B = 0 at step 1: the JSD on its own samples starts at 0.
    expect(Math.abs(os[0]!.kd)).toBeLessThan(1e-5);
    expect(os.every((s) => Number.isFinite(s.loss))).toBe(true);
  }, 600_000);

  it('refuses a start run and a pretrained model at once, and a pretrained folder whose config changed since creation', async () => {
    const { runs, engine, ds } = await setup();
    await expect(engine.planRun(spec(ds, { initFrom: 'x' }))).rejects.toThrow(/a pretrained model or from another run, not both/);
    const run = await engine.createRun(spec(ds, { name: 'changing' }));
    // The picked files are stored with the run: training reads that copy. Change its config.json (same length).
    const text = new TextDecoder().decode(folder['config.json']!);
    const changed = new TextEncoder().encode(text.replace(/"rms_norm_eps": *0\.00001/, (m) => m.replace('0.00001', '0.00002')));
    expect(changed.length).toBe(folder['config.json']!.length);
    expect(new TextDecoder().decode(changed)).not.toBe(text);
    await runs.putBlob(`${run.id}:student:config.json`, changed, 'test');
    await expect(engine.runRun(run.id)).rejects.toThrow(/is not the one the run was created with/);
  }, 120_000);
});
