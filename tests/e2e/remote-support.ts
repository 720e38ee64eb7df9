// Helpers of tests/e2e/remote-flow.test.ts.
// - JudgeModel: the test OpenAI server's model (tests/support/openai-server.ts takes any TextModel). It is the
//   byte-level bigram model, except for the two judging templates of the elicitation layer, which it answers the way
//   an instruction-following teacher would, deterministically from the text it judges: feedback.grade ("... end
//   with a line "Score: N"") gets "Score: judgeScore(response)", self-knowledge.verify gets "Verdict: yes|no" by
//   judgeVerdict(answer). The test recomputes both, so it knows which sample must win each preference pair and which
//   samples the teacher kept. Answers are forced token by token (log-probability 0 for the next byte of the fixed
//   reply), so they come back through the normal sampling, streaming and logprobs path, faults included.
// - The secret search: findNeedles (bytes), scanFiles (every file under a folder), scanZip (unzip -t, then every
//   extracted file and the archive's raw bytes), and scanOrigin (in the page: every IndexedDB database of the origin,
//   every object store, every key and value walked — strings, ArrayBuffers, typed arrays, Blobs, Maps, Sets — plus
//   localStorage, sessionStorage, Cache Storage, the origin-private file system, the page's HTML and the values of
//   its form fields), with positive controls to plant in each (plantControlDb, plantControls).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Page } from 'playwright-core';
import { BigramModel, type TextModel } from '../support/text-model.ts';

/** 32-bit FNV-1a over the UTF-16 code units of a string. */
export function fnv1a(s: string): number {
  let x = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return x;
}

/** The score the judge gives a response on a 1..max scale. */
export function judgeScore(response: string, max = 10): number {
  return (fnv1a(`score:${response}`) % max) + 1;
}

/** The judge's verdict on an answer: about two answers in three are accepted. */
export function judgeVerdict(answer: string): boolean {
  return fnv1a(`verdict:${answer}`) % 3 !== 0;
}

const ASSISTANT = '\nassistant: ';

/** What the judge is asked, read from a rendered prompt (user: …\nassistant: …), or null for any other prompt. */
export function judgeTask(text: string): ({ kind: 'score'; prompt: string; response: string; max: number } | { kind: 'verdict'; prompt: string; answer: string }) & { replyAt: number } | null {
  const inst = text.indexOf('[Instruction]\n');
  const resp = text.indexOf('\n\n[Response]\n', inst);
  if (inst >= 0 && resp > inst && text.includes('"Score: N"')) {
    const end = text.indexOf(ASSISTANT, resp);
    if (end < 0) return null;
    const max = Number(/scale of 1 to (\d+)/.exec(text)?.[1] ?? 10);
    return { kind: 'score', prompt: text.slice(inst + 14, resp), response: text.slice(resp + 13, end), max, replyAt: end + ASSISTANT.length };
  }
  const q = text.indexOf('[Question]\n');
  const a = text.indexOf('\n\n[Answer]\n', q);
  if (q >= 0 && a > q && text.includes('"Verdict: yes"')) {
    const end = text.indexOf(ASSISTANT, a);
    if (end < 0) return null;
    return { kind: 'verdict', prompt: text.slice(q + 11, a), answer: text.slice(a + 11, end), replyAt: end + ASSISTANT.length };
  }
  return null;
}

/** The reply the judge forces for a judging prompt. */
export function judgeReply(task: NonNullable<ReturnType<typeof judgeTask>>): string {
  return task.kind === 'score' ? `Score: ${judgeScore(task.response, task.max)}` : `Verdict: ${judgeVerdict(task.answer) ? 'yes' : 'no'}`;
}

export class JudgeModel implements TextModel {
  readonly name = 'judge-bigram-model';
  readonly vocabSize: number;
  readonly endId: number;
  private readonly base = new BigramModel();
  private readonly dec = new TextDecoder('utf-8', { fatal: false });

  constructor() {
    this.vocabSize = this.base.vocabSize;
    this.endId = this.base.endId;
  }
  encode(text: string): number[] { return this.base.encode(text); }
  decode(ids: number[]): string { return this.base.decode(ids); }
  tokenText(id: number): string { return this.base.tokenText(id); }
  tokenBytes(id: number): number[] | null { return this.base.tokenBytes(id); }

