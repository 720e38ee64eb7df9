// A dataset's teacher-token table: the feature strategy (src/elicit/feature.ts) stores the teacher's tokens as
// strings, and each top-k row's ids index one table per dataset, kept in its feature jobs' cursors
// (`cursor.vocab: string[]`, id = position). Readers — KD runs aligning rows to the student's tokens, the
// TRL/DistillKit export, the CLI export — read it here, from the store, without the elicitation layer.
import { StoreValidationError } from './errors.ts';
import type { Json } from './schema.ts';
import type { DistillStore } from './store.ts';

/** The token table of a feature job's cursor ([] before its first commit). */
export function jobVocab(cursor: Json, where: string): string[] {
  if (cursor === null) return [];
  if (typeof cursor !== 'object' || Array.isArray(cursor)) throw new StoreValidationError(`${where}: the stored cursor is not an object (was the job created by another version?)`);
  const v = (cursor as Record<string, Json>).vocab ?? [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new StoreValidationError(`${where}: cursor.vocab must be a list of token strings`);
  return v as string[];
}

/**
 * The teacher-token table of a dataset: the longest `cursor.vocab` of its feature jobs, checked to extend every
 * other one (ids are stable across jobs). [] when the dataset has none.
 */
export async function datasetVocab(store: DistillStore, datasetId: string): Promise<string[]> {
  const tables = (await store.listJobs(datasetId))
    .filter((j) => j.kind === 'elicit:feature')
    .map((j) => jobVocab(j.cursor, `job ${j.id}`));
  tables.sort((a, b) => b.length - a.length);
  const longest = tables[0] ?? [];
  for (const t of tables) {
    if (t.some((s, i) => longest[i] !== s)) throw new StoreValidationError(`dataset "${datasetId}": the token tables of its feature jobs disagree (ids would be ambiguous)`);
  }
  return longest;
}
