// Import of a Hugging Face folder of a supported family (LlamaForCausalLM incl. llama3 RoPE scaling,
// Qwen2ForCausalLM, Qwen3ForCausalLM; ours or anyone's): config.json → ModelConfig (modelConfigFromHf),
// model.safetensors — or shards model-0000i-of-0000N.safetensors with model.safetensors.index.json — → our
// parameter slab (fromHfTensors: every tensor present with its exact shape, extras reported in `ignored`),
// tokenizer.json → BpeTokenizer when ours reads it, and in any case → textTokenizer (ours, or transformers.js's
// HfTokenizer for a model family's tokenizer: Qwen, Llama-3, Gemma, ...), tokenizer_config.json → special tokens
// and chat template; importedExportInput makes that an ExportInput for re-export. The files come as a
// Map path → bytes (the app reads a picked folder, the CLI a directory); paths may sit under one common folder.
// checkpointFromImport turns the result into a step-0 Checkpoint (zero AdamW moments) so a Trainer can start from
// it: `trainer.restore(checkpointFromImport(imp, trainConfig))`, or put it in the store and `resume()`.
// halfTensorsOf reads the same weight files one tensor at a time as packed 16-bit words instead (a frozen LoRA base
// for the matmul's 16-bit B), never holding the model in f32.
import { makeConfig, type ModelConfig } from '../model/config.ts';
import { paramLayout } from '../model/params.ts';
import { initHiddenProjection } from '../model/ref-model.ts';
import { BpeTokenizer } from '../tokenizer/bpe.ts';
import { HfTokenizer, parseJsonFile } from '../tokenizer/hf.ts';
import type { TextTokenizer } from '../tokenizer/types.ts';
import type { Checkpoint } from '../train/checkpoint.ts';
import type { TrainConfig } from '../train/config.ts';
import { modelConfigFromHf } from './hf-config.ts';
import { MODEL_CONFIG_METADATA_KEY } from './hf-folder.ts';
import { fromHfTensors, ourName } from './hf-names.ts';
import type { HalfFormat } from '../util/half.ts';
import { readHalfTensor, readSafetensors, readSafetensorsHeader, type HalfTensor, type ReadTensor, type SafetensorsHeader } from './safetensors.ts';
import type { ExportInput } from './types.ts';

export interface ImportedSpecialTokens {
  bosToken: string | null;
  eosToken: string | null;
  padToken: string | null;
  chatTemplate?: string;
}

export interface ImportedModel {
  config: ModelConfig;
  /** The parameter slab (paramLayout(config) order, padding zero). */
  params: Float32Array;
  /** The folder's tokenizer when our byte-level BPE reads it. */
  tokenizer?: BpeTokenizer;
  /** The folder's tokenizer through the common interface: `tokenizer` when set, else transformers.js's. */
  textTokenizer?: TextTokenizer;
  /** Tensors in the weight files the model does not use (e.g. rotary_emb.inv_freq), sorted. */
  ignored: string[];
  /** Non-fatal findings: no or unreadable tokenizer, our metadata config disagreeing with config.json, ... */
  warnings: string[];
  /** Why there is no textTokenizer: no tokenizer.json, or neither tokenizer reads it (both readers' reasons). */
  tokenizerProblem?: string;
  /** tokenizer_config.json as read, when the folder has one. */
  tokenizerConfig?: Record<string, unknown>;
  /** From tokenizer_config.json (null when absent or not in the tokenizer): ExportInput's fields, for re-export. */
  special: ImportedSpecialTokens;
  /** __metadata__ of model.safetensors (of the first shard when sharded). */
  metadata: Record<string, string>;
  /** Dtypes the weights were stored in. */
  dtypes: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const SHARD = /^model-(\d+)-of-(\d+)\.safetensors$/;

/** The folder's files relative to its root (the shallowest folder holding config.json). */
export function rootFiles(files: Map<string, Uint8Array>, where: string): Map<string, Uint8Array> {
  const norm = new Map<string, Uint8Array>();
  for (const [p, b] of files) norm.set(p.replace(/\\/g, '/').replace(/^(\.\/)+/, '').replace(/^\/+/, ''), b);
  if (norm.has('config.json')) return norm;
  const roots = [...norm.keys()].filter((p) => p.endsWith('/config.json')).map((p) => p.slice(0, -'config.json'.length));
  if (roots.length === 0) throw new Error(`${where}: no config.json among the ${files.size} files (${[...norm.keys()].slice(0, 5).join(', ')}${files.size > 5 ? ', ...' : ''})`);
  const depth = (p: string) => p.split('/').length;
  roots.sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1));
  if (roots.length > 1 && depth(roots[0]!) === depth(roots[1]!)) throw new Error(`${where}: more than one model folder (config.json in '${roots[0]}' and '${roots[1]}'): import one at a time`);
  const root = roots[0]!;
  const out = new Map<string, Uint8Array>();
  for (const [p, b] of norm) if (p.startsWith(root)) out.set(p.slice(root.length), b);
  return out;
}

