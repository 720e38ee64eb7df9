// The Teacher stage's state outside its views: which teacher is active (app-state.ts setActiveTeacher) and the
// stage's status line, the preferences that survive a reload (never a key: keys.ts holds those), and restoring the
// active teacher after a reload. A local teacher becomes active whenever the teacher worker finishes loading a
// model, whoever asked (the stage, a Data job, a reload): the worker holds one model, so the active local teacher is
// always the one it holds. A remote teacher becomes active when the stage's connection test passes or the user
// presses "Use this teacher".
import { hostOf } from '../../teacher/connection.ts';
import { activeTeacher, loadPref, on, savePref, setActiveTeacher, setStageStatus, stageStatus, type ActiveTeacher } from '../app-state.ts';
import { errorText } from '../dom.ts';
import { normalizePickedFiles } from '../../teacher/local-files.ts';
import type { LocalLoadProgress, LocalModelSource, LocalTeacherInfo } from '../../teacher/local-protocol.ts';
import { PRESET_NAMES, type PresetName } from '../../teacher/types.ts';
import { LazyRemoteTeacher } from '../../teacher/lazy-remote.ts';
import { apiKeyFor } from './keys.ts';
import { latestLoadId, loadTeacher, onTeacherLoad, reloadableOf, WorkerTeacher, type ReloadableSource } from './teacher-client.ts';

export type LocalDeviceChoice = 'auto' | 'webgpu' | 'wasm';

/** The local form (teacher.local). */
export interface LocalPrefs {
  kind: 'folder' | 'files' | 'hub';
  source: string;
  device: LocalDeviceChoice;
}

/** The remote form's non-secret settings (teacher.remote). */
export interface RemotePrefs {
  preset: PresetName;
  baseURL: string;
  model: string;
  maxConcurrency: number;
  requestsPerMinute: number;
  pricePer1MInput: number;
  pricePer1MOutput: number;
  /** "Remember the key on this device". */
  remember: boolean;
}

/** The remote teacher that was active, enough to re-activate it after a reload (teacher.active). */
export interface RemoteActivePref {
  kind: 'remote';
  settings: Omit<RemotePrefs, 'remember'>;
  /** Whether it was used with a key (a reload without the key then asks for it). */
  /** Whether the teacher is used with a key (a flag, never the key; named so the store's credential check passes). */
  usesKey: boolean;
  logprobs: boolean | null;
  /** The server rejects the logprobs parameter: never ask. */
  logprobsOff: boolean;
}
export type ActivePref = null | { kind: 'local'; source: ReloadableSource; device: LocalDeviceChoice } | RemoteActivePref;

export const DEFAULT_REMOTE: RemotePrefs = {
  preset: 'openai', baseURL: 'https://api.openai.com/v1', model: '', maxConcurrency: 4, requestsPerMinute: 0,
  pricePer1MInput: 0, pricePer1MOutput: 0, remember: false,
};

const num = (v: unknown, lo: number, hi: number, d: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi ? v : d);
const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);

/** teacher.kind: which form the toggle shows. */
export function loadKindPref(): 'local' | 'remote' {
  return loadPref<unknown>('teacher.kind', 'local') === 'remote' ? 'remote' : 'local';
}

export function saveKindPref(kind: 'local' | 'remote'): void {
  savePref('teacher.kind', kind);
}

export function loadLocalPrefs(fallbackSource: string): LocalPrefs {
  const p = loadPref<Record<string, unknown> | null>('teacher.local', null) ?? {};
  const kind = p.kind === 'files' || p.kind === 'hub' ? p.kind : 'folder';
  const device = p.device === 'webgpu' || p.device === 'wasm' ? p.device : 'auto';
  return { kind, source: str(p.source, fallbackSource), device };
}

export function saveLocalPrefs(p: LocalPrefs): void {
  savePref('teacher.local', p);
}

