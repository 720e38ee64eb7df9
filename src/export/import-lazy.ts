// An HF folder read without holding its weights in f32 (issue #21): importHfMeta checks the weights by their
// safetensors headers only (every tensor the config needs is there, with its shape and a float dtype) and reads the
// config, tokenizer and special tokens — what planning a run needs; baseTensorsOf then gives a LoRA run's frozen base
// one tensor at a time, the 16-bit linears as the file's own bf16/f16 words (converted when stored otherwise), the
// rest in f32, for GpuModel.uploadBaseTensor. The model is never whole in f32 on the host.
import { baseLayout, type BaseFormat, type BaseTensor } from '../model/base-layout.ts';
import type { ModelConfig } from '../model/config.ts';
import { paramLayout } from '../model/params.ts';
import { parseJsonFile } from '../tokenizer/hf.ts';
import { modelConfigFromHf } from './hf-config.ts';
import { hfName } from './hf-names.ts';
import { rootFiles, tokenizerParts, weightFiles, type ImportedModel } from './import.ts';
import { readF32Tensor, readHalfTensor, readSafetensorsHeader, type SafetensorsHeader } from './safetensors.ts';

/** An imported folder without its weights read (they are checked by their headers). */
export type ImportedMeta = Omit<ImportedModel, 'params' | 'ignored'>;

const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Each weight file's header, by tensor name; throws on a tensor in two files. */
function headers(f: Map<string, Uint8Array>, where: string): { byTensor: Map<string, { file: string; bytes: Uint8Array; header: SafetensorsHeader }>; metadata: Record<string, string> } {
  const byTensor = new Map<string, { file: string; bytes: Uint8Array; header: SafetensorsHeader }>();
  let metadata: Record<string, string> = {};
  weightFiles(f, where).names.forEach((file, i) => {
    const bytes = f.get(file)!;
    const header = readSafetensorsHeader(bytes, `${where}: ${file}`);
    if (i === 0) metadata = header.metadata;
    for (const e of header.entries) {
      const prev = byTensor.get(e.name);
      if (prev) throw new Error(`${where}: tensor '${e.name}' is in both '${prev.file}' and '${file}'`);
      byTensor.set(e.name, { file, bytes, header });
    }
  });
  return { byTensor, metadata };
}

/** Checks that every tensor `config` needs is in the headers with its shape and a float dtype; their dtypes. */
function checkTensors(config: ModelConfig, byTensor: ReturnType<typeof headers>['byTensor'], where: string): string[] {
  const dtypes = new Set<string>();
  for (const e of paramLayout(config).entries) {
    const name = hfName(e.name);
    const h = byTensor.get(name);
    const t = h?.header.entries.find((x) => x.name === name);
    if (!t) throw new Error(`${where}: tensor '${name}' is missing (needed for ${e.name} [${e.shape}])`);
    if (t.shape.join() !== e.shape.join()) throw new Error(`${where}: tensor '${name}' has shape [${t.shape}], the config needs [${e.shape}]`);
    if (!FLOATS.has(t.dtype)) throw new Error(`${where}: ${h!.file}: tensor '${name}' has dtype ${t.dtype}; the model needs it as a float (F32, F16, BF16, F64)`);
    dtypes.add(t.dtype);
  }
  return [...dtypes].sort();
}

/** The folder's config, tokenizer and special tokens; its weights checked by their headers, not read. */
export function importHfMeta(files: Map<string, Uint8Array>, where = 'import'): ImportedMeta {
  const f = rootFiles(files, where);
  const warnings: string[] = [];
  const config = modelConfigFromHf(parseJsonFile(f.get('config.json')!, `${where}: config.json`), `${where}: config.json`);
  const { byTensor, metadata } = headers(f, where);
  const dtypes = checkTensors(config, byTensor, where);
  return { config, ...tokenizerParts(f, config, where, warnings), warnings, metadata, dtypes };
}

/** The frozen base of `config` in `format`, tensor by tensor from the folder's weight files (one tensor held at a time). */
export function* baseTensorsOf(files: Map<string, Uint8Array>, config: ModelConfig, format: BaseFormat, where = 'import'): Generator<BaseTensor> {
  const f = rootFiles(files, where);
  const { byTensor } = headers(f, where);
  checkTensors(config, byTensor, where);
  for (const e of baseLayout(config, format).entries) {
    const name = hfName(e.name), h = byTensor.get(name)!;
    const at = `${where}: ${h.file}`;
    yield { name: e.name, data: e.half ? readHalfTensor(h.bytes, h.header, name, e.half, at).words : readF32Tensor(h.bytes, h.header, name, at).data };
  }
}
