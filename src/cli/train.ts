// `npm run cli -- train --config <file.json> [--init HF_DIR] [--steps N] [--until N] [--resume] [--out DIR] [--autotune]`: trains a student on
// Dawn with the same engine the app runs, printing JSON lines (step, loss terms, tokens/s; evals; events).
// Config file: { "model": { "preset": "tiny-1m", ...overrides }, "train": { ...TrainConfig }, "tokenizer"?: "t.json",
//                "tokenizerConfig"?: "tokenizer_config.json", "data": { "source": "brown" } | { "files": [...] },
//                "heldOutEvery": 10 }
// "tokenizer" is any tokenizer.json transformers.js reads (a teacher's: Qwen, Llama-3, Gemma, ...; its
// tokenizer_config.json beside it is read too): the model's vocabulary is then the tokenizer's, padded to a multiple
// of 128 (masked out of the loss, dropped on export) unless the model section sets vocabSize itself.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { brownParagraphs } from '../data/brown-files.ts';
import { makeConfig, paddedVocab, presetConfig } from '../model/config.ts';
import type { GpuContext } from '../platform/gpu.ts';
import { trainBpe } from '../tokenizer/bpe.ts';
import type { TextTokenizer } from '../tokenizer/types.ts';
import { packRows, type Example } from '../train/batches.ts';
import { makeTrainConfig } from '../train/config.ts';
import { Trainer } from '../train/trainer.ts';
import { checkpointFromImport, importHfFolder } from '../export/import.ts';
import { readFolder, readJson, readTokenizerFiles, saveRunTokenizer } from './export.ts';
import { FileCheckpointStore } from './file-store.ts';

interface CliTrainFile {
  model?: Record<string, unknown> & { preset?: string };
  train?: Record<string, unknown>;
  data?: { source?: 'brown'; files?: string[] };
  heldOutEvery?: number;
  /** A tokenizer.json to use instead of training a BPE: the teacher's own, for logit-level KD on its distributions. */
  tokenizer?: string;
  /** Its tokenizer_config.json (default: the one beside it, if any). */
  tokenizerConfig?: string;
}

const TOP_KEYS = ['model', 'train', 'data', 'heldOutEvery', 'tokenizer', 'tokenizerConfig'];

/** Train and held-out paragraphs: the Brown corpus (every 10th file held out) or text files (every 10th paragraph). */
export function loadTexts(data: CliTrainFile['data'] = { source: 'brown' }, heldOutEvery = 10): { train: string[]; heldOut: string[] } {
  const train: string[] = [], heldOut: string[] = [];
  if (data.files?.length) {
    let i = 0;
    for (const f of data.files) {
      for (const p of readFileSync(f, 'utf8').split(/\n\s*\n/)) {
        const t = p.trim();
        if (t) (i++ % heldOutEvery === heldOutEvery - 1 ? heldOut : train).push(t);
      }
    }
  } else {
    train.push(...brownParagraphs('train', heldOutEvery));
    heldOut.push(...brownParagraphs('held-out', heldOutEvery));
  }
  if (train.length === 0 || heldOut.length === 0) throw new Error('train: the data gave no training or no held-out text');
  return { train, heldOut };
}