function cleanRemote(p: Record<string, unknown>): Omit<RemotePrefs, 'remember'> {
  const preset = (PRESET_NAMES as readonly unknown[]).includes(p.preset) ? (p.preset as PresetName) : DEFAULT_REMOTE.preset;
  return {
    preset, baseURL: str(p.baseURL, DEFAULT_REMOTE.baseURL), model: str(p.model, ''),
    maxConcurrency: Math.round(num(p.maxConcurrency, 1, 1024, DEFAULT_REMOTE.maxConcurrency)),
    requestsPerMinute: num(p.requestsPerMinute, 0, 1e9, 0), pricePer1MInput: num(p.pricePer1MInput, 0, 1e9, 0), pricePer1MOutput: num(p.pricePer1MOutput, 0, 1e9, 0),
  };
}

export function loadRemotePrefs(): RemotePrefs {
  const p = loadPref<Record<string, unknown> | null>('teacher.remote', null);
  if (!p || typeof p !== 'object') return { ...DEFAULT_REMOTE };
  return { ...cleanRemote(p), remember: p.remember === true };
}

export function saveRemotePrefs(p: RemotePrefs): void {
  savePref('teacher.remote', { ...cleanRemote(p as unknown as Record<string, unknown>), remember: p.remember });
}

function loadActivePref(): ActivePref {
  const p = loadPref<Record<string, unknown> | null>('teacher.active', null);
  if (!p || typeof p !== 'object') return null;
  if (p.kind === 'local') {
    const s = p.source as Record<string, unknown> | null;
    const device = p.device === 'webgpu' || p.device === 'wasm' ? p.device : 'auto';
    if (s?.kind === 'folder' && typeof s.location === 'string') return { kind: 'local', source: { kind: 'folder', location: s.location }, device };
    if (s?.kind === 'hub' && typeof s.id === 'string') {
      return { kind: 'local', source: { kind: 'hub', id: s.id, ...(typeof s.revision === 'string' ? { revision: s.revision } : {}) }, device };
    }
    return null;
  }
  if (p.kind === 'remote' && p.settings && typeof p.settings === 'object') {
    return {
      kind: 'remote', settings: cleanRemote(p.settings as Record<string, unknown>), usesKey: p.usesKey === true,
      logprobs: typeof p.logprobs === 'boolean' ? p.logprobs : null, logprobsOff: p.logprobsOff === true,
    };
  }
  return null;
}

// ---- status line ---------------------------------------------------------------------------------------------------

const deviceName = (d: string) => (d === 'webgpu' ? 'WebGPU' : d === 'wasm' ? 'WASM' : d);

/** The stepper's line for an active teacher. */
export function statusText(t: ActiveTeacher): string {
  if (t.kind === 'local') return `${t.model} · local · ${deviceName(String(t.ref.device))}`;
  const kd = t.logprobs === true ? 'token-level KD' : t.logprobs === false ? 'sequence-level KD only' : 'not tested';
  return `${t.model} · ${hostOf(String(t.ref.baseURL))} · ${kd}`;
}

/** Shows `t` in the stepper, or, with no active teacher, `fallback` (an error, "enter your API key", …). */
export function showStatus(fallback?: { state: 'todo' | 'ready' | 'busy' | 'error'; text: string }): void {
  const t = activeTeacher();
  if (t) setStageStatus('teacher', { state: 'done', text: statusText(t) });
  else setStageStatus('teacher', fallback ?? { state: 'todo', text: '' });
}

// ---- local teachers ------------------------------------------------------------------------------------------------

/** The files the engine needs to run the same weights itself (dense-logit KD), read from picked files. */
const ENGINE_FILE = /^(config\.json|tokenizer\.json|tokenizer_config\.json|[^/]+\.safetensors|[^/]+\.safetensors\.index\.json)$/;
/** Picked weights above this are not copied into the page for the engine (it would double the memory). */
export const MAX_FOLDER_FILES_BYTES = 2 ** 31;

