// JSONL import and export of chat records in three formats: OpenAI messages ({"messages": [...]}), Alpaca
// ({"instruction", "input", "output"}) and ShareGPT ({"conversations": [{"from", "value"}]}), detected per file
// (from its first recognisable line) or forced. Import is all-or-nothing: every line is parsed and validated
// first; any bad line → ImportError listing the first 50 bad lines by number, store untouched. A valid file is
// then written in batched transactions with dedup by content hash; if a later batch fails, the batches already
// written are deleted again. Export streams records page by page and never includes provenance unless asked
// (and provenance never holds secrets: sanitize refuses them on write). Parquet: src/store/parquet.ts (same rules).
import { ImportError, StoreValidationError, type ImportIssue } from './errors.ts';
import { checkMessages, contentHash, describe, sanitize, type ChatMessage, type Json, type Provenance, type RecordInput } from './schema.ts';
import type { DistillStore } from './store.ts';

export type JsonlFormat = 'openai' | 'alpaca' | 'sharegpt';
export const JSONL_FORMATS: readonly JsonlFormat[] = ['openai', 'alpaca', 'sharegpt'];
const FORMAT_NAMES: Record<JsonlFormat, string> = { openai: 'OpenAI messages', alpaca: 'Alpaca', sharegpt: 'ShareGPT' };

export interface ImportOptions {
  /** 'auto' (default) detects the format from the file's first recognisable line. */
  format?: JsonlFormat | 'auto';
  /** Records per write transaction (default 500). */
  batchSize?: number;
  /** Longer lines are refused (default 1,048,576 characters). */
  maxLineChars?: number;
  /** Recorded as provenance.teacher.model of the imported records (e.g. the file name). */
  sourceName?: string;
}

export interface ImportResult {
  format: JsonlFormat;
  /** Non-blank lines read. */
  lines: number;
  written: number;
  /** Lines whose conversation appeared earlier in the same file. */
  duplicatesInFile: number;
  /** Lines whose conversation was already in the dataset. */
  duplicatesInDataset: number;
  /** Whitespace-only lines, which are skipped. */
  blankLines: number;
}

const MAX_ISSUES = 50;
const IMPORT_DEFAULTS = { format: 'auto' as JsonlFormat | 'auto', batchSize: 500, maxLineChars: 1_048_576, sourceName: '' };

// -------------------------------------------------------------------------------------------------- reading

/** Lines of a string or Blob (streamed), without their line endings; a leading BOM is dropped. */
export async function* readLines(source: string | Blob): AsyncGenerator<string> {
  if (typeof source === 'string') {
    const lines = source.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const [i, line] of lines.entries()) yield clean(line, i === 0);
    return;
  }
  const reader = source.stream().pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += value;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      yield clean(rest.slice(0, nl), first);
      first = false;
      rest = rest.slice(nl + 1);
    }
  }
  if (rest !== '') yield clean(rest, first);
}

