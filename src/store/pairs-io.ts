// JSONL import of preference pairs (issue #24: a reward model or DPO from an imported preference dataset), in TRL's
// preference formats — standard {"prompt": "…", "chosen": "…", "rejected": "…"} and conversational {"prompt":
// [messages…], "chosen": [{"role": "assistant", …}], "rejected": [{"role": "assistant", …}]}, which is what our
// scale-out export writes (dpo/train.jsonl) — detected line by line. All-or-nothing, as the record importers: every
// line is parsed and validated first (an ImportError lists the first 50 bad lines by number, nothing written), then
// all pairs go in ONE transaction (putPairs), keyed by the content hash of prompt, chosen and rejected: a pair
// repeated in the file, or already in the dataset, is skipped and counted.
import { ImportError, StoreValidationError, type ImportIssue } from './errors.ts';
import { readLines, type ImportResult } from './io.ts';
import { checkMessages, contentHash, describe, type ChatMessage, type PairInput, type Provenance } from './schema.ts';
import type { DistillStore } from './store.ts';

export type PairFormat = 'standard' | 'conversational';

/** The record import's counts (io.ts ImportResult), with the pairs' form: one of TRL's, or both mixed in the file. */
export type PairImportResult = Omit<ImportResult, 'format'> & { format: PairFormat | 'mixed' };

const MAX_ISSUES = 50;
/** Columns a preference line may carry besides prompt, chosen and rejected (TRL datasets' scores, ids): ignored. */
const IGNORED = ['id', 'score_chosen', 'score_rejected', 'margin', 'source'];

/** Whether a parsed line looks like a preference pair (has "chosen" and "rejected"). */
export function isPairLine(obj: unknown): boolean {
  return typeof obj === 'object' && obj !== null && !Array.isArray(obj) && 'chosen' in obj && 'rejected' in obj;
}

/** An answer: a non-empty string, or a one-message list [{role: "assistant", content}]. */
function answer(v: unknown, where: string): { text: string; conversational: boolean } {
  if (typeof v === 'string') {
    if (v.trim() === '') throw new StoreValidationError(`${where}: must not be empty`);
    return { text: v, conversational: false };
  }
  if (Array.isArray(v)) {
    const m = checkMessages(v, where);
    if (m.length !== 1 || m[0]!.role !== 'assistant') throw new StoreValidationError(`${where}: a conversational answer is one assistant message [{"role": "assistant", "content": …}], got ${m.length} message(s) starting with ${m[0]?.role}`);
    if (m[0]!.content.trim() === '') throw new StoreValidationError(`${where}: must not be empty`);
    return { text: m[0]!.content, conversational: true };
  }
  throw new StoreValidationError(`${where}: must be a string or [{"role": "assistant", "content": …}], got ${v === undefined ? 'nothing (missing)' : describe(v)}`);
}

/** One parsed line as a pair's prompt (messages ending with the user's), chosen and rejected answers. */
export function toPair(obj: unknown): { prompt: ChatMessage[]; chosen: string; rejected: string; format: PairFormat } {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new StoreValidationError(`expected a JSON object, got ${describe(obj)}`);
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['prompt', 'chosen', 'rejected', ...IGNORED].includes(k)) throw new StoreValidationError(`unsupported field "${k}" (preference lines allow: prompt, chosen, rejected; ignored: ${IGNORED.join(', ')})`);
  }
  if (!('prompt' in o)) throw new StoreValidationError('missing "prompt" (a preference pair with an implicit prompt inside chosen/rejected is not read: give the prompt apart)');
  let prompt: ChatMessage[];
  if (typeof o.prompt === 'string') {
    if (o.prompt.trim() === '') throw new StoreValidationError('prompt: must not be empty');
    prompt = [{ role: 'user', content: o.prompt }];
  } else {
    prompt = checkMessages(o.prompt, 'prompt');
    if (prompt.at(-1)?.role !== 'user') throw new StoreValidationError(`prompt: its last message must be the user's, got ${prompt.at(-1)?.role ?? 'none'}`);
  }
  const chosen = answer(o.chosen, 'chosen'), rejected = answer(o.rejected, 'rejected');
  if (chosen.conversational !== rejected.conversational) throw new StoreValidationError('chosen and rejected must have the same form (both strings, or both [{"role": "assistant", …}])');
  if (chosen.text === rejected.text) throw new StoreValidationError('chosen and rejected are the same answer: nothing to prefer');
  return { prompt, chosen: chosen.text, rejected: rejected.text, format: typeof o.prompt === 'string' && !chosen.conversational ? 'standard' : 'conversational' };
}

/** Imports a preference JSONL file into a dataset's pairs, all or nothing. */
export async function importPairsJsonl(store: DistillStore, datasetId: string, source: string | Blob, o: { sourceName?: string; maxLineChars?: number } = {}): Promise<PairImportResult> {
  if (!(await store.getDataset(datasetId))) throw new StoreValidationError(`importPairsJsonl: no dataset "${datasetId}"`);
  const maxLineChars = o.maxLineChars ?? 1_048_576;
  const issues: ImportIssue[] = [];
  const parsed: ReturnType<typeof toPair>[] = [];
  let lines = 0, blankLines = 0, badLines = 0, lineNo = 0;
  for await (const text of readLines(source)) {
    lineNo++;
    if (text.trim() === '') { blankLines++; continue; }
    lines++;
    try {
      if (text.length > maxLineChars) throw new StoreValidationError(`line is ${text.length} characters, over the limit of ${maxLineChars}`);
      let obj: unknown;
      try { obj = JSON.parse(text); } catch (e) { throw new StoreValidationError(`not valid JSON (${(e as Error).message})`); }
      parsed.push(toPair(obj));
    } catch (e) {
      badLines++;
      if (issues.length < MAX_ISSUES) issues.push({ line: lineNo, reason: (e as Error).message });
    }
  }
  if (lines === 0) throw new ImportError('Import refused: the file has no preference pairs (it is empty or blank).', [], 0);
  if (badLines > 0) {
    throw new ImportError(
      `Import refused: ${badLines} of ${lines} lines are not valid preference pairs; nothing was written. Fix these lines and import again${badLines > MAX_ISSUES ? ` (first ${MAX_ISSUES} shown)` : ''}:\n${issues.map((i) => `  line ${i.line}: ${i.reason}`).join('\n')}`,
      issues, badLines,
    );
  }
  const formats = new Set(parsed.map((p) => p.format));
  const format = formats.size === 1 ? [...formats][0]! : 'mixed';
  const provenance: Provenance = { teacher: { kind: 'import', model: (o.sourceName ?? '').slice(0, 200), baseURLHost: '' }, strategy: 'import', params: { format: `preference-${format}` }, usage: { input: 0, output: 0 }, time: Date.now() };
  const seen = new Set<string>();
  const pairs: PairInput[] = [];
  let duplicatesInFile = 0;
  for (const p of parsed) {
    const key = `sha256:${await contentHash([...p.prompt, { role: 'assistant', content: p.chosen }, { role: 'assistant', content: p.rejected }])}`;
    if (seen.has(key)) { duplicatesInFile++; continue; }
    seen.add(key);
    pairs.push({ key, prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, provenance });
  }
  const r = await store.putPairs(datasetId, pairs);
  return { format, lines, written: r.written, duplicatesInFile, duplicatesInDataset: r.duplicates, blankLines };
}