async function engineFiles(source: LocalModelSource): Promise<Record<string, Uint8Array> | undefined> {
  if (source.kind !== 'files') return undefined;
  const all = normalizePickedFiles(source.files);
  const picked = [...all].filter(([p]) => ENGINE_FILE.test(p));
  if (!picked.some(([p]) => p.endsWith('.safetensors'))) return undefined;
  const bytes = picked.reduce((a, [, d]) => a + (d instanceof Uint8Array ? d.byteLength : d.size), 0);
  if (bytes > MAX_FOLDER_FILES_BYTES) return undefined;
  const out: Record<string, Uint8Array> = {};
  for (const [p, d] of picked) out[p] = d instanceof Uint8Array ? d : new Uint8Array(await d.arrayBuffer());
  return out;
}

/** Absolute URL of a served folder, ending in '/'. */
export function folderUrlOf(location: string): string {
  const u = new URL(location, document.baseURI);
  u.search = '';
  u.hash = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}

/** The ActiveTeacher for a model the worker holds. */
export async function localActive(info: LocalTeacherInfo, source: LocalModelSource): Promise<ActiveTeacher> {
  const reloadable = reloadableOf(source);
  const t: ActiveTeacher = {
    kind: 'local', model: info.model, label: `${info.model} (local, ${deviceName(info.device)})`,
    ref: { kind: 'local', model: info.model, source: reloadable, device: info.device },
    teacher: new WorkerTeacher(info.model), logprobs: true,
  };
  if (source.kind === 'folder') t.folderUrl = folderUrlOf(source.location);
  const files = await engineFiles(source).catch(() => undefined);
  if (files) t.folderFiles = files;
  return t;
}

let activation: Promise<ActiveTeacher> | null = null;
type Activate = 'always' | 'if-local';
/** How the next load started by loadLocal() activates its model; loads started elsewhere use 'if-local'. */
let nextPolicy: Activate | null = null;
const policies = new Map<number, Activate>();

onTeacherLoad((e) => {
  if (e.phase === 'start') {
    policies.set(e.id, nextPolicy ?? 'if-local');
    nextPolicy = null;
    if (activeTeacher()?.kind === 'local') setActiveTeacher(null); // the worker is replacing its model
    const name = e.source.kind === 'folder' ? e.source.location : e.source.kind === 'hub' ? e.source.id : (e.source.name ?? 'picked files');
    if (!activeTeacher()) setStageStatus('teacher', { state: 'busy', text: `loading ${name.replace(/^models\/|\/$/g, '')}…` });
  } else if (e.phase === 'done') {
    const id = e.id;
    const policy = policies.get(id) ?? 'if-local';
    policies.delete(id);
    activation = localActive(e.info, e.source).then((t) => {
      const cur = activeTeacher();
      // A local model a Data job loaded for itself does not replace an active remote teacher.
      if (id === latestLoadId() && (policy === 'always' || !cur || cur.kind === 'local')) setActiveTeacher(t);
      return t;
    });
  } else if (e.phase === 'error') {
    policies.delete(e.id);
    if (e.id === latestLoadId()) showStatus({ state: 'error', text: `could not load the teacher: ${errorText(e.error)}`.slice(0, 160) });
  }
});

// Whoever activates a teacher (this stage, or the Data stage loading the default one), the stepper shows it and a
// local one from a folder or the Hub is what a reload loads again (a remote one is saved by activateRemote, which
// knows whether it had a key).
on('teacher', (t) => {
  if (!t) return;
  if (t.kind === 'local') {
    const source = t.ref.source as ReloadableSource | null;
    savePref('teacher.active', source ? { kind: 'local', source, device: t.ref.device === 'wasm' ? 'wasm' : 'auto' } : null);
  }
  showStatus();
});

/**
 * Loads a local model into the teacher worker; it becomes the active teacher ('always'), or only when no remote
 * teacher is active ('if-local': a job resumed with its own teacher). Resolves with its ActiveTeacher.
 */
