// The typed API between the page and the teacher worker (workers/teacher.worker.ts), over comlink: the local
// teacher (src/teacher/local.ts) living in its own worker so the model's memory and ONNX Runtime's work stay off
// the page and off the engine worker. Progress and streamed tokens arrive through callbacks (comlink proxies);
// AbortSignals cannot cross a worker boundary, so abort() stops the running generation instead. Errors keep
// name and message.
import type {
  LocalDevice, LocalGenerateOptions, LocalGeneration, LocalLoadProgress, LocalModelSource, LocalTeacherInfo, TokenDistributions,
} from './local.ts';
import type { ChatMessage, ChatOptions, ChatResult } from './types.ts';

export type { LocalGeneration, LocalLoadProgress, LocalModelSource, LocalTeacherInfo, TokenDistributions };

export interface TeacherLoadOptions {
  device?: 'auto' | LocalDevice;
  dtype?: 'fp32' | 'fp16' | 'q8' | 'q4' | 'q4f16';
  /** The page's document.baseURI: relative folder locations are resolved against it. */
  baseUrl?: string;
  topLogprobs?: number;
}

/** One generation with the top-k alternatives of each generated token (from one forward pass). */
export interface TeacherGenerateResult extends LocalGeneration {
  /** Each generated token for display: its text (special tokens by their content), or <hex bytes> for a partial character. */
  tokenTexts: string[];
  /** (ids.length, k) alternatives per generated token, by decreasing log-probability, and their texts. */
  k: number;
  topIds: Int32Array;
  topLogprobs: Float32Array;
  topTexts: string[];
  /** log p of each generated token. */
  logprobs: Float32Array;
  ms: number;
}

export interface TeacherWorkerApi {
  /** Loads (replacing any loaded teacher) and describes the model. */
  load(source: LocalModelSource, opts?: TeacherLoadOptions, onProgress?: (p: LocalLoadProgress) => void): Promise<LocalTeacherInfo>;
  info(): Promise<LocalTeacherInfo | null>;
  encode(text: string): Promise<number[]>;
  /** Generation plus each generated token's top-k alternatives (k = 0: none). */
  generate(prompt: string | number[], opts?: Omit<LocalGenerateOptions, 'signal' | 'onToken'> & { k?: number }, onToken?: (id: number) => void): Promise<TeacherGenerateResult>;
  distributions(ids: number[], opts?: { k?: number; dense?: boolean }): Promise<TokenDistributions>;
  chat(messages: ChatMessage[], opts?: Omit<ChatOptions, 'signal' | 'onDelta'>): Promise<ChatResult>;
  /** Stops the running generate()/chat() (it rejects with an 'aborted' TeacherError). */
  abort(): void;
  unload(): Promise<void>;
}
