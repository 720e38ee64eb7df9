// Errors of the distillation data store (src/store/): each names what went wrong, where, and what to do.
// They keep a stable `name` so they survive the worker boundary (which keeps name, message and stack).

/** Bad input to the store: a record, dataset, job or patch that does not match the schema. */
export class StoreValidationError extends Error {
  override name = 'StoreValidationError';
}

/** A provenance/params/config object carries something that looks like a credential. Nothing is written. */
export class SecretLeakError extends Error {
  override name = 'SecretLeakError';
}

/** The browser refused a write for lack of space. The transaction was aborted: nothing of the batch is written. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';
  constructor(
    message: string,
    readonly usage: number | undefined,
    readonly quota: number | undefined,
  ) {
    super(message);
  }
}

/** Something the caller named (dataset, job, record) does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Another runner took over the job (e.g. a second tab resumed it); this runner's commit was refused. */
export class JobConflictError extends Error {
  override name = 'JobConflictError';
}

/** One bad line of an import file. */
export interface ImportIssue {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
}

/** An import was refused: lists the first bad lines; the store is unchanged. */
export class ImportError extends Error {
  override name = 'ImportError';
  constructor(
    message: string,
    /** The first 50 bad lines, in file order. */
    readonly issues: ImportIssue[],
    /** How many lines were bad in all. */
    readonly badLines: number,
  ) {
    super(message);
  }
}

/** True for a DOMException (or a look-alike from another realm) named QuotaExceededError. */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const name = (e as { name?: unknown }).name;
  return name === 'QuotaExceededError';
}
