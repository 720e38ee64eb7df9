// Parquet import and export of chat records (issue #5), the Parquet twin of io.ts, on npm hyparquet (reader) and
// hyparquet-writer (writer). Layouts, chosen to be what HF `datasets` (pyarrow) writes and reads natively:
//   openai    messages:      list<struct<role: string, content: string>>   (TRL's conversational SFT format)
//   sharegpt  conversations: list<struct<from: string, value: string>>
//   alpaca    instruction, input, output (+ system when a record has one): string columns
// Import also accepts `messages` / `conversations` stored as a JSON string column. Only the columns of the
// detected (or forced) layout are read; other columns are ignored and reported. Each row goes through the JSONL
// importer's own validation (toMessages: the same roles, fields and Unicode rules); fields that are null in the file
// count as absent. Import is all-or-nothing: every row is validated first (one row group at a time), any bad row →
// ImportError listing the first 50 by 1-based row number, store untouched; then batched writes with dedup by
// content hash and rollback of written batches if a later one fails — the JSONL rules exactly.
// Bounded against hostile files: a size cap, the PAR1 magic, a row cap, only SNAPPY/uncompressed codecs, every
// page of the columns read walked by parquet-guard.ts before hyparquet decodes it (counts and runs within bounds),
// and SNAPPY decoded by parquet-guard's bounded decoder (an impossible declared size is refused before allocation).
import {
  parquetMetadataAsync, parquetReadObjects,
  type AsyncBuffer, type Compressors, type FileMetaData, type SchemaElement,
} from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { ImportError, StoreValidationError, type ImportIssue } from './errors.ts';
import { checkColumnPages, snappyDecompress } from './parquet-guard.ts';
import { fromMessages, JSONL_FORMATS, toMessages, writeImported, type JsonlFormat } from './io.ts';
import { sanitize, type ChatMessage } from './schema.ts';
import type { DistillStore } from './store.ts';

export type ParquetSource = Blob | ArrayBuffer | Uint8Array;

export interface ParquetImportOptions {
  /** 'auto' (default) detects the layout from the file's columns. */
  format?: JsonlFormat | 'auto';
  /** Records per write transaction (default 500). */
  batchSize?: number;
  /** Larger files are refused (default 1 GiB). */
  maxBytes?: number;
  /** Files with more rows are refused (default 10,000,000). */
  maxRows?: number;
  /** Recorded as provenance.teacher.model of the imported records (e.g. the file name). */
  sourceName?: string;
}

export interface ParquetImportResult {
  format: JsonlFormat;
  rows: number;
  written: number;
  /** Rows whose conversation appeared earlier in the same file. */
  duplicatesInFile: number;
  /** Rows whose conversation was already in the dataset. */
  duplicatesInDataset: number;
  /** Top-level columns of the file that the layout does not use (not read). */
  ignoredColumns: string[];
}

export interface ParquetExportOptions {
  /** Column layout (default 'openai': a `messages` list<struct<role, content>> column). */
  format?: JsonlFormat;
  /** Records read per page (default 500). */
  pageSize?: number;
  /** Add a `provenance` column (JSON text; teacher, params, usage — never credentials). */
  includeProvenance?: boolean;
  /** Called for records the layout cannot represent (multi-turn conversations in Alpaca); they are skipped. */
  onSkip?: (recordId: number, reason: string) => void;
  /** Rows per row group (default 10,000). */
  rowGroupSize?: number;
}

const MAX_ISSUES = 50;
const IMPORT_DEFAULTS = { format: 'auto' as JsonlFormat | 'auto', batchSize: 500, maxBytes: 2 ** 30, maxRows: 10_000_000, sourceName: '' };
const NAMES: Record<JsonlFormat, string> = { openai: 'OpenAI messages', alpaca: 'Alpaca', sharegpt: 'ShareGPT' };
/** Columns each layout reads; the first ones are required. */
const LAYOUT_COLUMNS: Record<JsonlFormat, { required: string[]; optional: string[] }> = {
  openai: { required: ['messages'], optional: [] },
  sharegpt: { required: ['conversations'], optional: [] },
  alpaca: { required: ['instruction', 'output'], optional: ['input', 'system'] },
};

// ------------------------------------------------------------------------------------------- schema helpers