  nextLogprobs(ids: number[]): Float32Array {
    const text = this.dec.decode(Uint8Array.from(ids.filter((i) => i !== this.endId)));
    const task = judgeTask(text);
    if (!task) return this.base.nextLogprobs(ids);
    const said = text.slice(task.replyAt);
    const reply = judgeReply(task);
    if (!reply.startsWith(said)) return this.base.nextLogprobs(ids); // not ours (cannot happen with forced replies)
    const next = said.length < reply.length ? reply.charCodeAt(said.length) : this.endId;
    const lp = new Float32Array(this.vocabSize).fill(-40);
    lp[next] = 0;
    return lp;
  }
}

// ------------------------------------------------------------------------------------------- the secret search

/** Every needle (as UTF-8) found in `bytes`, by name. */
export function findNeedles(bytes: Uint8Array, needles: string[]): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return needles.filter((n) => buf.indexOf(Buffer.from(n, 'utf8')) >= 0);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

export interface FileScan {
  /** Files read (relative paths) with their sizes. */
  files: { path: string; bytes: number }[];
  /** "path: needle" for every needle found. */
  hits: string[];
}

/** Every file under `dir`, searched for every needle. */
export function scanFiles(dir: string, needles: string[]): FileScan {
  const files: FileScan['files'] = [];
  const hits: string[] = [];
  for (const p of filesUnder(dir)) {
    const b = readFileSync(p);
    files.push({ path: relative(dir, p), bytes: b.length });
    for (const n of findNeedles(b, needles)) hits.push(`${relative(dir, p)}: ${n}`);
  }
  return { files, hits };
}

/** A zip archive: Info-ZIP tests it, extracts it, and every extracted file (and the raw archive) is searched. */
export function scanZip(zip: string, needles: string[]): FileScan & { dir: string } {
  const test = execFileSync('unzip', ['-t', zip], { encoding: 'utf8' });
  if (!/No errors detected/.test(test)) throw new Error(`unzip -t ${zip}: ${test}`);
  const dir = mkdtempSync(join(tmpdir(), 'remote-flow-unzip-'));
  execFileSync('unzip', ['-q', '-o', zip, '-d', dir]);
  const r = scanFiles(dir, needles);
  for (const n of findNeedles(readFileSync(zip), needles)) r.hits.push(`(raw archive): ${n}`);
  return { ...r, dir };
}

export interface OriginScan {
  /** IndexedDB databases read. */
  dbs: string[];
  /** "db/store: n values, m keys" for every object store. */
  stores: string[];
  /** Values (records) walked. */
  values: number;
  /** Bytes searched inside ArrayBuffers, typed arrays and Blobs. */
  binaryBytes: number;
  /** Where a needle was found: "idb:db/store[key].path", "localStorage[k]", "html", … */
  hits: string[];
  localStorageKeys: string[];
  sessionStorageKeys: string[];
  caches: string[];
  opfsFiles: string[];
  htmlChars: number;
}

/**
 * Searches everything the page's origin keeps, and the page itself, for every needle (strings compared as text,
 * binary values as UTF-8 bytes). Form fields listed in `allowFields` (e.g. the API key's own password field) are not
 * searched.
 */