function clean(line: string, first: boolean): string {
  if (first && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

// ------------------------------------------------------------------------------------------ parsing formats

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The format an object looks like, or undefined. */
export function detectFormat(obj: unknown): JsonlFormat | undefined {
  if (!isObject(obj)) return undefined;
  if ('messages' in obj) return 'openai';
  if ('conversations' in obj) return 'sharegpt';
  if ('instruction' in obj || 'output' in obj) return 'alpaca';
  return undefined;
}

function onlyKeys(obj: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new StoreValidationError(`unsupported field "${k}" (${what} lines allow: ${allowed.join(', ')})`);
  }
}

function requireString(v: unknown, where: string, nonEmpty: boolean): string {
  if (typeof v !== 'string') throw new StoreValidationError(`${where}: must be a string, got ${v === undefined ? 'nothing (missing)' : describe(v)}`);
  if (nonEmpty && v.trim() === '') throw new StoreValidationError(`${where}: must not be empty`);
  return v;
}

const SHAREGPT_ROLES: Record<string, ChatMessage['role']> = { human: 'user', gpt: 'assistant', system: 'system' };

/** Converts one parsed line of `format` to chat messages; throws StoreValidationError with the reason. */
export function toMessages(obj: unknown, format: JsonlFormat): ChatMessage[] {
  if (!isObject(obj)) throw new StoreValidationError(`expected a JSON object, got ${describe(obj)}`);
  const want = FORMAT_NAMES[format];
  if (format === 'openai') {
    if (!('messages' in obj)) throw new StoreValidationError(`not in ${want} format: missing "messages"`);
    onlyKeys(obj, ['messages'], want);
    return checkMessages(obj.messages, 'messages');
  }
  if (format === 'alpaca') {
    if (!('instruction' in obj) || !('output' in obj)) throw new StoreValidationError(`not in ${want} format: needs "instruction" and "output"`);
    onlyKeys(obj, ['instruction', 'input', 'output', 'system'], want);
    const instruction = requireString(obj.instruction, 'instruction', true);
    const input = obj.input === undefined ? '' : requireString(obj.input, 'input', false);
    const messages: unknown[] = [];
    if (obj.system !== undefined) messages.push({ role: 'system', content: requireString(obj.system, 'system', false) });
    messages.push({ role: 'user', content: input.trim() === '' ? instruction : `${instruction}\n\n${input}` });
    messages.push({ role: 'assistant', content: requireString(obj.output, 'output', false) });
    return checkMessages(messages, 'alpaca');
  }
  if (!('conversations' in obj)) throw new StoreValidationError(`not in ${want} format: missing "conversations"`);
  onlyKeys(obj, ['conversations', 'id'], want);
  const conv = obj.conversations;
  if (!Array.isArray(conv) || conv.length === 0) throw new StoreValidationError(`conversations: must be a non-empty array, got ${describe(conv)}`);
  const messages = conv.map((turn, i) => {
    const where = `conversations[${i}]`;
    if (!isObject(turn)) throw new StoreValidationError(`${where}: must be an object {from, value}, got ${describe(turn)}`);
    onlyKeys(turn, ['from', 'value'], `${want} turn`);
    const role = typeof turn.from === 'string' ? SHAREGPT_ROLES[turn.from] : undefined;
    if (!role) throw new StoreValidationError(`${where}.from: must be one of human, gpt, system, got ${describe(turn.from)}`);
    return { role, content: requireString(turn.value, `${where}.value`, false) };
  });
  return checkMessages(messages, 'conversations');
}

/** One line of `format` for a conversation, or undefined when the format cannot represent it. */
export function fromMessages(messages: ChatMessage[], format: JsonlFormat): Record<string, unknown> | undefined {
  if (format === 'openai') return { messages: messages.map((m) => ({ role: m.role, content: m.content })) };
  if (format === 'sharegpt') {
    const from = { user: 'human', assistant: 'gpt', system: 'system' } as const;
    return { conversations: messages.map((m) => ({ from: from[m.role], value: m.content })) };
  }
  const hasSystem = messages[0]?.role === 'system';
  const rest = hasSystem ? messages.slice(1) : messages;
  if (rest.length !== 2 || rest[0]!.role !== 'user' || rest[1]!.role !== 'assistant') return undefined;
  const line: Record<string, unknown> = { instruction: rest[0]!.content, input: '', output: rest[1]!.content };
  if (hasSystem) line.system = messages[0]!.content;
  return line;
}

// ------------------------------------------------------------------------------------------------- import

/** Parses a line; returns its messages or a reason. */
function parseLine(text: string, format: JsonlFormat | undefined, maxLineChars: number): { obj?: unknown; messages?: ChatMessage[]; reason?: string } {
  if (text.length > maxLineChars) return { reason: `line is ${text.length} characters, over the limit of ${maxLineChars}` };
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return { reason: `invalid JSON (${(e as Error).message.slice(0, 120)})` };
  }
  if (!format) return { obj };
  try {
    return { obj, messages: toMessages(obj, format) };
  } catch (e) {
    return { obj, reason: (e as Error).message };
  }
}