/** Schema elements of an OPTIONAL list<struct<fields: string>> column (pyarrow's layout: list / element). */
export function structListSchema(name: string, fields: string[]): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', repetition_type: 'OPTIONAL', num_children: fields.length },
    ...fields.map((f): SchemaElement => ({ name: f, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' })),
  ];
}

export type LeafType = 'STRING' | 'INT32' | 'FLOAT';

function leaf(name: string, t: LeafType): SchemaElement {
  return t === 'STRING'
    ? { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }
    : { name, type: t, repetition_type: 'OPTIONAL' };
}

/** Schema elements of an OPTIONAL scalar column. */
export function scalarSchema(name: string, t: LeafType): SchemaElement[] {
  return [leaf(name, t)];
}

/** Schema elements of an OPTIONAL list<...list<t>> column, `depth` lists deep (1 = list<t>). */
export function listSchema(name: string, t: LeafType, depth: number): SchemaElement[] {
  const out: SchemaElement[] = [];
  for (let d = 0; d < depth; d++) {
    out.push({ name: d === 0 ? name : 'element', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 });
    out.push({ name: 'list', repetition_type: 'REPEATED', num_children: 1 });
  }
  out.push(leaf('element', t));
  return out;
}

export interface ParquetColumn {
  /** Schema elements of the column (its own element first), e.g. from structListSchema / listSchema. */
  schema: SchemaElement[];
  /** One value per row (null for none). */
  data: unknown[];
}

/** Writes columns (all of equal length) as one Parquet file (SNAPPY, statistics on). */
export function writeParquet(columns: ParquetColumn[], opts: { rowGroupSize?: number; kvMetadata?: Record<string, string> } = {}): Uint8Array<ArrayBuffer> {
  const rows = columns[0]?.data.length ?? 0;
  for (const c of columns) {
    if (c.data.length !== rows) throw new Error(`writeParquet: column "${c.schema[0]?.name}" has ${c.data.length} values, expected ${rows}`);
  }
  const schema: SchemaElement[] = [{ name: 'schema', num_children: columns.length }, ...columns.flatMap((c) => c.schema)];
  const buf = parquetWriteBuffer({
    columnData: columns.map((c) => ({ name: c.schema[0]!.name, data: c.data as never })),
    schema,
    rowGroupSize: opts.rowGroupSize ?? 10_000,
    kvMetadata: Object.entries(opts.kvMetadata ?? {}).map(([key, value]) => ({ key, value })),
    createdBy: 'webgpu-distill (hyparquet-writer)',
  });
  return new Uint8Array(buf);
}

// --------------------------------------------------------------------------------------------------- export

/** The dataset's records as one Parquet file in the given layout (see the file banner). */
export async function exportParquet(store: DistillStore, datasetId: string, options: ParquetExportOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  const format = options.format ?? 'openai';
  if (!JSONL_FORMATS.includes(format)) throw new StoreValidationError(`exportParquet: unknown format "${String(format)}"`);
  if (!(await store.getDataset(datasetId))) throw new StoreValidationError(`exportParquet: no dataset "${datasetId}"`);
  const pageSize = options.pageSize ?? 500;
  const lines: Record<string, unknown>[] = [];
  const provenance: string[] = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await store.getRecords(datasetId, { offset, limit: pageSize });
    for (const r of page) {
      const line = fromMessages(r.messages, format);
      if (!line) {
        options.onSkip?.(r.id, `${NAMES[format]} holds one system?/user/assistant exchange; record ${r.id} has ${r.messages.length} messages`);
        continue;
      }
      lines.push(line);
      if (options.includeProvenance) provenance.push(JSON.stringify(sanitize(r.provenance, `record ${r.id}.provenance`)));
    }
    if (page.length < pageSize) break;
  }
  const columns: ParquetColumn[] = [];
  if (format === 'openai') {
    columns.push({ schema: structListSchema('messages', ['role', 'content']), data: lines.map((l) => l.messages) });
  } else if (format === 'sharegpt') {
    columns.push({ schema: structListSchema('conversations', ['from', 'value']), data: lines.map((l) => l.conversations) });
  } else {
    for (const f of ['instruction', 'input', 'output']) columns.push({ schema: scalarSchema(f, 'STRING'), data: lines.map((l) => l[f]) });
    if (lines.some((l) => l.system !== undefined)) columns.push({ schema: scalarSchema('system', 'STRING'), data: lines.map((l) => l.system ?? null) });
  }
  if (options.includeProvenance) columns.push({ schema: scalarSchema('provenance', 'STRING'), data: provenance });
  return writeParquet(columns, { rowGroupSize: options.rowGroupSize ?? 10_000, kvMetadata: { 'webgpu-distill.format': format } });
}

// --------------------------------------------------------------------------------------------------- import

function asyncBufferOf(source: ParquetSource): AsyncBuffer {
  if (source instanceof Uint8Array) {
    const copy = source.byteOffset === 0 && source.byteLength === source.buffer.byteLength ? source.buffer : source.slice().buffer;
    return { byteLength: copy.byteLength, slice: (s, e) => copy.slice(s, e) as ArrayBuffer };
  }
  if (source instanceof ArrayBuffer) return { byteLength: source.byteLength, slice: (s, e) => source.slice(s, e) };
  return { byteLength: source.size, slice: (s, e) => source.slice(s, e).arrayBuffer() };
}

