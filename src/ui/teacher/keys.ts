// API keys of remote teachers, one per base URL. By default a key lives in this page's memory only (gone after a
// reload). When the user ticks "Remember the key on this device" it is also kept in localStorage under one entry of
// its own (REMEMBERED_KEYS_ENTRY, never under the 'distill:ui:*' preferences), which anyone using this browser
// profile can read. A key is never written anywhere else: not IndexedDB, not job configs, not exports, not logs.
// RemoteTeacher sends it only to its base URL, only in the Authorization header.

/** The localStorage entry holding remembered keys: JSON {baseURL: key}. */
export const REMEMBERED_KEYS_ENTRY = 'distill:teacher-api-keys';

const memory = new Map<string, string>();

/** The form of a base URL keys are filed under: trimmed, without trailing slashes (as RemoteTeacher uses it). */
export function keyBase(baseURL: string): string {
  return baseURL.trim().replace(/\/+$/, '');
}

function readRemembered(): Record<string, string> {
  try {
    const raw = localStorage.getItem(REMEMBERED_KEYS_ENTRY);
    const v: unknown = raw === null ? {} : JSON.parse(raw);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

function writeRemembered(all: Record<string, string>): void {
  try {
    if (Object.keys(all).length === 0) localStorage.removeItem(REMEMBERED_KEYS_ENTRY);
    else localStorage.setItem(REMEMBERED_KEYS_ENTRY, JSON.stringify(all));
  } catch {
    /* storage blocked: the key stays in memory only */
  }
}

/** The key for baseURL: the one entered in this page, else the remembered one, else ''. */
export function apiKeyFor(baseURL: string): string {
  const b = keyBase(baseURL);
  return memory.get(b) ?? readRemembered()[b] ?? '';
}

/** Whether a key for baseURL is remembered on this device. */
export function isKeyRemembered(baseURL: string): boolean {
  return keyBase(baseURL) in readRemembered();
}

/** Sets the key for baseURL in memory, and in localStorage when `remember` (else any remembered copy is removed). */
export function setApiKey(baseURL: string, key: string, remember: boolean): void {
  const b = keyBase(baseURL);
  if (b === '') return;
  if (key === '') memory.delete(b);
  else memory.set(b, key);
  const all = readRemembered();
  if (remember && key !== '') all[b] = key;
  else delete all[b];
  writeRemembered(all);
}

/** Removes the remembered copy of baseURL's key (the in-memory one stays for this page). */
export function forgetApiKey(baseURL: string): void {
  const all = readRemembered();
  delete all[keyBase(baseURL)];
  writeRemembered(all);
}

/** Removes every remembered key ("Remember the key on this device" turned off); in-memory keys stay for this page. */
export function forgetAllApiKeys(): void {
  writeRemembered({});
}
