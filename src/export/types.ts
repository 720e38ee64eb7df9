// What every exporter takes and gives: a trained model (config + parameter slab + its tokenizer) in, a list of
// files (relative path + bytes) out. The CLI writes them into a folder; the app zips them or writes them through
// the File System Access API. Nothing here touches a file system.
import type { ModelConfig } from '../model/config.ts';
import type { BpeTokenizer } from '../tokenizer/bpe.ts';
import { generationConfigJson, hfConfigJson, type SpecialIds } from './hf-config.ts';

export interface ExportInput {
  config: ModelConfig;
  /** The parameter slab (paramLayout order, padding included). */
  params: Float32Array;
  tokenizer: BpeTokenizer;
  /** Special tokens by content; default: '<|endoftext|>' as bos, eos and pad when the tokenizer has it. */
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
  const pick = (v: string | null | undefined): string | null => {
    const t = v === undefined ? DEFAULT_SPECIAL : v;
    if (t === null) return null;
    if (x.tokenizer.tokenToId(t) === undefined) {
      if (v === undefined) return null;
      throw new Error(`export: special token ${JSON.stringify(t)} is not in the tokenizer's vocabulary`);
    }
    return t;
  };
  const bos = pick(x.bosToken), eos = pick(x.eosToken), pad = pick(x.padToken);
  const id = (t: string | null) => (t === null ? null : x.tokenizer.tokenToId(t)!);
  return { bos, eos, pad, ids: { bos: id(bos), eos: id(eos), pad: id(pad) } };
}

export const jsonFile = (path: string, value: unknown): ExportFile => ({ path, bytes: new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n') });

/** config.json, generation_config.json, tokenizer.json, tokenizer_config.json: shared by the HF and ONNX folders. */
export function hfSideFiles(x: ExportInput): ExportFile[] {
  if (x.tokenizer.vocabSize > x.config.vocabSize) {
    throw new Error(`export: the tokenizer has ${x.tokenizer.vocabSize} tokens, the model only ${x.config.vocabSize} embeddings`);
  }
  const s = specialTokens(x);
  return [
    jsonFile('config.json', hfConfigJson(x.config, s.ids)),
    jsonFile('generation_config.json', generationConfigJson(s.ids)),
    jsonFile('tokenizer.json', x.tokenizer.toJSON()),
    jsonFile('tokenizer_config.json', x.tokenizer.tokenizerConfigJson({
      bos: s.bos, eos: s.eos, pad: s.pad, modelMaxLength: x.config.maxSeqLen, ...(x.chatTemplate !== undefined ? { chatTemplate: x.chatTemplate } : {}),
    })),
  ];
}