/** The weight files to read, in order: model.safetensors, or the shards named by the index (or by their names). */
export function weightFiles(f: Map<string, Uint8Array>, where: string): { names: string[]; weightMap?: Map<string, string> } {
  if (f.has('model.safetensors')) return { names: ['model.safetensors'] };
  const indexBytes = f.get('model.safetensors.index.json');
  if (indexBytes) {
    const w = `${where}: model.safetensors.index.json`;
    const index = parseJsonFile(indexBytes, w);
    if (!isObject(index) || !isObject(index.weight_map)) throw new Error(`${w}: must be an object with a "weight_map" object`);
    const weightMap = new Map<string, string>();
    for (const [tensor, file] of Object.entries(index.weight_map)) {
      if (typeof file !== 'string') throw new Error(`${w}: weight_map["${tensor}"] must be a file name, got ${JSON.stringify(file)}`);
      if (!f.has(file)) throw new Error(`${w}: weight_map["${tensor}"] names '${file}', which is not among the files`);
      weightMap.set(tensor, file);
    }
    if (weightMap.size === 0) throw new Error(`${w}: weight_map is empty`);
    return { names: [...new Set(weightMap.values())].sort(), weightMap };
  }
  const shards = [...f.keys()].filter((p) => SHARD.test(p)).sort();
  if (shards.length > 0) {
    const total = Number(SHARD.exec(shards[0]!)![2]);
    const have = new Set(shards);
    const width = SHARD.exec(shards[0]!)![1]!.length;
    for (let i = 1; i <= total; i++) {
      const name = `model-${String(i).padStart(width, '0')}-of-${String(total).padStart(width, '0')}.safetensors`;
      if (!have.has(name)) throw new Error(`${where}: shard '${name}' is missing (found ${shards.join(', ')}; no model.safetensors.index.json)`);
    }
    if (shards.length !== total) throw new Error(`${where}: shards of different counts (${shards.join(', ')})`);
    return { names: shards };
  }
  const other = [...f.keys()].find((p) => /\.(bin|pt|pth|ckpt|gguf|onnx)$/.test(p));
  throw new Error(`${where}: no model.safetensors (nor model-*-of-*.safetensors shards)${other ? `; found '${other}': only safetensors weights can be imported` : ''}`);
}

/** An HF folder's weights, one tensor at a time as packed 16-bit words (halfTensorsOf). */
export interface HalfTensorReader {
  /** Every tensor of the weight files (HF names), sorted. */
  names: string[];
  /** Tensor `name` in the reader's format: readHalfTensor of the file that holds it. */
  read(name: string): HalfTensor;
}

/**
 * The weights of an HF folder (model.safetensors or its shards, as importHfFolder finds them) one tensor at a time
 * as packed 16-bit words in `format` (readHalfTensor: a BF16/F16 tensor's own bytes when it is stored in `format`,
 * F32 and others converted as they are read). Only the headers are parsed up front; each read holds one tensor, so
 * a caller builds a 16-bit frozen base without the model ever in f32.
 */
export function halfTensorsOf(files: Map<string, Uint8Array>, format: HalfFormat, where = 'import'): HalfTensorReader {
  const f = rootFiles(files, where);
  const holder = new Map<string, { file: string; bytes: Uint8Array; header: SafetensorsHeader }>();
  for (const file of weightFiles(f, where).names) {
    const bytes = f.get(file)!;
    const header = readSafetensorsHeader(bytes, `${where}: ${file}`);
    for (const e of header.entries) {
      const prev = holder.get(e.name);
      if (prev) throw new Error(`${where}: tensor '${e.name}' is in both '${prev.file}' and '${file}'`);
      holder.set(e.name, { file, bytes, header });
    }
  }
  return {
    names: [...holder.keys()].sort(),
    read(name) {
      const h = holder.get(name);
      if (!h) throw new Error(`${where}: no tensor '${name}' in the weight files`);
      return readHalfTensor(h.bytes, h.header, name, format, `${where}: ${h.file}`);
    },
  };
}

