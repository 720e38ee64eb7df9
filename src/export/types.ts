// What every exporter takes and gives: a trained model (config + parameter slab + its tokenizer) in, a list of
// files (relative path + bytes) out. The CLI writes them into a folder; the app zips them or writes them through
// the File System Access API. Nothing here touches a file system.
// The tokenizer is any TextTokenizer: our BPE, or a real model family's (HfTokenizer), whose tokenizer.json goes out
// byte for byte as it was read (its sourceBytes) and whose tokenizer_config.json keeps every field, with the
// export's special tokens, model_max_length and chat template set.
// Vocabulary padding (config.vocabPadding) never leaves the engine: exportView drops those rows first, so every
// format's vocabulary is the tokenizer's.
import type { ModelConfig } from '../model/config.ts';
import { unpadVocab } from '../model/params.ts';
import type { TextTokenizer } from '../tokenizer/types.ts';
import { generationConfigJson, hfConfigJson, type SpecialIds } from './hf-config.ts';

export interface ExportInput {
  config: ModelConfig;
  /** The parameter slab (paramLayout order, padding included). */
  params: Float32Array;
  tokenizer: TextTokenizer;
  /**
   * Special tokens by content; default: the ones the tokenizer's own tokenizer_config.json names, or (a tokenizer
   * without one, like ours) '<|endoftext|>' as bos, eos and pad when the tokenizer has it.
   */
  bosToken?: string | null;
  eosToken?: string | null;
  padToken?: string | null;
  chatTemplate?: string;
}

export interface ExportFile {
  /** Relative path with '/' separators, e.g. 'onnx/model.onnx'. */
  path: string;
  bytes: Uint8Array;
}

const DEFAULT_SPECIAL = '<|endoftext|>';

/** Resolved special-token contents and ids of an export (null when the tokenizer has no such token). */
export function specialTokens(x: ExportInput): { bos: string | null; eos: string | null; pad: string | null; ids: SpecialIds } {
  const named = x.tokenizer.namedSpecial;
  const pick = (v: string | null | undefined, own: string | null | undefined): string | null => {
    if (v === undefined && named) return own ?? null;
    const t = v === undefined ? DEFAULT_SPECIAL : v;
    if (t === null) return null;
    if (x.tokenizer.tokenToId(t) === undefined) {
      if (v === undefined) return null;
      throw new Error(`export: special token ${JSON.stringify(t)} is not in the tokenizer's vocabulary`);
    }
    return t;
  };
  const bos = pick(x.bosToken, named?.bos), eos = pick(x.eosToken, named?.eos), pad = pick(x.padToken, named?.pad);
  const id = (t: string | null) => (t === null ? null : x.tokenizer.tokenToId(t)!);
  return { bos, eos, pad, ids: { bos: id(bos), eos: id(eos), pad: id(pad) } };
}

export const jsonFile = (path: string, value: unknown): ExportFile => ({ path, bytes: new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n') });

const views = new WeakMap<ExportInput, ExportInput>();

/** The export's model without vocabulary padding (the same object when it has none); checks the tokenizer fits. */
export function exportView(x: ExportInput): ExportInput {
  if (!x.config.vocabPadding) return x;
  let v = views.get(x);
  if (!v) {
    const { config, params } = unpadVocab(x.config, x.params);
    if (x.tokenizer.vocabSize > config.vocabSize) {
      throw new Error(`export: the tokenizer has ${x.tokenizer.vocabSize} tokens, the model only ${config.vocabSize} real ones (${x.config.vocabSize} with padding)`);
    }
    v = { ...x, config, params };
    views.set(x, v);
  }
  return v;
}

/** config.json, generation_config.json, tokenizer.json, tokenizer_config.json: shared by the HF and ONNX folders. */
export function hfSideFiles(input: ExportInput): ExportFile[] {
  const x = exportView(input);
  if (x.tokenizer.vocabSize > x.config.vocabSize) {
    throw new Error(`export: the tokenizer has ${x.tokenizer.vocabSize} tokens, the model only ${x.config.vocabSize} embeddings`);
  }
  const s = specialTokens(x);
  return [
    jsonFile('config.json', hfConfigJson(x.config, s.ids)),
    jsonFile('generation_config.json', generationConfigJson(s.ids)),
    x.tokenizer.sourceBytes ? { path: 'tokenizer.json', bytes: x.tokenizer.sourceBytes } : jsonFile('tokenizer.json', x.tokenizer.toJSON()),
    jsonFile('tokenizer_config.json', x.tokenizer.tokenizerConfigJson({
      bos: s.bos, eos: s.eos, pad: s.pad, modelMaxLength: x.config.maxSeqLen, ...(x.chatTemplate !== undefined ? { chatTemplate: x.chatTemplate } : {}),
    })),
  ];
}
