// What the stages of the page share, and nothing else: the active teacher (chosen in the Teacher stage, used by the
// Data, Train and Evaluate stages), the status line of each stage (shown by the stepper), change notifications
// (datasets written; runs have their own store, src/ui/runs-store.ts) and the stage in focus. UI preferences that survive a reload live in
// localStorage under 'distill:ui:*' (never a secret: the remote teacher's key is handled in src/ui/teacher/).
import type { TeacherLike } from '../elicit/types.ts';
import type { Json } from '../store/schema.ts';

export const STAGE_IDS = ['teacher', 'data', 'train', 'evaluate', 'export'] as const;
export type StageId = (typeof STAGE_IDS)[number];

export type StageState = 'todo' | 'ready' | 'busy' | 'done' | 'error';
export interface StageStatus {
  state: StageState;
  /** One short line under the step's title, e.g. "brown-teacher on WebGPU". Plain text. */
  text: string;
}

/** The teacher the Data, Train and Evaluate stages use now. */
export interface ActiveTeacher {
  kind: 'local' | 'remote';
  /** The model's name, e.g. 'brown-teacher' or 'gpt-4o-mini'. */
  model: string;
  /** Shown to the user, e.g. "brown-teacher (local, WebGPU)". Plain text. */
  label: string;
  /**
   * What a job stores to find this teacher again after a reload; never a key. Local: {kind:'local', model,
   * source, device}; remote: {kind:'remote', preset, baseURL, model}.
   */
  ref: { [k: string]: Json };
  /** The elicitation layer's teacher (src/elicit/types.ts): the local worker or a RemoteTeacher. */
  teacher: TeacherLike;
  /** Whether its answers carry token log-probabilities (token-level KD possible); null = not known yet. */
  logprobs: boolean | null;
  /**
   * An HF Llama folder the engine can run itself (a local teacher loaded from a served folder): dense-logit KD,
   * on-policy scoring and teacher evaluation need it. Absolute URL ending in '/'.
   */
  folderUrl?: string;
  /** The same for a teacher loaded from picked files: config.json, *.safetensors, tokenizer*.json by path. */
  folderFiles?: Record<string, Uint8Array>;
}

type Events = {
  teacher: ActiveTeacher | null;
  stage: { id: StageId; status: StageStatus };
  goto: StageId;
  datasets: undefined;
};

const listeners = new Map<keyof Events, Set<(v: never) => void>>();

export function on<K extends keyof Events>(event: K, fn: (v: Events[K]) => void): () => void {
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(fn as (v: never) => void);
  return () => set.delete(fn as (v: never) => void);
}

export function emit<K extends keyof Events>(event: K, value: Events[K]): void {
  for (const fn of [...(listeners.get(event) ?? [])]) {
    try {
      (fn as (v: Events[K]) => void)(value);
    } catch (e) {
      console.error(`app-state: a '${event}' listener failed`, e);
    }
  }
}

let teacher: ActiveTeacher | null = null;

export function activeTeacher(): ActiveTeacher | null {
  return teacher;
}

export function setActiveTeacher(t: ActiveTeacher | null): void {
  teacher = t;
  emit('teacher', t);
}

const statuses = new Map<StageId, StageStatus>();

export function stageStatus(id: StageId): StageStatus {
  return statuses.get(id) ?? { state: 'todo', text: '' };
}

export function setStageStatus(id: StageId, status: StageStatus): void {
  statuses.set(id, status);
  emit('stage', { id, status });
}

/** Brings a stage into focus (the stepper listens). */
export function gotoStage(id: StageId): void {
  emit('goto', id);
}

/** A UI preference kept across reloads (localStorage; silently nothing where storage is blocked). */
export function loadPref<T>(name: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(`distill:ui:${name}`);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

export function savePref(name: string, value: unknown): void {
  try {
    if (value === undefined) localStorage.removeItem(`distill:ui:${name}`);
    else localStorage.setItem(`distill:ui:${name}`, JSON.stringify(value));
  } catch {
    /* storage blocked (private mode): preferences just do not persist */
  }
}
