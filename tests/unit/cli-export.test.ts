// `cli export` end to end in-process: a training run folder (checkpoint + tokenizer.json + train.jsonl) → every
// format, written atomically; each result read back by the real reader of its format (our importer for the HF
// folder, onnxruntime-node for ONNX, Info-ZIP for the zip) and its training record checked.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it, vi } from 'vitest';
import { exportCommand, readFolder } from '../../src/cli/export.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { makeConfig } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { trainBpe } from '../../src/tokenizer/bpe.ts';
import { encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { makeTrainConfig } from '../../src/train/config.ts';

const tok = trainBpe(['the cat sat on the mat. the dog sat on the log.'], { vocabSize: 280, specialTokens: ['<|endoftext|>'] });
const config = makeConfig({ vocabSize: 288, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 24, maxSeqLen: 16 });
const params = initParams(config, 3);

function makeRun(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cli-export-'));
  const run = join(dir, 'run');
  mkdirSync(run);
  const train = makeTrainConfig({ steps: 4, evalEvery: 2 });
  const ck = { model: config, train, step: 4, adamStep: 4, cursor: { epoch: 0, index: 0, order: [] } as never, params, m: new Float32Array(params.length), v: new Float32Array(params.length) };
  writeFileSync(join(run, 'latest.ckpt'), encodeCheckpoint(ck));
  writeFileSync(join(run, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
  writeFileSync(join(run, 'train.jsonl'), [
    { kind: 'data', trainTokens: 1000 }, { kind: 'step', step: 1, ms: 1500 }, { kind: 'eval', step: 2, loss: 5.1, ppl: 164 },
    { kind: 'step', step: 2, ms: 1500 }, { kind: 'eval', step: 4, loss: 4.9, ppl: 134 }, { kind: 'eval', step: 6, loss: 4, ppl: 54 },
  ].map((e) => JSON.stringify(e)).join('\n') + '\nnot json\n');
  return dir;
}

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    expect(await exportCommand(args)).toBe(0);
    return JSON.parse(String(log.mock.calls.at(-1)![0])) as Record<string, unknown>;
  } finally {
    log.mockRestore();
  }
}

describe('cli export', () => {
  it('transformers.js folder: weights import back exactly, ONNX runs, record names the checkpoint evaluation', async () => {
    const dir = makeRun();
    const out = join(dir, 'out');
    const r = await cli(['--run', join(dir, 'run'), '--out', out]);
    expect(r.format).toBe('transformers.js');
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'onnx', 'tokenizer.json', 'tokenizer_config.json', 'training.json']);
    const imp = importHfFolder(readFolder(out));
    expect(imp.config).toEqual(config);
    expect(imp.params).toEqual(params);
    expect(imp.tokenizer!.encode('the cat')).toEqual(tok.encode('the cat'));
    const s = await ort.InferenceSession.create(join(out, 'onnx', 'model.onnx'));
    expect(s.outputNames).toContain('logits');
    const rec = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(rec.step).toBe(4);
    expect(rec.heldOut).toMatchObject({ step: 4, ppl: 134 }); // the evaluation of these weights, not the later one
    expect(rec.evals.map((e: { step: number }) => e.step)).toEqual([2, 4]);
    expect(rec.trainSeconds).toBe(3);
    expect(rec.model).toEqual(config);
  });

  it('gguf-f16 and safetensors as zips that unzip -t verifies; never overwrites without --force', async () => {
    const dir = makeRun();
    for (const format of ['gguf-f16', 'safetensors']) {
      const out = join(dir, `m-${format}`);
      await cli(['--run', join(dir, 'run'), '--format', format, '--out', out, '--zip']);
      expect(execFileSync('unzip', ['-t', `${out}.zip`], { encoding: 'utf8' })).toMatch(/No errors detected/);
      expect(execFileSync('unzip', ['-l', `${out}.zip`], { encoding: 'utf8' })).toMatch(format === 'gguf-f16' ? /m-gguf-f16\/model\.gguf/ : /m-safetensors\/model\.safetensors/);
    }
    const out = join(dir, 'out');
    await cli(['--run', join(dir, 'run'), '--format', 'gguf', '--out', out]);
    const before = readFileSync(join(out, 'model.gguf'));
    expect(before.subarray(0, 4).toString()).toBe('GGUF');
    await expect(exportCommand(['--run', join(dir, 'run'), '--format', 'onnx', '--out', out])).rejects.toThrow(/exists \(use --force/);
    expect(readFileSync(join(out, 'model.gguf'))).toEqual(before);
    await cli(['--run', join(dir, 'run'), '--format', 'onnx', '--out', out, '--force']);
    expect(existsSync(join(out, 'model.gguf'))).toBe(false);
    expect(existsSync(join(out, 'onnx', 'model.onnx'))).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('re-exports an HF folder (--from) and names bad arguments', async () => {
    const dir = makeRun();
    await cli(['--run', join(dir, 'run'), '--format', 'safetensors', '--out', join(dir, 'hf')]);
    await cli(['--from', join(dir, 'hf'), '--format', 'gguf', '--out', join(dir, 'g')]);
    expect(readFileSync(join(dir, 'g', 'model.gguf')).subarray(0, 4).toString()).toBe('GGUF');
    await expect(exportCommand(['--run', join(dir, 'run'), '--format', 'tflite', '--out', join(dir, 'x')])).rejects.toThrow(/unknown --format 'tflite'/);
    await expect(exportCommand(['--run', join(dir, 'nope'), '--out', join(dir, 'x')])).rejects.toThrow(/no checkpoint/);
    await expect(exportCommand(['--run', join(dir, 'run'), '--from', join(dir, 'hf'), '--out', join(dir, 'x')])).rejects.toThrow(/exactly one of/);
  });
});
