// Shared fixtures of the elicitation tests (tests/unit/elicit-*.test.ts): a scripted TextModel for the real test
// server (it answers each prompt with a reply chosen by a function of the prompt, so parsing paths are tested over
// real HTTP), server/teacher/store set-up and a helper that lists a dataset's records by key.
import 'fake-indexeddb/auto';
import { RemoteTeacher } from '../../src/teacher/remote.ts';
import type { DistillStore } from '../../src/store/store.ts';
import type { StoredRecord } from '../../src/store/schema.ts';
import { startOpenAiServer, type OpenAiServer, type OpenAiServerOptions } from '../support/openai-server.ts';
import type { TextModel } from '../support/text-model.ts';

const END = 256;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });
const MARK = Array.from(enc.encode('assistant: '));

/**
 * Byte-level model that continues a chat prompt (rendered as "role: content\n... assistant: ") with
 * `reply(promptText)` and then the end token. Its distributions put all but e^-30 of the mass on the scripted byte,
 * so any temperature reproduces the script. The prompt ends at the LAST "assistant: " (scripts must not contain it).
 */
export class ScriptedModel implements TextModel {
  readonly name = 'scripted-test-model';
  readonly vocabSize = 257;
  readonly endId = END;
  private readonly cache = new Map<string, number[]>();
  constructor(private readonly reply: (prompt: string) => string) {}
  encode(text: string): number[] { return Array.from(enc.encode(text)); }
  decode(ids: number[]): string { return dec.decode(Uint8Array.from(ids.filter((i) => i !== END))); }
  tokenText(id: number): string { return id === END ? '<|end|>' : dec.decode(Uint8Array.of(id)); }
  tokenBytes(id: number): number[] | null { return id === END ? null : [id]; }
  nextLogprobs(ids: number[]): Float32Array {
    let at = -1;
    for (let i = ids.length - MARK.length; i >= 0 && at < 0; i--) if (MARK.every((b, j) => ids[i + j] === b)) at = i + MARK.length;
    if (at < 0) throw new Error('ScriptedModel: no "assistant: " in the prompt');
    const prompt = this.decode(ids.slice(0, at));
    let script = this.cache.get(prompt);
    if (!script) { script = this.encode(this.reply(prompt)); this.cache.set(prompt, script); }
    const j = ids.length - at;
    const next = j < script.length ? script[j]! : END;
    const lp = new Float32Array(this.vocabSize).fill(-30);
    lp[next] = Math.log1p(-256 * Math.exp(-30));
    return lp;
  }
}

/** The user message of a rendered prompt (the text after the last "user: " up to the final "assistant: "). */
export function userOf(prompt: string): string {
  const i = prompt.lastIndexOf('user: ');
  return prompt.slice(i + 6, prompt.length - '\nassistant: '.length);
}

export const servers: OpenAiServer[] = [];
export async function start(o: OpenAiServerOptions = {}): Promise<OpenAiServer> {
  const s = await startOpenAiServer(o);
  servers.push(s);
  return s;
}
export async function closeServers(): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => s.close()));
}

export function teacherFor(s: OpenAiServer, extra: Record<string, unknown> = {}): RemoteTeacher {
  return new RemoteTeacher({ baseURL: s.url, model: s.model.name, timeoutMs: 5000, ...extra });
}

export async function allRecords(store: DistillStore, datasetId: string): Promise<StoredRecord[]> {
  return store.getRecords(datasetId, { limit: 100_000 });
}