export async function loadLocal(
  source: LocalModelSource, device: LocalDeviceChoice, onProgress?: (p: LocalLoadProgress) => void, activate: Activate = 'always',
): Promise<ActiveTeacher> {
  nextPolicy = activate;
  try {
    await loadTeacher(source, { device, baseUrl: document.baseURI }, onProgress);
  } finally {
    nextPolicy = null;
  }
  return await activation!; // set synchronously by the 'done' listener above
}

let restoring: Promise<unknown> | null = null;

/** Waits for a load that a reload started (resolveJobTeacher calls this before deciding). */
export async function restored(): Promise<void> {
  await restoring?.catch(() => undefined);
  await activation?.catch(() => undefined);
}

// ---- remote teachers -----------------------------------------------------------------------------------------------

export interface RemoteActivation {
  settings: Omit<RemotePrefs, 'remember'>;
  apiKey: string;
  logprobs: boolean | null;
  logprobsOff: boolean;
}

/** The ActiveTeacher for a remote server (the key goes into the RemoteTeacher only). */
export function remoteActive(a: RemoteActivation): ActiveTeacher {
  const s = a.settings;
  const teacher = new LazyRemoteTeacher({
    preset: s.preset, baseURL: s.baseURL, model: s.model, apiKey: a.apiKey, maxConcurrency: s.maxConcurrency,
    requestsPerMinute: s.requestsPerMinute, pricePer1MInput: s.pricePer1MInput, pricePer1MOutput: s.pricePer1MOutput,
    logprobs: a.logprobsOff ? 'off' : 'auto',
  });
  return {
    kind: 'remote', model: s.model, label: `${s.model} (${hostOf(teacher.settings.baseURL)})`,
    ref: { kind: 'remote', preset: s.preset, baseURL: teacher.settings.baseURL, model: s.model, usesKey: a.apiKey !== '' },
    teacher, logprobs: a.logprobs,
  };
}

/** Makes a remote server the active teacher and remembers it (without the key) for the next reload. */
export function activateRemote(a: RemoteActivation): ActiveTeacher {
  const t = remoteActive(a);
  const pref: RemoteActivePref = { kind: 'remote', settings: a.settings, usesKey: a.apiKey !== '', logprobs: a.logprobs, logprobsOff: a.logprobsOff };
  savePref('teacher.active', pref);
  waitingForKey = null;
  setActiveTeacher(t);
  return t;
}

/** The remote teacher remembered as active, when it still waits for its key after a reload. */
let waitingForKey: RemoteActivePref | null = null;

export function remoteWaitingForKey(): RemoteActivePref | null {
  return waitingForKey;
}

/**
 * After a reload: loads the local teacher that was active again (a folder or a Hub id), or re-activates the remote
 * one with its remembered key; without the key the status asks for it. Called once by the stage.
 */
export function restoreActiveTeacher(): void {
  const pref = loadActivePref();
  if (!pref) return;
  if (pref.kind === 'local') {
    restoring = loadLocal(pref.source, pref.device).catch(() => undefined); // the error shows in the status line
    return;
  }
  const key = apiKeyFor(pref.settings.baseURL);
  if (pref.usesKey && key === '') {
    waitingForKey = pref;
    if (!activeTeacher()) setStageStatus('teacher', { state: 'ready', text: `${pref.settings.model}: enter your API key` });
    return;
  }
  try {
    activateRemote({ settings: pref.settings, apiKey: key, logprobs: pref.logprobs, logprobsOff: pref.logprobsOff });
  } catch (e) {
    showStatus({ state: 'error', text: errorText(e).slice(0, 160) });
  }
}

/** Clears the "enter your API key" state (the user activated a teacher or changed the settings). */
export function clearWaitingForKey(): void {
  waitingForKey = null;
  if (!activeTeacher() && stageStatus('teacher').state === 'ready') showStatus();
}
