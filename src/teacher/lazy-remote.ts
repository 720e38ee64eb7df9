// A remote teacher whose client loads on its first request: RemoteTeacher (src/teacher/remote.ts) and the OpenAI
// SDK under it are a large part of the page's code, and only a remote teacher that is asked something needs them.
// The settings are resolved and checked at once, as RemoteTeacher's constructor does (a bad config throws here);
// the key is kept for the client only, never in `settings`.
import type { TeacherLike } from '../elicit/types.ts';
import { resolveRemoteTeacherConfig, teacherSettings, type RemoteTeacherSettings } from './config.ts';
import type { RemoteTeacher } from './remote.ts';
import type { ChatMessage, ChatOptions, ChatResult } from './types.ts';

export class LazyRemoteTeacher implements TeacherLike {
  readonly settings: Readonly<RemoteTeacherSettings>;
  readonly #config: unknown;
  #client: Promise<RemoteTeacher> | null = null;

  /** `config` as RemoteTeacher takes it (a RemoteTeacherConfig given as plain data). */
  constructor(config: unknown) {
    this.settings = teacherSettings(resolveRemoteTeacherConfig(config));
    this.#config = config;
  }

  /** The RemoteTeacher, made on the first call (loading its code); the same one afterwards. */
  client(): Promise<RemoteTeacher> {
    if (!this.#client) {
      this.#client = import('./remote.ts').then(({ RemoteTeacher: R }) => new R(this.#config));
      this.#client.catch(() => { this.#client = null; }); // a failed load (offline, an updated app) is tried again
    }
    return this.#client;
  }

  async chat(messages: ChatMessage[], opts?: ChatOptions): Promise<ChatResult> {
    return (await this.client()).chat(messages, opts);
  }

  /** IDs of the models the server lists (GET /models). */
  async listModels(signal?: AbortSignal): Promise<string[]> {
    return (await this.client()).listModels(signal);
  }
}