const SAFE_COMPRESSORS: Compressors = { SNAPPY: snappyDecompress };

function decompressPage(bytes: Uint8Array, size: number, codec: string): Uint8Array {
  if (codec === 'SNAPPY') return snappyDecompress(bytes, size);
  if (bytes.length !== size) throw new Error(`an uncompressed page of ${bytes.length} bytes declares ${size}`);
  return bytes;
}

function refuse(message: string): never {
  throw new ImportError(`Import refused: ${message}; nothing was written.`, [], 0);
}

/** Reads and checks the footer: magic, metadata, rows, codecs of the columns to be read. */
async function openParquet(file: AsyncBuffer, maxBytes: number, maxRows: number): Promise<FileMetaData> {
  if (file.byteLength > maxBytes) refuse(`the Parquet file is ${file.byteLength} bytes, over the limit of ${maxBytes}`);
  if (file.byteLength < 12) refuse(`not a Parquet file (${file.byteLength} bytes; too short)`);
  const head = new Uint8Array(await file.slice(0, 4));
  const tail = new Uint8Array(await file.slice(file.byteLength - 4));
  const magic = (b: Uint8Array) => String.fromCharCode(...b) === 'PAR1';
  if (!magic(head) || !magic(tail)) refuse('not a Parquet file (no "PAR1" magic at its start and end)');
  let meta: FileMetaData;
  try {
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    refuse(`the Parquet footer is corrupt (${(e as Error).message.slice(0, 200)})`);
  }
  const rows = Number(meta.num_rows);
  if (!Number.isSafeInteger(rows) || rows < 0) refuse(`the Parquet footer is corrupt (row count ${String(meta.num_rows)})`);
  if (rows > maxRows) refuse(`the Parquet file has ${rows} rows, over the limit of ${maxRows}`);
  const groupRows = meta.row_groups.reduce((s, g) => s + Number(g.num_rows), 0);
  if (groupRows !== rows) refuse(`the Parquet footer is corrupt (row groups hold ${groupRows} rows, the file says ${rows})`);
  return meta;
}

function topColumns(meta: FileMetaData): string[] {
  const out: string[] = [];
  const schema = meta.schema;
  // Walk the flattened schema tree: children of the root, skipping each child's subtree.
  let i = 1;
  const skip = (at: number): number => {
    let next = at + 1;
    for (let c = 0; c < (schema[at]?.num_children ?? 0); c++) next = skip(next);
    return next;
  };
  while (i < schema.length) {
    out.push(schema[i]!.name);
    i = skip(i);
  }
  return out;
}

function detectLayout(columns: string[]): JsonlFormat | undefined {
  if (columns.includes('messages')) return 'openai';
  if (columns.includes('conversations')) return 'sharegpt';
  if (columns.includes('instruction') && columns.includes('output')) return 'alpaca';
  return undefined;
}

function checkCodecs(meta: FileMetaData, read: string[]): void {
  for (const [g, group] of meta.row_groups.entries()) {
    for (const chunk of group.columns) {
      const md = chunk.meta_data;
      if (!md || !read.includes(md.path_in_schema[0] ?? '')) continue;
      if (md.codec !== 'SNAPPY' && md.codec !== 'UNCOMPRESSED') {
        refuse(
          `column "${md.path_in_schema.join('.')}" (row group ${g}) is compressed with ${md.codec}; this importer reads SNAPPY or ` +
            "uncompressed Parquet (pyarrow's default is SNAPPY: e.g. pandas df.to_parquet(path, compression='snappy'))",
        );
      }
    }
  }
}

/** Nulls count as absent; struct fields that are null are dropped; JSON-text columns are parsed. */
function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = stripNulls(x);
    return out;
  }
  return v;
}

/** Converts one row of `format` to chat messages; throws StoreValidationError with the reason. */
function rowMessages(row: Record<string, unknown>, format: JsonlFormat): ChatMessage[] {
  const obj: Record<string, unknown> = {};
  const { required, optional } = LAYOUT_COLUMNS[format];
  for (const c of [...required, ...optional]) {
    let v = row[c];
    if (v === null || v === undefined) continue;
    if ((c === 'messages' || c === 'conversations') && typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch (e) {
        throw new StoreValidationError(`${c}: a text column must hold a JSON list (${(e as Error).message.slice(0, 120)})`);
      }
    }
    obj[c] = stripNulls(v);
  }
  return toMessages(obj, format);
}

