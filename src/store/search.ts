// Substring search over a dataset's records (the Data stage's dataset browser): scans the records in insertion
// order through the store's own paging API (getRecords offset/limit), matching a query against every message's
// content (case-insensitive by default, after Unicode NFKC normalisation of both sides), and returns one page of
// the matches. No index is kept: a search is a scan, bounded by `maxScan`, cancellable by a signal.
// No DOM, no Node APIs.
import type { StoredRecord } from './schema.ts';
import type { DistillStore } from './store.ts';

export interface SearchOptions {
  /** Matches to skip (the page's start), default 0. */
  offset?: number;
  /** Matches to return, default 20. */
  limit?: number;
  /** Records read per store page, default 500. */
  pageSize?: number;
  /** Match case exactly (default false). */
  caseSensitive?: boolean;
  /** Stop after scanning this many records (default: no limit); `truncated` then says so. */
  maxScan?: number;
  signal?: AbortSignal;
}

export interface SearchResult {
  /** The page of matching records, in dataset order. */
  records: StoredRecord[];
  /** Whether at least one more match lies after this page. */
  more: boolean;
  /** Records read. */
  scanned: number;
  /** True when maxScan stopped the scan before the end of the dataset. */
  truncated: boolean;
}

function normalise(s: string, caseSensitive: boolean): string {
  const n = s.normalize('NFKC');
  return caseSensitive ? n : n.toLowerCase();
}

/** Whether any message of `record` contains `query` (already normalised the same way). */
export function recordMatches(record: Pick<StoredRecord, 'messages'>, query: string, caseSensitive = false): boolean {
  const q = normalise(query, caseSensitive);
  if (q === '') return true;
  return record.messages.some((m) => normalise(m.content, caseSensitive).includes(q));
}

/** One page of the records of `datasetId` whose messages contain `query` (an empty query matches every record). */
export async function searchRecords(store: DistillStore, datasetId: string, query: string, opts: SearchOptions = {}): Promise<SearchResult> {
  const offset = opts.offset ?? 0;
  const limit = opts.limit ?? 20;
  const pageSize = opts.pageSize ?? 500;
  const caseSensitive = opts.caseSensitive ?? false;
  const maxScan = opts.maxScan ?? Number.POSITIVE_INFINITY;
  for (const [k, v] of [['offset', offset], ['limit', limit], ['pageSize', pageSize]] as const) {
    if (!Number.isInteger(v) || v < (k === 'pageSize' ? 1 : 0)) throw new Error(`searchRecords: ${k} must be an integer ≥ ${k === 'pageSize' ? 1 : 0}, got ${v}`);
  }
  const q = normalise(query, caseSensitive);
  const out: StoredRecord[] = [];
  let skipped = 0;
  let scanned = 0;
  for (let at = 0; ; at += pageSize) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('search aborted', 'AbortError');
    const want = Math.min(pageSize, maxScan - scanned);
    if (want <= 0) return { records: out, more: false, scanned, truncated: true };
    const page = await store.getRecords(datasetId, { offset: at, limit: want });
    for (const r of page) {
      scanned++;
      if (q !== '' && !r.messages.some((m) => normalise(m.content, caseSensitive).includes(q))) continue;
      if (skipped < offset) { skipped++; continue; }
      if (out.length === limit) return { records: out, more: true, scanned, truncated: false };
      out.push(r);
    }
    if (page.length < want) return { records: out, more: false, scanned, truncated: false };
  }
}
