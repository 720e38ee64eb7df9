// Shared by the engine-run GPU tests (runs.test.ts, runs-mixture.test.ts): counting records, the BPE tokenizer
// trained on them, the tiny teachers' config, and the app's engine over a fresh pair of fake-indexeddb stores.
import { IDBFactory } from 'fake-indexeddb';
import { createEngine } from '../../src/engine/engine.ts';
import { RunStore } from '../../src/engine/runs/run-store.ts';
import { makeConfig } from '../../src/model/config.ts';
import type { GpuContext } from '../../src/platform/gpu.ts';
import { openStore } from '../../src/store/store.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';

export const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
/** The records' provenance (a feature job of a local transformers.js teacher). */
export const prov = { teacher: { kind: 'transformers-js', model: 'tiny', baseURLHost: '' }, strategy: 'feature', params: {}, usage: { input: 1, output: 1 }, time: 1 };
/** `n` counting records: "Count from <w>" answered by the next three words "and so on". */
export const recordsOf = (n: number) => Array.from({ length: n }, (_, i) => ({
  user: `Count from ${WORDS[i % 10]}`,
  answer: ` ${WORDS[i % 10]} ${WORDS[(i + 1) % 10]} ${WORDS[(i + 2) % 10]} and so on.`,
}));
/** A BPE of 300 ids trained on the first ten records (end of text special). */
export const tok = trainBpe(recordsOf(10).flatMap((r) => [r.user, r.answer]), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
/** The tiny teachers' shape (1 layer, 32 wide) on `tok`. */
export const teacherConfig = makeConfig({ vocabSize: tok.vocabSize, hidden: 32, layers: 1, heads: 1, kvHeads: 1, headDim: 32, intermediate: 64, maxSeqLen: 64, initStd: 0.3 });

/** The app's engine training on `gpu`, its data and run stores fresh on fake-indexeddb (`<prefix>-data`, `<prefix>-runs`). */
export async function engineOnFakeStores(gpu: () => GpuContext, prefix: string) {
  const factory = new IDBFactory();
  const data = await openStore(`${prefix}-data`, factory);
  const runs = await RunStore.open(`${prefix}-runs`, factory);
  const engine = createEngine(async () => gpu(), { dataStore: async () => data, runStore: async () => runs });
  return { data, runs, engine };
}