export async function scanOrigin(page: Page, needles: string[], allowFields: string[] = []): Promise<OriginScan> {
  return page.evaluate(async ({ needles, allowFields }) => {
    const enc = new TextEncoder();
    const pats = needles.map((n) => enc.encode(n));
    const hits: string[] = [];
    let values = 0;
    let binaryBytes = 0;
    const indexOf = (h: Uint8Array, n: Uint8Array): number => {
      const first = n[0]!;
      outer: for (let i = h.indexOf(first); i >= 0 && i <= h.length - n.length; i = h.indexOf(first, i + 1)) {
        for (let j = 1; j < n.length; j++) if (h[i + j] !== n[j]) continue outer;
        return i;
      }
      return -1;
    };
    const bytes = (b: Uint8Array, where: string): void => {
      binaryBytes += b.length;
      pats.forEach((p, i) => { if (indexOf(b, p) >= 0) hits.push(`${where} (bytes): ${needles[i]}`); });
    };
    const text = (s: string, where: string): void => {
      needles.forEach((n) => { if (s.includes(n)) hits.push(`${where}: ${n}`); });
    };
    const walk = async (v: unknown, where: string, seen: Set<object>): Promise<void> => {
      if (typeof v === 'string') return text(v, where);
      if (typeof v === 'bigint' || typeof v === 'symbol') return text(String(v), where);
      if (v === null || typeof v !== 'object') return;
      if (seen.has(v)) return;
      seen.add(v);
      if (v instanceof ArrayBuffer) return bytes(new Uint8Array(v), where);
      if (ArrayBuffer.isView(v)) return bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), where);
      if (v instanceof Blob) {
        if (v instanceof File) text(v.name, `${where}.name`);
        text(v.type, `${where}.type`);
        return bytes(new Uint8Array(await v.arrayBuffer()), where);
      }
      if (v instanceof Date || v instanceof RegExp) return text(String(v), where);
      if (v instanceof Map) {
        let i = 0;
        for (const [k, x] of v) { await walk(k, `${where}<key ${i}>`, seen); await walk(x, `${where}<${i++}>`, seen); }
        return;
      }
      if (v instanceof Set) {
        let i = 0;
        for (const x of v) await walk(x, `${where}{${i++}}`, seen);
        return;
      }
      for (const k of Object.keys(v)) {
        text(k, `${where}.<name ${k}>`);
        await walk((v as Record<string, unknown>)[k], `${where}.${k}`, seen);
      }
    };
    const req = <T>(r: IDBRequest<T>) => new Promise<T>((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });

    const dbs = (await indexedDB.databases()).map((d) => d.name!).filter((n) => typeof n === 'string');
    const stores: string[] = [];
    for (const name of dbs) {
      text(name, `idb:${name} (database name)`);
      const db = await req(indexedDB.open(name));
      try {
        for (const store of [...db.objectStoreNames]) {
          text(store, `idb:${name}/${store} (store name)`);
          const tx = db.transaction(store, 'readonly');
          const os = tx.objectStore(store);
          const [all, keys] = await Promise.all([req(os.getAll()), req(os.getAllKeys())]);
          stores.push(`${name}/${store}: ${all.length} values, ${keys.length} keys`);
          for (let i = 0; i < all.length; i++) {
            values++;
            const k = typeof keys[i] === 'object' ? JSON.stringify(keys[i]) : String(keys[i]);
            await walk(keys[i], `idb:${name}/${store}<key ${k.slice(0, 60)}>`, new Set());
            await walk(all[i], `idb:${name}/${store}[${k.slice(0, 60)}]`, new Set());
          }
          for (const ix of [...os.indexNames]) text(ix, `idb:${name}/${store} (index name)`);
        }
      } finally {
        db.close();
      }
    }

    const entries = (s: Storage) => Object.fromEntries(Object.keys(s).map((k) => [k, s.getItem(k) ?? '']));
    const local = entries(localStorage);
    const session = entries(sessionStorage);
    await walk(local, 'localStorage', new Set());
    await walk(session, 'sessionStorage', new Set());

    const cacheNames: string[] = [];
    if (typeof caches !== 'undefined') {
      for (const c of await caches.keys()) {
        cacheNames.push(c);
        const cache = await caches.open(c);
        for (const r of await cache.keys()) {
          text(r.url, `cache:${c} url`);
          const res = await cache.match(r);
          if (res) bytes(new Uint8Array(await res.arrayBuffer()), `cache:${c} ${r.url}`);
        }
      }
    }

    // The origin-private file system: Chromium has one in a secure context; an error reading it fails the scan.
    const opfsFiles: string[] = [];
    type Dir = { entries(): AsyncIterable<[string, { kind: 'file' | 'directory'; getFile?: () => Promise<File> } & Dir]> };
    const root = (await navigator.storage.getDirectory()) as unknown as Dir;
    const visit = async (d: Dir, path: string): Promise<void> => {
      for await (const [name, h] of d.entries()) {
        text(name, `opfs:${path}${name} (name)`);
        if (h.kind === 'file') { opfsFiles.push(`${path}${name}`); bytes(new Uint8Array(await (await h.getFile!()).arrayBuffer()), `opfs:${path}${name}`); }
        else await visit(h, `${path}${name}/`);
      }
    };
    await visit(root, '/');

    const html = document.documentElement.outerHTML;
    text(html, 'html');
    for (const el of document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('input, textarea')) {
      if (allowFields.includes(el.id)) continue;
      text(el.value, `field #${el.id || el.name || el.tagName.toLowerCase()}`);
    }
    return {
      dbs, stores, values, binaryBytes, hits, localStorageKeys: Object.keys(local), sessionStorageKeys: Object.keys(session),
      caches: cacheNames, opfsFiles, htmlChars: html.length,
    };
  }, { needles, allowFields });
}