/** A special token of tokenizer_config.json: a string, an AddedToken object {content}, or null. */
function specialToken(cfg: Record<string, unknown>, key: string, tok: TextTokenizer | undefined, warnings: string[]): string | null {
  const v = cfg[key];
  const content = typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : null;
  if (content === null) return null;
  if (tok && tok.tokenToId(content) === undefined) {
    warnings.push(`tokenizer_config.json: ${key} ${JSON.stringify(content)} is not in the tokenizer; ignored`);
    return null;
  }
  return content;
}

/** The folder's tokenizer (optional: a model without one can still be trained on ids or re-exported with another),
 *  tokenizer_config.json and its special tokens and chat template. */
export function tokenizerParts(f: Map<string, Uint8Array>, config: ModelConfig, where: string, warnings: string[]): Pick<ImportedModel, 'tokenizer' | 'textTokenizer' | 'tokenizerProblem' | 'tokenizerConfig' | 'special'> {
  let tokenizer: BpeTokenizer | undefined;
  let textTokenizer: TextTokenizer | undefined;
  const tokBytes = f.get('tokenizer.json');
  const tcBytes = f.get('tokenizer_config.json');
  const tc = tcBytes ? parseJsonFile(tcBytes, `${where}: tokenizer_config.json`) : undefined;
  if (tc !== undefined && !isObject(tc)) throw new Error(`${where}: tokenizer_config.json must be a JSON object`);
  let tokenizerProblem: string | undefined;
  if (!tokBytes) {
    tokenizerProblem = 'no tokenizer.json';
    warnings.push('no tokenizer.json: imported without a tokenizer');
  } else {
    const json = parseJsonFile(tokBytes, 'tokenizer.json');
    try {
      tokenizer = BpeTokenizer.fromJSON(json);
      textTokenizer = tokenizer;
    } catch (e) {
      try {
        // The file's own bytes travel with it: every export writes tokenizer.json exactly as it was read.
        textTokenizer = new HfTokenizer(json, tc ?? {}, 'tokenizer.json', tokBytes);
        warnings.push(`${(e as Error).message}: not our byte-level BPE, read with transformers.js's tokenizer (textTokenizer)`);
      } catch (e2) {
        tokenizerProblem = `${(e2 as Error).message} (our BPE reader: ${(e as Error).message})`;
        warnings.push(`${tokenizerProblem}; imported without a tokenizer`);
      }
    }
    if (textTokenizer && textTokenizer.vocabSize > config.vocabSize) {
      throw new Error(`${where}: tokenizer.json has ${textTokenizer.vocabSize} tokens, config.json's vocab_size is only ${config.vocabSize}`);
    }
  }
  const special: ImportedSpecialTokens = { bosToken: null, eosToken: null, padToken: null };
  if (tc) {
    special.bosToken = specialToken(tc, 'bos_token', textTokenizer, warnings);
    special.eosToken = specialToken(tc, 'eos_token', textTokenizer, warnings);
    special.padToken = specialToken(tc, 'pad_token', textTokenizer, warnings);
    if (typeof tc.chat_template === 'string') special.chatTemplate = tc.chat_template;
    else if (tc.chat_template !== undefined && tc.chat_template !== null) warnings.push('tokenizer_config.json: chat_template is not a single string; ignored');
  }

  return { ...(tokenizer ? { tokenizer } : {}), ...(textTokenizer ? { textTokenizer } : {}), ...(tokenizerProblem ? { tokenizerProblem } : {}), ...(tc ? { tokenizerConfig: tc } : {}), special };
}

/**
 * Reads an HF folder of a supported family into our config, slab and tokenizer. Throws, naming the file and field or tensor,
 * when something the model needs is missing, malformed or of the wrong shape; reports extras in `ignored`.
 */
