// Scale-out export (issue #6): a dataset of our store as the files that TRL's trainers and DistillKit read, plus the
// configurations and a README to run them, as ExportFile[] (the CLI writes a folder, the app zips it):
//   sft/train.jsonl                      {"messages": [{role, content}, ...]}: TRL SFTTrainer, conversational
//   sft-prompt-completion/train.jsonl    {"prompt": [...messages], "completion": [{assistant}]}: conversational
//                                        prompt-completion (loss on the completion only, TRL's default for it)
//   dpo/train.jsonl                      {"prompt": [...], "chosen": [{assistant}], "rejected": [{assistant}]} (or
//                                        the standard string form): TRL DPOTrainer, from the pairs store
//   teacher-topk/train.parquet + meta.json (+ token_table.json)   the teacher's per-token top-k (schema below)
//   trl-sft.yaml, trl-dpo.yaml, trl-distillation.yaml (with the prompt-completion file: TRL's on-policy
//   DistillationTrainer, generalized JSD to the teacher's weights), distillkit.yaml, chat_template.jinja, README.md,
//   manifest.json
// TRL facts checked in huggingface/trl: trl/trainer/sft_config.py (max_length, packing, chat_template_path,
// completion_only_loss, assistant_only_loss), trl/scripts ScriptArguments (dataset_name = a path or Hub name given
// to datasets.load_dataset: a folder holding train.jsonl loads as split "train"); DPOConfig beta / loss_type.
// DistillKit facts checked in arcee-ai/DistillKit: distillkit/configuration.py (DistillationRunConfig: model,
// dataset.train_dataset.{repo_id|disk_path, split}, teacher kind hf|dataset|vllm, loss_functions, training_args),
// distillkit/main.py (_format_row applies the chat template to a `messages` column), and its offline format
// (distillkit/sample_common.py compressed_logit_schema: input_ids list<uint64>, compressed_logprobs and
// bytepacked_indices list<list<uint8>>, one row per position of the WHOLE teacher-tokenised sequence, packed to
// the training length; distillkit/compression/*). That format needs the teacher's distribution at every position
// of its own tokenisation of the prompt too; an API teacher gives top-≤20 only for the tokens it generated. So the
// top-k goes out in our own documented schema (README "teacher-topk"), ids in the teacher tokenizer's id space when
// its vocabulary is given (else in the dataset's token table, shipped alongside), and distillkit.yaml is DistillKit's
// online recipe (teacher weights, kind: hf) over the SFT folder.
// No credentials: provenance is not exported; option strings and every generated text file pass `sanitize`, and
// conversations whose text looks like a key are refused unless allowed (the store refuses keys in provenance).
import { datasetVocab } from '../store/topk-table.ts';
import { listSchema, scalarSchema, structListSchema, writeParquet, type ParquetColumn } from '../store/parquet.ts';
import { sanitize, type ChatMessage, type StoredRecord } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import { unpackTopKRows } from '../store/topk.ts';
import { distillkitYaml, exportFile, readme, SIMPLE_CHAT_TEMPLATE, trlDistillationYaml, trlDpoYaml, trlSftYaml, type ScaleoutTraining } from './dataset-text.ts';
import type { ExportFile } from './types.ts';

export { SIMPLE_CHAT_TEMPLATE, toYaml, type ScaleoutTraining } from './dataset-text.ts';

/** The teacher's tokenizer, to put top-k ids in its id space (DistillKit and HF trainers index logits by these). */
export interface TeacherVocab {
  /** Tokenizer name, e.g. the HF repo id 'Qwen/Qwen2.5-7B-Instruct'. */
  name: string;
  /** Rows of the teacher's output layer (DistillKit's `d`). */
  vocabSize: number;
  /** Id of a token as the teacher's API spelled it (its decoded text), or undefined when unknown. */
  idOf(token: string): number | undefined;
}