export async function trainCommand(args: string[], acquire: () => Promise<GpuContext>): Promise<number> {
  const get = (k: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : undefined; };
  const cfgPath = get('config');
  if (!cfgPath) throw new Error('train: --config <file.json> is required');
  const file = readJson(cfgPath, 'train: config') as CliTrainFile;
  const unknown = Object.keys(file).filter((k) => !TOP_KEYS.includes(k));
  if (unknown.length) throw new Error(`${cfgPath}: unknown key(s) ${unknown.join(', ')} (known: ${TOP_KEYS.join(', ')})`);
  // --init DIR: start from an HF Llama-style folder (ours exported, or a small checkpoint that fits): its config
  // replaces the config file's model section and its tokenizer.json replaces BPE training.
  const initDir = get('init');
  const init = initDir ? importHfFolder(readFolder(initDir), initDir) : undefined;
  if (init && !init.textTokenizer) throw new Error(`train --init ${initDir}: the folder has no usable tokenizer.json (${init.warnings.join('; ')})`);
  if (init && file.tokenizer) throw new Error(`${cfgPath}: "tokenizer" and --init both give a tokenizer: use one`);
  if (file.tokenizerConfig && !file.tokenizer) throw new Error(`${cfgPath}: "tokenizerConfig" needs "tokenizer"`);
  const tokConfigPath = file.tokenizerConfig ?? (file.tokenizer ? join(dirname(file.tokenizer), 'tokenizer_config.json') : undefined);
  const given = file.tokenizer ? readTokenizerFiles(file.tokenizer, tokConfigPath, 'train') : undefined;
  const { preset, ...modelOver } = file.model ?? {};
  // A given tokenizer sizes the vocabulary (padded for the kernels) unless the model section says vocabSize.
  if (given && modelOver.vocabSize === undefined) Object.assign(modelOver, paddedVocab(given.vocabSize));
  else if (given && typeof modelOver.vocabSize === 'number' && modelOver.vocabSize > given.vocabSize) modelOver.vocabPadding = modelOver.vocabSize - given.vocabSize;
  const model = init ? init.config : preset ? presetConfig(preset, modelOver) : makeConfig(modelOver, `${cfgPath} model`);
  const trainOver = { ...(file.train ?? {}) };
  if (get('steps')) trainOver.steps = Number(get('steps'));
  const train = makeTrainConfig(trainOver, `${cfgPath} train`);
  const out = get('out') ?? 'runs/latest';

  const t0 = performance.now();
  const texts = loadTexts(file.data, file.heldOutEvery ?? 10);
  if (given && given.vocabSize > model.vocabSize) {
    throw new Error(`${cfgPath}: the tokenizer ${file.tokenizer} has ${given.vocabSize} tokens, model.vocabSize is ${model.vocabSize}: raise vocabSize`);
  }
  const tok: TextTokenizer = init?.textTokenizer ?? given ?? trainBpe(texts.train, { vocabSize: model.vocabSize, specialTokens: ['<|endoftext|>'] });
  const eosName = init?.special.eosToken ?? tok.namedSpecial?.eos ?? '<|endoftext|>';
  const eos = tok.tokenToId(eosName);
  if (eos === undefined) throw new Error(`train: the tokenizer has no end-of-text token '${eosName}' to separate packed texts`);
  // The tokenizer is part of the run: saved beside the checkpoint so exports and generation use the same ids.
  mkdirSync(out, { recursive: true });
  saveRunTokenizer(out, tok);
  // Each text as the tokenizer encodes it with its post-processor (e.g. Gemma's <bos> first).
  const toExamples = (ps: string[]): Example[] => ps.map((p) => ({ tokens: Uint32Array.from([...tok.prefixIds, ...tok.encode(p)]) }));
  const rows = packRows(toExamples(texts.train), train.seqLen, eos);
  const evalRows = packRows(toExamples(texts.heldOut), train.seqLen, eos);
  const tokens = rows.length * train.seqLen;
  console.log(JSON.stringify({ kind: 'data', trainParagraphs: texts.train.length, heldOutParagraphs: texts.heldOut.length, vocab: tok.vocabSize, trainTokens: tokens, heldOutTokens: evalRows.length * train.seqLen, ms: Math.round(performance.now() - t0) }));

  const ctx = await acquire();
  const trainer = await Trainer.create({
    device: ctx.device, model, train, rows, evalRows, store: new FileCheckpointStore(out), checkpointName: 'latest',
    autotune: args.includes('--autotune'),
    log: (e) => console.log(JSON.stringify(e, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v))),
  });
  if (args.includes('--resume') && init) throw new Error('train: --resume continues a run; --init starts one: give one of them');
  if (args.includes('--resume') && !(await trainer.resume())) throw new Error(`train --resume: no checkpoint in ${out}`);
  if (init) {
    trainer.restore(checkpointFromImport(init, train));
    console.log(JSON.stringify({ kind: 'event', step: 0, message: `initialised from ${initDir}${init.ignored.length ? ` (ignored: ${init.ignored.join(', ')})` : ''}` }));
  }
  const until = get('until');
  if (until !== undefined && !(Number.isInteger(Number(until)) && Number(until) > 0)) throw new Error(`train: --until must be a positive step number, got '${until}'`);
  // --until N stops at step N (held-out eval and checkpoint there) without changing the LR schedule of the run.
  await trainer.run(until === undefined ? undefined : Number(until));
  trainer.destroy();
  return 0;
}