export function importHfFolder(files: Map<string, Uint8Array>, where = 'import'): ImportedModel {
  const f = rootFiles(files, where);
  const warnings: string[] = [];
  const config = modelConfigFromHf(parseJsonFile(f.get('config.json')!, `${where}: config.json`), `${where}: config.json`);

  // Weights: every tensor of every weight file, by name (a name in two files is an error).
  const { names, weightMap } = weightFiles(f, where);
  const tensors = new Map<string, ReadTensor>();
  const from = new Map<string, string>();
  const ignored: string[] = [];
  const dtypes = new Set<string>();
  let metadata: Record<string, string> = {};
  names.forEach((file, i) => {
    const r = readSafetensors(f.get(file)!, `${where}: ${file}`, { skipUnsupported: true });
    if (i === 0) metadata = r.metadata;
    for (const s of r.skipped) {
      if (ourName(s.name) !== undefined) throw new Error(`${where}: ${file}: tensor '${s.name}' has dtype ${s.dtype}; the model needs it as a float (F32, F16, BF16, F64)`);
      ignored.push(s.name);
    }
    for (const [name, t] of r.tensors) {
      const prev = from.get(name);
      if (prev !== undefined) throw new Error(`${where}: tensor '${name}' is in both '${prev}' and '${file}'`);
      from.set(name, file);
      tensors.set(name, t);
      dtypes.add(t.dtype);
    }
  });
  if (weightMap) {
    for (const [name, file] of weightMap) {
      const got = from.get(name);
      if (got !== file && !ignored.includes(name)) throw new Error(`${where}: model.safetensors.index.json puts tensor '${name}' in '${file}', ${got ? `but it is in '${got}'` : 'which does not hold it'}`);
    }
  }
  const built = fromHfTensors(config, tensors, where);
  ignored.push(...built.ignored);

  // Our own config in the metadata (our exports): must agree with config.json, which wins.
  const ours = metadata[MODEL_CONFIG_METADATA_KEY];
  if (ours !== undefined) {
    try {
      const mc = makeConfig(JSON.parse(ours) as Record<string, unknown>, `${MODEL_CONFIG_METADATA_KEY}`);
      const keys = [...new Set([...Object.keys(mc), ...Object.keys(config)])] as (keyof ModelConfig)[];
      const show = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
      const diff = keys.filter((k) => JSON.stringify(mc[k]) !== JSON.stringify(config[k]));
      if (diff.length) warnings.push(`${names[0]}: the model config in its metadata differs from config.json in ${diff.map((k) => `${k} (${show(mc[k])} vs ${show(config[k])})`).join(', ')}; using config.json`);
    } catch (e) {
      warnings.push(`${names[0]}: metadata '${MODEL_CONFIG_METADATA_KEY}' is unreadable (${(e as Error).message}); using config.json`);
    }
  }

  const tok = tokenizerParts(f, config, where, warnings);

  return { config, params: built.slab, ...tok, ignored: ignored.sort(), warnings, metadata, dtypes: [...dtypes].sort() };
}

/**
 * What the exporters take to re-export an imported folder: its weights and its tokenizer (ours, or any tokenizer.json
 * transformers.js reads, whose file every format that copies it writes byte for byte), with the special tokens and
 * chat template its tokenizer_config.json names. Throws, saying why, when the folder has no tokenizer to carry.
 */
export function importedExportInput(imp: ImportedModel, where = 'export'): ExportInput {
  if (!imp.textTokenizer) throw new Error(`${where}: the folder's tokenizer cannot be exported: ${imp.tokenizerProblem ?? 'none was read'}`);
  const s = imp.special;
  return {
    config: imp.config, params: imp.params, tokenizer: imp.textTokenizer,
    ...(imp.tokenizerConfig ? { bosToken: s.bosToken, eosToken: s.eosToken, padToken: s.padToken } : {}),
    ...(s.chatTemplate !== undefined ? { chatTemplate: s.chatTemplate } : {}),
  };
}

/**
 * A step-0 checkpoint holding imported parameters, with zero AdamW moments and a fresh data cursor — exactly the
 * state of a new Trainer whose initial parameters are these (W_h, when the run distils hidden states, initialised
 * as the trainer would: initHiddenProjection(model, teacherHiddenWidth, seed)). Start training from an exported
 * folder with `trainer.restore(checkpointFromImport(importHfFolder(files), trainer's TrainConfig))`.
 */
export function checkpointFromImport(imp: { config: ModelConfig; params: Float32Array }, train: TrainConfig): Checkpoint {
  const layout = paramLayout(imp.config);
  if (imp.params.length !== layout.slabFloats) {
    throw new Error(`checkpointFromImport: ${imp.params.length} parameter floats, the config's layout has ${layout.slabFloats}`);
  }
  const wh = train.hiddenWeight > 0 ? initHiddenProjection(imp.config, train.teacherHiddenWidth, train.seed) : undefined;
  const trained = imp.params.length + (wh?.length ?? 0);
  return {
    model: imp.config, train, step: 0, adamStep: 0, cursor: { epoch: 0, row: 0 },
    params: imp.params.slice(), m: new Float32Array(trained), v: new Float32Array(trained),
    ...(wh ? { tail: wh } : {}),
  };
}
