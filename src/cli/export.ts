// `npm run cli -- export (--run DIR | --from HF_DIR) [--checkpoint NAME] [--format F] --out DIR [--zip] [--force]`:
// a trained run (checkpoint + its tokenizer.json, and tokenizer_config.json for a family's tokenizer) or an HF Llama
// folder → files of one export format, written into a temporary folder renamed into place (never a half-written
// export under the real name). Either tokenizer is ours or any tokenizer.json transformers.js reads, carried as
// src/export/types.ts says. From a run, a `training.json` record (configs, step, last held-out evaluation) goes
// beside the weights.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { EXPORT_FORMATS, exportModel, isExportFormat, type ExportFile, type ExportInput } from '../export/index.ts';
import { importedExportInput, importHfFolder } from '../export/import.ts';
import { jsonFile } from '../export/types.ts';
import { zipFiles } from '../export/zip.ts';
import { HfTokenizer, loadTokenizerFile } from '../tokenizer/hf.ts';
import type { TextTokenizer } from '../tokenizer/types.ts';
import { decodeCheckpoint } from '../train/checkpoint.ts';

/** A JSON file's value; errors name the command (`where`) and the file. */
export function readJson(path: string, where = 'export'): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${where}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Every file under a folder, by relative '/'-separated path. */
export function readFolder(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split(sep).join('/'), new Uint8Array(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

/**
 * Saves a run's tokenizer beside its checkpoint (what `cli train` does): tokenizer.json — a family's file exactly as
 * it was read — and, for a family's tokenizer, its tokenizer_config.json (special tokens, chat template).
 */
export function saveRunTokenizer(dir: string, tok: TextTokenizer): void {
  writeFileSync(join(dir, 'tokenizer.json'), tok.sourceBytes ?? JSON.stringify(tok.toJSON()));
  if (tok instanceof HfTokenizer) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tok.config));
}

/**
 * The tokenizer of a tokenizer.json file, with the tokenizer_config.json at `configPath` when there is one: our BPE,
 * or any tokenizer.json transformers.js reads (keeping the file's bytes for export). Errors name `where`.
 */
export function readTokenizerFiles(tokPath: string, configPath: string | undefined, where: string): TextTokenizer {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(tokPath));
  } catch (e) {
    throw new Error(`${where}: cannot read ${tokPath}: ${(e as Error).message}`);
  }
  const config = configPath !== undefined && existsSync(configPath) ? readJson(configPath, where) : undefined;
  return loadTokenizerFile(bytes, config, tokPath);
}

/** The model of a training run folder (checkpoint + its tokenizer files) and its training record. */
export function loadRun(dir: string, checkpoint = 'latest'): { input: ExportInput; record: Record<string, unknown> } {
  const ckptPath = join(dir, `${checkpoint}.ckpt`);
  if (!existsSync(ckptPath)) throw new Error(`export: no checkpoint ${ckptPath}`);
  const tokPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new Error(`export: no ${tokPath} (runs save their tokenizer there since 2026-11-23; retrain or copy it)`);
  const tokenizer = readTokenizerFiles(tokPath, join(dir, 'tokenizer_config.json'), 'export');
  const ck = decodeCheckpoint(new Uint8Array(readFileSync(ckptPath)), ckptPath);
  if (ck.train.lora) throw new Error(`export: ${ckptPath} holds LoRA adapters, not a whole model: export the run from the page (adapters alone, or merged into the model it started from)`);
  const record: Record<string, unknown> = { source: ckptPath, step: ck.step, model: ck.model, train: ck.train };
  const log = join(dir, 'train.jsonl');
  if (existsSync(log)) {
    const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{'));
    const parsed = lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } });
    const evals = parsed.filter((e) => e.kind === 'eval');
    const data = parsed.find((e) => e.kind === 'data');
    const upTo = (e: Record<string, unknown>) => typeof e.step === 'number' && e.step <= ck.step;
    // Held-out figures of exactly these weights (null when the log has no evaluation at the checkpoint's step).
    record.heldOut = evals.filter(upTo).find((e) => e.step === ck.step) ?? null;
    record.evals = evals.filter(upTo);
    if (data) record.data = data;
    const steps = parsed.filter((e) => e.kind === 'step' && typeof e.ms === 'number' && upTo(e));
    if (steps.length) record.trainSeconds = Math.round(steps.reduce((s, e) => s + (e.ms as number), 0) / 1000);
  }
  return { input: { config: ck.model, params: ck.params, tokenizer }, record };
}

/** Writes export files (relative '/'-separated paths) under `dir`, creating folders as needed. */
export function writeFiles(dir: string, files: readonly ExportFile[]): void {
  for (const f of files) {
    const p = join(dir, ...f.path.split('/'));
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.bytes);
  }
}

/** Writes files into `out` through a temporary sibling folder renamed into place. */
export function writeFolderAtomic(out: string, files: ExportFile[], force: boolean): void {
  if (existsSync(out) && !force) throw new Error(`export: ${out} exists (use --force to replace it)`);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  writeFiles(tmp, files);
  if (existsSync(out)) rmSync(out, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  renameSync(tmp, out);
}

export async function exportCommand(args: string[]): Promise<number> {
  const get = (k: string) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : undefined; };
  const format = get('format') ?? 'transformers.js';
  if (!isExportFormat(format)) throw new Error(`export: unknown --format '${format}' (have: ${EXPORT_FORMATS.join(', ')})`);
  const out = get('out');
  if (!out) throw new Error('export: --out <folder> is required');
  const run = get('run'), from = get('from');
  if (!run === !from) throw new Error('export: give exactly one of --run <training run folder> or --from <HF folder>');
  let input: ExportInput;
  const extra: ExportFile[] = [];
  if (run) {
    const r = loadRun(run, get('checkpoint'));
    input = r.input;
    extra.push(jsonFile('training.json', r.record));
  } else {
    input = importedExportInput(importHfFolder(readFolder(from!), `export ${from}`), `export ${from}`);
  }
  const t0 = performance.now();
  const files = exportModel(input, format, extra);
  if (args.includes('--zip')) {
    const zipPath = out.endsWith('.zip') ? out : `${out}.zip`;
    if (existsSync(zipPath) && !args.includes('--force')) throw new Error(`export: ${zipPath} exists (use --force to replace it)`);
    const tmp = `${zipPath}.tmp-${process.pid}`;
    writeFileSync(tmp, zipFiles(files, { folder: zipPath.replace(/^.*\//, '').replace(/\.zip$/, '') }));
    renameSync(tmp, zipPath);
  } else {
    writeFolderAtomic(out, files, args.includes('--force'));
  }
  const bytes = files.reduce((s, f) => s + f.bytes.length, 0);
  console.log(JSON.stringify({ kind: 'export', format, out, files: files.map((f) => f.path), bytes, ms: Math.round(performance.now() - t0) }));
  return 0;
}