export interface ScaleoutOptions {
  /** Student for the TRL configs: an HF repo id or a folder (default './model': our safetensors export beside it). */
  studentModel?: string;
  /** Teacher weights for distillkit.yaml and trl-distillation.yaml (default: the teacher model most records name). Must share the student's tokenizer. */
  teacherModel?: string;
  /** Which SFT files (default 'messages'). */
  sftFormat?: 'messages' | 'prompt-completion' | 'both';
  /** DPO file form (default 'conversational'; 'standard' = plain strings, only for single-user-message prompts). */
  dpoFormat?: 'conversational' | 'standard';
  /** Top-k ids in this tokenizer's space; without it ids index the dataset's token table (written as token_table.json). */
  teacherVocab?: TeacherVocab;
  /** The dataset's teacher-token table (default: datasetVocab of the store, i.e. its feature jobs' table). */
  tokenTable?: string[];
  /** Jinja chat template written as chat_template.jinja and named by the TRL configs (default SIMPLE_CHAT_TEMPLATE; null: none). */
  chatTemplate?: string | null;
  /** Hyper-parameters written into the configs. */
  training?: Partial<ScaleoutTraining>;
  /** Export conversations whose text looks like a credential (default false: refused, naming the records). */
  allowSecretLikeContent?: boolean;
  /** Records/pairs read per page (default 500). */
  pageSize?: number;
}

export interface ScaleoutReport {
  sft: number;
  promptCompletion: number;
  dpo: number;
  topkRows: number;
  topkTokens: number;
  /** What was left out and why (first 100), and how many in all. */
  skipped: { what: string; reason: string }[];
  skippedCount: number;
}

export const TRAINING_DEFAULTS: ScaleoutTraining = {
  learningRate: 2e-5, dpoLearningRate: 5e-7, epochs: 1, batchSize: 8, gradAccum: 1, maxLength: 1024, dpoBeta: 0.1, kdTemperature: 1, kdWeight: 0.5,
};

const OPTION_KEYS = ['studentModel', 'teacherModel', 'sftFormat', 'dpoFormat', 'teacherVocab', 'tokenTable', 'chatTemplate', 'training', 'allowSecretLikeContent', 'pageSize'];
const enc = new TextEncoder();
const jsonl = (lines: unknown[]): Uint8Array => enc.encode(lines.map((l) => JSON.stringify(l) + '\n').join(''));
const assistant = (content: string): ChatMessage[] => [{ role: 'assistant', content }];
const plain = (m: ChatMessage[]): ChatMessage[] => m.map((x) => ({ role: x.role, content: x.content }));

function looksSecret(v: unknown, where: string): boolean {
  try {
    sanitize(v, where);
    return false;
  } catch {
    return true;
  }
}

/** The teacher's per-token top-k of one assistant turn, in the export's schema. */
interface TopKRowOut {
  messages: ChatMessage[];
  turn: number;
  ids: number[][];
  tokens: string[][];
  logprobs: number[][];
}

/**
 * Builds the scale-out export of a dataset (see the file banner). Throws (naming what and where) on unknown options,
 * a missing dataset, top-k ids that the token table or teacher vocabulary cannot resolve, and credentials.
 */