/** Rows of the file, one row group at a time, with their 1-based row numbers. */
async function* readRows(file: AsyncBuffer, meta: FileMetaData, columns: string[]): AsyncGenerator<{ row: number; value: Record<string, unknown> }> {
  let start = 0;
  for (const [g, group] of meta.row_groups.entries()) {
    const n = Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata: meta, columns, rowStart: start, rowEnd: start + n, compressors: SAFE_COMPRESSORS });
    } catch (e) {
      refuse(`row group ${g} (rows ${start + 1}–${start + n}) of the Parquet file is corrupt (${(e as Error).message.slice(0, 200)})`);
    }
    if (rows.length !== n) refuse(`row group ${g} of the Parquet file is corrupt (${rows.length} rows decoded, ${n} declared)`);
    for (const [i, value] of rows.entries()) yield { row: start + i + 1, value };
    start += n;
  }
}

/**
 * Validates every row of a Parquet file, then (only if all are valid) writes the conversations into the dataset in
 * batched transactions, skipping conversations already in the file or the dataset. A bad row → ImportError (first
 * 50 bad rows, by 1-based row number, in `issues[].line`) and nothing is written; a corrupt or unsupported file →
 * ImportError saying why; a failure while writing deletes the batches already written before rethrowing.
 */
export async function importParquet(store: DistillStore, datasetId: string, source: ParquetSource, options: ParquetImportOptions = {}): Promise<ParquetImportResult> {
  for (const k of Object.keys(options)) {
    if (!(k in IMPORT_DEFAULTS)) throw new StoreValidationError(`importParquet: unknown option "${k}" (allowed: ${Object.keys(IMPORT_DEFAULTS).join(', ')})`);
  }
  const opts = { ...IMPORT_DEFAULTS, ...options };
  if (opts.format !== 'auto' && !JSONL_FORMATS.includes(opts.format)) throw new StoreValidationError(`importParquet: unknown format "${String(opts.format)}"`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new StoreValidationError(`importParquet: batchSize must be an integer ≥ 1, got ${opts.batchSize}`);
  if (!(source instanceof Blob || source instanceof ArrayBuffer || source instanceof Uint8Array)) {
    throw new StoreValidationError('importParquet: source must be a Blob, ArrayBuffer or Uint8Array');
  }
  if (!(await store.getDataset(datasetId))) throw new StoreValidationError(`importParquet: no dataset "${datasetId}"`);

  const file = asyncBufferOf(source);
  const meta = await openParquet(file, opts.maxBytes, opts.maxRows);
  const all = topColumns(meta);
  const format = opts.format === 'auto' ? detectLayout(all) : opts.format;
  if (!format) refuse(`the Parquet file has no known layout: needs a "messages", "conversations" or "instruction" + "output" column (it has: ${all.join(', ') || 'no columns'})`);
  const missing = LAYOUT_COLUMNS[format].required.filter((c) => !all.includes(c));
  if (missing.length > 0) refuse(`the Parquet file is not in ${NAMES[format]} layout: no column ${missing.map((c) => `"${c}"`).join(', ')} (it has: ${all.join(', ')})`);
  const read = [...LAYOUT_COLUMNS[format].required, ...LAYOUT_COLUMNS[format].optional].filter((c) => all.includes(c));
  checkCodecs(meta, read);
  const rows = Number(meta.num_rows);
  if (rows === 0) refuse('the Parquet file has no rows');
  try {
    await checkColumnPages(file, meta, read, decompressPage);
  } catch (e) {
    refuse(`the Parquet file is corrupt: ${(e as Error).message.slice(0, 300)}`);
  }

  // Pass 1: validate every row; nothing is written.
  const issues: ImportIssue[] = [];
  let badRows = 0;
  for await (const { row, value } of readRows(file, meta, read)) {
    try {
      rowMessages(value, format);
    } catch (e) {
      badRows++;
      if (issues.length < MAX_ISSUES) issues.push({ line: row, reason: (e as Error).message });
    }
  }
  if (badRows > 0) {
    const list = issues.map((i) => `  row ${i.line}: ${i.reason}`).join('\n');
    throw new ImportError(
      `Import refused: ${badRows} of ${rows} rows are invalid ${NAMES[format]} (Parquet columns ${read.join(', ')}); nothing was written. ` +
        `Fix these rows and import again${badRows > MAX_ISSUES ? ` (first ${MAX_ISSUES} shown)` : ''}:\n${list}`,
      issues,
      badRows,
    );
  }

  // Pass 2: read again, write in batches, dedup by content hash; roll back what was written if a batch fails.
  const result: ParquetImportResult = { format, rows, written: 0, duplicatesInFile: 0, duplicatesInDataset: 0, ignoredColumns: all.filter((c) => !read.includes(c)) };
  const fmt: JsonlFormat = format;
  async function* conversations(): AsyncGenerator<ChatMessage[]> {
    for await (const { value } of readRows(file, meta, read)) yield rowMessages(value, fmt);
  }
  Object.assign(result, await writeImported(store, datasetId, conversations(), {
    params: { format, file: 'parquet' }, sourceName: opts.sourceName, batchSize: opts.batchSize, where: 'importParquet',
  }));
  return result;
}
