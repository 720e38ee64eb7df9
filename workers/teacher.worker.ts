// The teacher worker: the local transformers.js teacher (src/teacher/local.ts) exposed over comlink, with ONNX
// Runtime's WASM files served by our own build (src/teacher/ort-wasm.ts), never from a CDN.
import * as Comlink from 'comlink';
import { LocalTeacher } from '../src/teacher/local.ts';
import type { TeacherGenerateResult, TeacherWorkerApi } from '../src/teacher/local-protocol.ts';
import { useBundledOrtWasm } from '../src/teacher/ort-wasm.ts';
import { TeacherError } from '../src/teacher/types.ts';

useBundledOrtWasm(self.location.href);

let teacher: LocalTeacher | null = null;
let running: AbortController | null = null;

/** A token for display: its text, or its bytes in hex when it is part of a UTF-8 character (decodes to U+FFFD). */
function label(t: LocalTeacher, id: number): string {
  const text = t.tokenText(id);
  const bytes = text.includes('\uFFFD') ? t.tokenBytes(id) : undefined;
  return bytes ? `<${bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')}>` : text;
}

function loaded(): LocalTeacher {
  if (!teacher) throw new TeacherError('config', 'local teacher: no model is loaded');
  return teacher;
}

async function withAbort<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  running?.abort();
  running = ctl;
  try {
    return await fn(ctl.signal);
  } finally {
    if (running === ctl) running = null;
  }
}

const api: TeacherWorkerApi = {
  async load(source, opts = {}, onProgress) {
    running?.abort();
    const old = teacher;
    teacher = null;
    await old?.dispose();
    teacher = await LocalTeacher.load(source, { ...opts, ...(onProgress ? { onProgress } : {}) });
    return teacher.info;
  },
  async info() {
    return teacher?.info ?? null;
  },
  async encode(text) {
    return loaded().encode(text);
  },
  async generate(prompt, opts = {}, onToken) {
    const t = loaded();
    const { k = 5, ...gen } = opts;
    return withAbort(async (signal) => {
      const t0 = performance.now();
      const g = await t.generate(prompt, { ...gen, signal, ...(onToken ? { onToken } : {}) });
      const ms = performance.now() - t0;
      const n = g.ids.length;
      const kk = Math.max(0, Math.min(k, t.info.vocabSize));
      const topIds = new Int32Array(n * kk);
      const topLogprobs = new Float32Array(n * kk);
      const logprobs = new Float32Array(n);
      if (n > 0) {
        const d = await t.distributions([...g.promptIds, ...g.ids], { k: Math.max(kk, 1) });
        for (let j = 0; j < n; j++) {
          const row = g.promptIds.length - 1 + j;
          logprobs[j] = d.nextLogprobs[row]!;
          for (let r = 0; r < kk; r++) {
            topIds[j * kk + r] = d.topIds[row * d.k + r]!;
            topLogprobs[j * kk + r] = d.topLogprobs[row * d.k + r]!;
          }
        }
      }
      const res: TeacherGenerateResult = {
        ...g, k: kk, topIds, topLogprobs, logprobs, ms,
        tokenTexts: g.ids.map((id) => label(t, id)),
        topTexts: Array.from(topIds, (id) => label(t, id)),
      };
      return Comlink.transfer(res, [topIds.buffer, topLogprobs.buffer, logprobs.buffer]);
    });
  },
  async distributions(ids, opts = {}) {
    const d = await loaded().distributions(ids, opts);
    const bufs: Transferable[] = [d.topIds.buffer, d.topLogprobs.buffer, d.nextLogprobs.buffer].map((b) => b as ArrayBuffer);
    if (d.dense) bufs.push(d.dense.buffer as ArrayBuffer);
    return Comlink.transfer(d, bufs);
  },
  async chat(messages, opts = {}) {
    const t = loaded();
    return withAbort((signal) => t.chat(messages, { ...opts, signal }));
  },
  abort() {
    running?.abort();
  },
  async unload() {
    running?.abort();
    const old = teacher;
    teacher = null;
    await old?.dispose();
  },
};

Comlink.expose(api);