export async function scaleoutExport(store: DistillStore, datasetId: string, options: ScaleoutOptions = {}): Promise<{ files: ExportFile[]; report: ScaleoutReport }> {
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.includes(k)) throw new Error(`scaleoutExport: unknown option "${k}" (allowed: ${OPTION_KEYS.join(', ')})`);
  }
  const ds = await store.getDataset(datasetId);
  if (!ds) throw new Error(`scaleoutExport: no dataset "${datasetId}"`);
  const training: ScaleoutTraining = { ...TRAINING_DEFAULTS, ...options.training };
  for (const [k, v] of Object.entries(training)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`scaleoutExport: training.${k} must be a finite number > 0, got ${String(v)}`);
  }
  const sftFormat = options.sftFormat ?? 'messages';
  const dpoFormat = options.dpoFormat ?? 'conversational';
  if (!['messages', 'prompt-completion', 'both'].includes(sftFormat)) throw new Error(`scaleoutExport: sftFormat must be messages, prompt-completion or both, got ${String(sftFormat)}`);
  if (!['conversational', 'standard'].includes(dpoFormat)) throw new Error(`scaleoutExport: dpoFormat must be conversational or standard, got ${String(dpoFormat)}`);
  const chatTemplate = options.chatTemplate === undefined ? SIMPLE_CHAT_TEMPLATE : options.chatTemplate;
  const studentModel = options.studentModel ?? './model';
  sanitize({ studentModel, teacherModel: options.teacherModel ?? '', chatTemplate: chatTemplate ?? '', teacherVocab: options.teacherVocab?.name ?? '' }, 'scaleoutExport options');
  const pageSize = options.pageSize ?? 500;
  const allowSecrets = options.allowSecretLikeContent ?? false;

  const report: ScaleoutReport = { sft: 0, promptCompletion: 0, dpo: 0, topkRows: 0, topkTokens: 0, skipped: [], skippedCount: 0 };
  const skip = (what: string, reason: string): void => {
    report.skippedCount++;
    if (report.skipped.length < 100) report.skipped.push({ what, reason });
  };
  const secretLike: string[] = [];
  const sft: unknown[] = [];
  const pc: unknown[] = [];
  const dpo: unknown[] = [];
  const topk: TopKRowOut[] = [];
  const teachers = new Map<string, number>();
  let table: string[] | undefined = options.tokenTable;
  let maxK = 0;

  // ------------------------------------------------------------------------------------------ records, top-k
  for (let offset = 0; ; offset += pageSize) {
    const page = await store.getRecords(datasetId, { offset, limit: pageSize });
    for (const r of page) {
      if (looksSecret(r.messages, `record ${r.id}`)) secretLike.push(`record ${r.id}`);
      teachers.set(r.provenance.teacher.model, (teachers.get(r.provenance.teacher.model) ?? 0) + 1);
      const messages = plain(r.messages);
      sft.push({ messages });
      report.sft++;
      if (sftFormat !== 'messages') {
        const last = messages[messages.length - 1]!;
        if (last.role !== 'assistant' || messages.length < 2) skip(`record ${r.id}`, 'prompt-completion needs a conversation that ends with an assistant message after a prompt');
        else { pc.push({ prompt: messages.slice(0, -1), completion: [last] }); report.promptCompletion++; }
      }
      const entries = await store.getTopKOfRecord(r.id);
      for (const e of entries.sort((a, b) => a.turn - b.turn)) {
        table ??= await datasetVocab(store, datasetId);
        const row = topkRow(r, e.turn, e.rows, table, options.teacherVocab);
        if (row.ids.length !== e.tokens) throw new Error(`scaleoutExport: record ${r.id} turn ${e.turn}: ${row.ids.length} top-k rows decoded, ${e.tokens} recorded`);
        for (const ids of row.ids) maxK = Math.max(maxK, ids.length);
        topk.push(row);
        report.topkRows++;
        report.topkTokens += row.ids.length;
      }
    }
    if (page.length < pageSize) break;
  }

  // ---------------------------------------------------------------------------------------------------- pairs
  for (let offset = 0; ; offset += pageSize) {
    const page = await store.getPairs(datasetId, { offset, limit: pageSize });
    for (const p of page) {
      if (looksSecret([p.prompt, p.chosen, p.rejected], `pair ${p.id}`)) secretLike.push(`pair ${p.id}`);
      const prompt = plain(p.prompt);
      if (dpoFormat === 'conversational') {
        dpo.push({ prompt, chosen: assistant(p.chosen), rejected: assistant(p.rejected) });
      } else if (prompt.length === 1 && prompt[0]!.role === 'user') {
        dpo.push({ prompt: prompt[0]!.content, chosen: p.chosen, rejected: p.rejected });
      } else {
        skip(`pair ${p.id}`, 'the standard (string) DPO form holds a single user message as the prompt; use dpoFormat "conversational"');
        continue;
      }
      report.dpo++;
    }
    if (page.length < pageSize) break;
  }
  if (secretLike.length > 0 && !allowSecrets) {
    throw new Error(
      `scaleoutExport: ${secretLike.length} conversation(s) contain text that looks like a credential (${secretLike.slice(0, 10).join(', ')}` +
        `${secretLike.length > 10 ? ', ...' : ''}); nothing was exported. Remove them from the dataset, or pass allowSecretLikeContent: true.`,
    );
  }

  // ---------------------------------------------------------------------------------------------------- files
  const teacherModel = options.teacherModel ?? [...teachers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const files: ExportFile[] = [];
  const sftDir = sftFormat === 'prompt-completion' ? 'sft-prompt-completion' : 'sft';
  if (sftFormat !== 'prompt-completion') files.push({ path: 'sft/train.jsonl', bytes: jsonl(sft) });
  if (sftFormat !== 'messages') files.push({ path: 'sft-prompt-completion/train.jsonl', bytes: jsonl(pc) });
  if (dpo.length > 0) files.push({ path: 'dpo/train.jsonl', bytes: jsonl(dpo) });
  const idSpace = options.teacherVocab ? 'teacher-tokenizer' : 'token-table';
  const topkMeta = {
    schema: 'webgpu-distill/teacher-topk@1',
    id_space: idSpace,
    tokenizer: options.teacherVocab?.name ?? null,
    vocab_size: options.teacherVocab?.vocabSize ?? table?.length ?? 0,
    teacher_models: [...teachers.keys()].filter((m) => m !== ''),
    rows: report.topkRows,
    tokens: report.topkTokens,
    max_k: maxK,
    logprobs: 'natural log, each row sorted descending; stored 8-bit: |error| <= (row max - row min) / 510',
    alignment: 'row t of topk_* = the teacher distribution of the t-th token it generated for messages[turn] (its own tokenisation)',
  };
  if (topk.length > 0) {
    files.push({ path: 'teacher-topk/train.parquet', bytes: topkParquet(topk, topkMeta) });
    files.push(exportFile('teacher-topk/meta.json', JSON.stringify(topkMeta, null, 2) + '\n'));
    if (!options.teacherVocab) files.push(exportFile('teacher-topk/token_table.json', JSON.stringify(table ?? []) + '\n'));
  }
  const ctx = {
    datasetName: ds.name, studentModel, teacherModel, training, sftDir, hasDpo: dpo.length > 0, hasTopk: topk.length > 0, report, dpoFormat,
    sftFormat, chatTemplatePath: chatTemplate === null ? null : './chat_template.jinja', topkMeta,
  };
  files.push(exportFile('trl-sft.yaml', trlSftYaml(ctx)));
  if (dpo.length > 0) files.push(exportFile('trl-dpo.yaml', trlDpoYaml(ctx)));
  if (sftFormat !== 'messages') files.push(exportFile('trl-distillation.yaml', trlDistillationYaml(ctx)));
  files.push(exportFile('distillkit.yaml', distillkitYaml(ctx)));
  if (chatTemplate !== null) files.push(exportFile('chat_template.jinja', chatTemplate));
  files.push(exportFile('README.md', readme(ctx)));
  files.push(exportFile('manifest.json', JSON.stringify({ schema: 'webgpu-distill/scaleout@1', dataset: ds.name, files: files.map((f) => f.path), report }, null, 2) + '\n'));
  // Generated text (configs, README, metadata) must never carry a credential, whatever the options held.
  for (const f of files) {
    if (!f.path.endsWith('.jsonl') && !f.path.endsWith('.parquet')) sanitize(new TextDecoder().decode(f.bytes), `scaleoutExport: ${f.path}`);
  }
  return { files, report };
}