/**
 * Validates every line of `source`, then (only if all are valid) writes the conversations into the dataset in
 * batched transactions, skipping conversations already in the file or the dataset. Any bad line → ImportError
 * (first 50 bad lines, by number and reason) and nothing is written. A failure while writing (e.g. the disk is
 * full) deletes the batches this import already wrote before rethrowing, so the dataset is as before.
 */
export async function importJsonl(store: DistillStore, datasetId: string, source: string | Blob, options: ImportOptions = {}): Promise<ImportResult> {
  for (const k of Object.keys(options)) {
    if (!(k in IMPORT_DEFAULTS)) throw new StoreValidationError(`importJsonl: unknown option "${k}" (allowed: ${Object.keys(IMPORT_DEFAULTS).join(', ')})`);
  }
  const opts = { ...IMPORT_DEFAULTS, ...options };
  if (opts.format !== 'auto' && !JSONL_FORMATS.includes(opts.format)) throw new StoreValidationError(`importJsonl: unknown format "${String(opts.format)}"`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new StoreValidationError(`importJsonl: batchSize must be an integer ≥ 1, got ${opts.batchSize}`);
  if (!(await store.getDataset(datasetId))) throw new StoreValidationError(`importJsonl: no dataset "${datasetId}"`);

  // Pass 1: parse and validate everything; nothing is written.
  let format: JsonlFormat | undefined = opts.format === 'auto' ? undefined : opts.format;
  let detectedAt = 0;
  const pending: { line: number; obj: unknown }[] = []; // lines parsed before the format was known
  const issues: ImportIssue[] = [];
  let badLines = 0;
  let lines = 0;
  let blankLines = 0;
  const bad = (line: number, reason: string): void => {
    badLines++;
    if (issues.length < MAX_ISSUES) issues.push({ line, reason });
  };
  let lineNo = 0;
  for await (const text of readLines(source)) {
    lineNo++;
    if (text.trim() === '') { blankLines++; continue; }
    lines++;
    const r = parseLine(text, format, opts.maxLineChars);
    if (r.reason) { bad(lineNo, r.reason); continue; }
    if (!format) {
      const f = detectFormat(r.obj);
      if (!f) { pending.push({ line: lineNo, obj: r.obj }); continue; }
      format = f;
      detectedAt = lineNo;
      for (const p of pending) {
        try { toMessages(p.obj, format); } catch (e) { bad(p.line, (e as Error).message); }
      }
      pending.length = 0;
      try { toMessages(r.obj, format); } catch (e) { bad(lineNo, (e as Error).message); }
    }
  }
  if (!format) {
    for (const p of pending) bad(p.line, 'not in any known format (needs "messages", "conversations" or "instruction"/"output")');
    if (lines === 0) throw new ImportError('Import refused: the file has no records (it is empty or blank).', [], 0);
  }
  issues.sort((a, b) => a.line - b.line);
  if (badLines > 0 || !format) {
    const how = opts.format === 'auto' ? (format ? `detected from line ${detectedAt}` : 'could not be detected') : 'forced';
    const list = issues.map((i) => `  line ${i.line}: ${i.reason}`).join('\n');
    throw new ImportError(
      `Import refused: ${badLines} of ${lines} lines are invalid${format ? ` ${FORMAT_NAMES[format]}` : ''} (format ${how}); ` +
        `nothing was written. Fix these lines and import again${badLines > MAX_ISSUES ? ` (first ${MAX_ISSUES} shown)` : ''}:\n${list}`,
      issues,
      badLines,
    );
  }

  // Pass 2: read again, write in batches, dedup by content hash; roll back what was written if a batch fails.
  const result: ImportResult = { format, lines, written: 0, duplicatesInFile: 0, duplicatesInDataset: 0, blankLines };
  const fmt: JsonlFormat = format;
  async function* conversations(): AsyncGenerator<ChatMessage[]> {
    for await (const text of readLines(source)) {
      if (text.trim() !== '') yield toMessages(JSON.parse(text), fmt);
    }
  }
  Object.assign(result, await writeImported(store, datasetId, conversations(), {
    params: { format }, sourceName: opts.sourceName, batchSize: opts.batchSize, where: 'importJsonl',
  }));
  return result;
}

/**
 * Pass 2 of an all-or-nothing import (JSONL, Parquet): writes already-validated conversations in batches with
 * import provenance, dedup by content hash (in the file and against the dataset), and deletes every record it
 * wrote if anything fails before the end.
 */
export async function writeImported(
  store: DistillStore, datasetId: string, conversations: AsyncIterable<ChatMessage[]>,
  o: { params: { [k: string]: Json }; sourceName: string; batchSize: number; where: string },
): Promise<{ written: number; duplicatesInFile: number; duplicatesInDataset: number }> {
  const counts = { written: 0, duplicatesInFile: 0, duplicatesInDataset: 0 };
  const provenance: Provenance = {
    teacher: { kind: 'import', model: o.sourceName, baseURLHost: '' },
    strategy: 'import',
    params: o.params,
    usage: { input: 0, output: 0 },
    time: Date.now(),
  };
  sanitize(provenance, `${o.where}: provenance`);
  const seen = new Set<string>();
  const writtenIds: number[] = [];
  let batch: ChatMessage[][] = [];
  const flush = async (): Promise<void> => {
    const hashes = await Promise.all(batch.map((m) => contentHash(m)));
    const records: RecordInput[] = [];
    batch.forEach((messages, i) => {
      const h = hashes[i]!;
      if (seen.has(h)) { counts.duplicatesInFile++; return; }
      seen.add(h);
      records.push({ key: `sha256:${h}`, messages, provenance });
    });
    batch = [];
    if (records.length === 0) return;
    const r = await store.putRecords(datasetId, records, { dedupByContent: true });
    writtenIds.push(...r.ids);
    counts.written += r.written;
    counts.duplicatesInDataset += r.duplicates;
  };
  try {
    for await (const messages of conversations) {
      batch.push(messages);
      if (batch.length >= o.batchSize) await flush();
    }
    await flush();
  } catch (e) {
    if (writtenIds.length > 0) {
      try {
        await store.deleteRecords(datasetId, writtenIds);
      } catch (rollback) {
        throw new Error(`${(e as Error).message} — and rolling back the ${writtenIds.length} records already imported failed: ${(rollback as Error).message}`);
      }
    }
    throw e;
  }
  return counts;
}

// ------------------------------------------------------------------------------------------------- export

export interface ExportOptions {
  /** Records read per page (default 500). */
  pageSize?: number;
  /** Add each record's provenance (teacher, params, usage; never credentials) as a "provenance" field. */
  includeProvenance?: boolean;
  /** Called for records the format cannot represent (e.g. multi-turn conversations in Alpaca); they are skipped. */
  onSkip?: (recordId: number, reason: string) => void;
}

/** Streams the dataset's records as JSONL lines (each ending in "\n") in `format`. */
export async function* exportJsonl(store: DistillStore, datasetId: string, format: JsonlFormat, options: ExportOptions = {}): AsyncGenerator<string> {
  if (!JSONL_FORMATS.includes(format)) throw new StoreValidationError(`exportJsonl: unknown format "${String(format)}"`);
  const pageSize = options.pageSize ?? 500;
  for (let offset = 0; ; offset += pageSize) {
    const page = await store.getRecords(datasetId, { offset, limit: pageSize });
    for (const r of page) {
      const line = fromMessages(r.messages, format);
      if (!line) {
        options.onSkip?.(r.id, `${FORMAT_NAMES[format]} holds one system?/user/assistant exchange; record ${r.id} has ${r.messages.length} messages`);
        continue;
      }
      if (options.includeProvenance) line.provenance = sanitize(r.provenance, `record ${r.id}.provenance`);
      yield `${JSON.stringify(line)}\n`;
    }
    if (page.length < pageSize) return;
  }
}

/** The whole export as one string (convenient for small datasets and tests). */
export async function exportJsonlText(store: DistillStore, datasetId: string, format: JsonlFormat, options: ExportOptions = {}): Promise<string> {
  let out = '';
  for await (const line of exportJsonl(store, datasetId, format, options)) out += line;
  return out;
}