/** Writes a throw-away database holding `secret` as a nested string, in a typed array, an ArrayBuffer and a Blob. */
export async function plantControlDb(page: Page, name: string, secret: string): Promise<void> {
  await page.evaluate(({ name, secret }) => new Promise<void>((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('planted');
    r.onerror = () => reject(r.error);
    r.onsuccess = () => {
      const db = r.result;
      const tx = db.transaction('planted', 'readwrite');
      const os = tx.objectStore('planted');
      const padded = new TextEncoder().encode(`\u0000\u0001xx${secret}yy`);
      os.put({ deep: { list: [1, { note: `prefix ${secret} suffix` }] } }, 'string');
      os.put({ w: new Float32Array(padded.buffer.slice(0, padded.length - (padded.length % 4))), u8: padded }, 'typed');
      os.put({ buf: padded.slice().buffer }, 'arraybuffer');
      os.put(new Blob([padded]), 'blob');
      tx.oncomplete = () => { db.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  }), { name, secret });
}

/**
 * The positive controls of scanOrigin outside IndexedDB: `secret` planted (inside other text or bytes) in a
 * localStorage and a sessionStorage entry, a Cache Storage response, an OPFS file and a hidden element of the page,
 * each under `name`. Returns where scanOrigin must report each (the hit's prefix).
 */
export async function plantControls(page: Page, name: string, secret: string): Promise<Record<string, string>> {
  await page.evaluate(async ({ name, secret }) => {
    localStorage.setItem(name, JSON.stringify({ note: `before ${secret} after` }));
    sessionStorage.setItem(name, `before ${secret} after`);
    const padded = new TextEncoder().encode(`\u0000\u0001xx${secret}yy`);
    await (await caches.open(name)).put(`/${name}`, new Response(padded));
    const root = await navigator.storage.getDirectory();
    const w = await (await root.getFileHandle(`${name}.bin`, { create: true })).createWritable();
    await w.write(padded);
    await w.close();
    const el = document.createElement('div');
    el.id = name;
    el.hidden = true;
    el.textContent = `before ${secret} after`;
    document.body.append(el);
  }, { name, secret });
  return {
    localStorage: `localStorage.${name}:`, sessionStorage: `sessionStorage.${name}:`, cache: `cache:${name} `,
    opfs: `opfs:/${name}.bin (bytes):`, html: 'html:',
  };
}

/** Removes what plantControls planted. */
export async function removeControls(page: Page, name: string): Promise<void> {
  await page.evaluate(async (name) => {
    localStorage.removeItem(name);
    sessionStorage.removeItem(name);
    await caches.delete(name);
    await (await navigator.storage.getDirectory()).removeEntry(`${name}.bin`);
    document.getElementById(name)?.remove();
  }, name);
}

export async function deleteDb(page: Page, name: string): Promise<void> {
  await page.evaluate((name) => new Promise<void>((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error(`deleting ${name} is blocked`));
  }), name);
}

/** A Parquet file: decoded with hyparquet (SNAPPY pages included) and every cell searched, plus its raw bytes. */
export async function scanParquet(bytes: Uint8Array, needles: string[]): Promise<{ rows: Record<string, unknown>[]; hits: string[] }> {
  const { parquetReadObjects } = await import('hyparquet');
  // A copy: a Buffer from readFileSync may be a view into a larger pooled ArrayBuffer.
  const file = new Uint8Array(bytes.byteLength);
  file.set(bytes);
  const rows = (await parquetReadObjects({ file: file.buffer })) as Record<string, unknown>[];
  const text = JSON.stringify(rows, (_k, v: unknown) =>
    typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v);
  const hits = needles.filter((n) => text.includes(n)).map((n) => `(decoded rows): ${n}`);
  for (const n of findNeedles(bytes, needles)) hits.push(`(raw bytes): ${n}`);
  return { rows, hits };
}