function topkRow(r: StoredRecord, turn: number, packed: Uint8Array, table: string[], vocab: TeacherVocab | undefined): TopKRowOut {
  const where = `record ${r.id} turn ${turn}`;
  let rows;
  try {
    rows = unpackTopKRows(packed);
  } catch (e) {
    throw new Error(`scaleoutExport: ${where}: corrupt top-k rows (${(e as Error).message})`);
  }
  const out: TopKRowOut = { messages: plain(r.messages.slice(0, turn + 1)), turn, ids: [], tokens: [], logprobs: [] };
  rows.forEach((row, t) => {
    const tokens = Array.from(row.ids, (id) => {
      const s = table[id];
      if (s === undefined) throw new Error(`scaleoutExport: ${where} token ${t}: top-k id ${id} is not in the dataset's token table (${table.length} entries)`);
      return s;
    });
    const ids = vocab
      ? tokens.map((s) => {
        const id = vocab.idOf(s);
        if (id === undefined || !Number.isInteger(id) || id < 0 || id >= vocab.vocabSize) {
          throw new Error(`scaleoutExport: ${where} token ${t}: teacher token ${JSON.stringify(s)} has no id in tokenizer "${vocab.name}" (got ${String(id)}, vocabulary ${vocab.vocabSize})`);
        }
        return id;
      })
      : Array.from(row.ids);
    out.ids.push(ids);
    out.tokens.push(tokens);
    out.logprobs.push(Array.from(row.logprobs));
  });
  return out;
}

function topkParquet(rows: TopKRowOut[], meta: object): Uint8Array {
  const columns: ParquetColumn[] = [
    { schema: structListSchema('messages', ['role', 'content']), data: rows.map((r) => r.messages) },
    { schema: scalarSchema('turn', 'INT32'), data: rows.map((r) => r.turn) },
    { schema: scalarSchema('num_tokens', 'INT32'), data: rows.map((r) => r.ids.length) },
    { schema: listSchema('topk_ids', 'INT32', 2), data: rows.map((r) => r.ids) },
    { schema: listSchema('topk_logprobs', 'FLOAT', 2), data: rows.map((r) => r.logprobs) },
    { schema: listSchema('topk_tokens', 'STRING', 2), data: rows.map((r) => r.tokens) },
  ];
  return writeParquet(columns, { rowGroupSize: 1000, kvMetadata: { 'webgpu-distill.teacher-topk': JSON.stringify(meta) } });
}
