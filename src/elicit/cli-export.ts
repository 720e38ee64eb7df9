// The elicit command's output (Node only): a job's dataset written from the store as JSONL, in the order of the
// job's own work (records sorted by the numbers of their idempotency keys — `<job>:<strategy>:<input>:<answer>` —
// not by when they were committed, which a window may do out of order), so a run that was killed and resumed
// writes the same file as one that was not. Records go to `out` (openai | alpaca | sharegpt), then preference
// pairs as {"prompt", "chosen", "rejected"} lines; a feature job's top-k rows go to <out>.topk.jsonl ({"line",
// "turn", "ids", "logprobs"}, ids into the token table) and the table to <out>.vocab.json. Each file is written to
// a temporary name, fsynced and renamed: a reader never sees half a file.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { fromMessages, type JsonlFormat } from '../store/io.ts';
import { sanitize, type StoredPair, type StoredRecord } from '../store/schema.ts';
import type { DistillStore } from '../store/store.ts';
import { unpackTopKRows } from '../store/topk.ts';
import { datasetVocab } from '../store/topk-table.ts';

export interface ExportSummary {
  records: number;
  pairs: number;
  topkTokens: number;
  /** Records the format cannot hold (e.g. multi-turn in Alpaca), left out. */
  skipped: number;
}

/** The numbers after `<job>:<strategy>:` in an idempotency key (none for keys of another shape). */
function keyNumbers(key: string): number[] {
  return key.split(':').slice(2).map(Number).filter((n) => Number.isFinite(n));
}

/** Orders keys by their numbers (input, then answer/round/...), ties by the key itself. */
export function compareKeys(a: string, b: string): number {
  const x = keyNumbers(a);
  const y = keyNumbers(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length || (a < b ? -1 : a > b ? 1 : 0);
}

async function all<T>(page: (offset: number) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let offset = 0; ; offset += 1000) {
    const p = await page(offset);
    out.push(...p);
    if (p.length < 1000) return out;
  }
}

/** Writes `text` to `path` through a temporary file, fsynced, renamed into place. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Writes dataset `datasetId` of `store` to `out` (and the feature files when `feature`). */
export async function exportDataset(
  store: DistillStore, datasetId: string, out: string, o: { format: JsonlFormat; withProvenance: boolean; feature: boolean },
): Promise<ExportSummary> {
  const recs = (await all<StoredRecord>((offset) => store.getRecords(datasetId, { offset, limit: 1000 }))).sort((a, b) => compareKeys(a.key, b.key));
  const pairs = (await all<StoredPair>((offset) => store.getPairs(datasetId, { offset, limit: 1000 }))).sort((a, b) => compareKeys(a.key, b.key));
  const lines: string[] = [];
  const kept: StoredRecord[] = [];
  for (const r of recs) {
    const line = fromMessages(r.messages, o.format);
    if (!line) continue;
    if (o.withProvenance) line.provenance = sanitize(r.provenance, `record ${r.id}.provenance`);
    lines.push(JSON.stringify(line));
    kept.push(r);
  }
  for (const p of pairs) {
    const line: Record<string, unknown> = { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected };
    if (o.withProvenance) line.provenance = sanitize(p.provenance, `pair ${p.id}.provenance`);
    lines.push(JSON.stringify(line));
  }
  let topkTokens = 0;
  if (o.feature) {
    const topk: string[] = [];
    for (const [line, r] of kept.entries()) {
      for (const e of await store.getTopKOfRecord(r.id)) {
        const rows = unpackTopKRows(e.rows);
        topkTokens += rows.length;
        topk.push(JSON.stringify({ line, turn: e.turn, ids: rows.map((x) => Array.from(x.ids)), logprobs: rows.map((x) => Array.from(x.logprobs)) }));
      }
    }
    writeFileAtomic(`${out}.topk.jsonl`, topk.map((l) => `${l}\n`).join(''));
    writeFileAtomic(`${out}.vocab.json`, JSON.stringify(await datasetVocab(store, datasetId)));
  }
  writeFileAtomic(out, lines.map((l) => `${l}\n`).join(''));
  return { records: kept.length, pairs: pairs.length, topkTokens, skipped: recs.length - kept.length };
}
