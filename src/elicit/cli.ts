// `npm run cli -- elicit ...` (Node only; the lead wires it into src/cli/main.ts): runs one elicitation job against
// an OpenAI-compatible server into an in-memory store and exports the result as JSONL. The store is the app's own
// DistillStore over fake-indexeddb (a dev dependency: the command says so when it is missing). The API key is read
// from the environment variable named by --api-key-env and is never printed or written. Output files are written
// to a temporary name and renamed, and only when the job finished: never half-written.
//
//   --base-url URL --model NAME [--api-key-env VAR] --strategy S --config file.json --out file.jsonl
//   [--format openai|alpaca|sharegpt] [--with-provenance] [--max-concurrency N]
//
// Records go to --out; preference pairs (feedback) as {"prompt", "chosen", "rejected"} lines to --out as well;
// top-k rows (feature) decoded to <out>.topk.jsonl ({"line", "turn", "ids", "logprobs"} per record, ids into the
// token table) and the token table to <out>.vocab.json.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { exportJsonlText, JSONL_FORMATS, type JsonlFormat } from '../store/io.ts';
import { openStore } from '../store/store.ts';
import { unpackTopKRows } from '../store/topk.ts';
import { RemoteTeacher } from '../teacher/remote.ts';
import { datasetVocab } from './feature.ts';
import { createElicitJob, runElicitJob, strategyByName } from './run.ts';

export const ELICIT_USAGE = `usage: npm run cli -- elicit --base-url URL --model NAME [--api-key-env VAR] --strategy S
                          --config file.json --out file.jsonl [--format openai|alpaca|sharegpt]
                          [--with-provenance] [--max-concurrency N]`;

export interface ElicitIo {
  env: Record<string, string | undefined>;
  /** Progress and errors (stderr). */
  log: (line: string) => void;
  signal?: AbortSignal;
}

const VALUE_FLAGS = ['--base-url', '--model', '--api-key-env', '--strategy', '--config', '--out', '--format', '--max-concurrency'];
const BOOL_FLAGS = ['--with-provenance'];

class UsageError extends Error {}

function parseArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (BOOL_FLAGS.includes(a)) { out[a] = 'true'; continue; }
    if (!VALUE_FLAGS.includes(a)) throw new UsageError(`unknown argument '${a}'`);
    const v = args[++i];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} needs a value`);
    out[a] = v;
  }
  for (const k of ['--base-url', '--model', '--strategy', '--config', '--out']) if (!out[k]) throw new UsageError(`${k} is required`);
  return out;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

const IDB_GLOBALS = [
  'IDBCursor', 'IDBCursorWithValue', 'IDBDatabase', 'IDBFactory', 'IDBIndex', 'IDBKeyRange', 'IDBObjectStore',
  'IDBOpenDBRequest', 'IDBRequest', 'IDBTransaction', 'IDBVersionChangeEvent',
];

async function memoryIdb(): Promise<IDBFactory> {
  try {
    const m = (await import('fake-indexeddb')) as unknown as Record<string, unknown>;
    // idb checks `instanceof IDBRequest` (etc.) against globals: install the fake's classes where Node has none.
    const g = globalThis as Record<string, unknown>;
    for (const name of IDB_GLOBALS) if (g[name] === undefined) g[name] = m[name];
    return new (m.IDBFactory as new () => IDBFactory)();
  } catch {
    throw new Error("the elicit command keeps its store in memory through the package 'fake-indexeddb' (a dev dependency): install it (npm ci)");
  }
}

/** Runs the command; resolves with the exit code (0 done, 1 failed, 2 bad arguments). */
export async function elicitCommand(args: string[], io: ElicitIo = { env: process.env, log: (l) => console.error(l) }): Promise<number> {
  let a: Record<string, string>;
  try {
    a = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.log(`error: ${e.message}\n\n${ELICIT_USAGE}`);
    return 2;
  }
  try {
    const strategy = strategyByName(a['--strategy']);
    if (strategy.name === 'feedback' || strategy.name === 'self-knowledge') {
      throw new Error(`strategy '${strategy.name}' needs the student's sampler, which the CLI does not have yet (run it in the app)`);
    }
    const format = (a['--format'] ?? 'openai') as JsonlFormat;
    if (!JSONL_FORMATS.includes(format)) throw new Error(`--format must be one of ${JSONL_FORMATS.join(', ')}`);
    let apiKey = '';
    if (a['--api-key-env']) {
      apiKey = io.env[a['--api-key-env']] ?? '';
      if (apiKey === '') throw new Error(`the environment variable ${a['--api-key-env']} (--api-key-env) is empty or not set`);
    }
    let config: unknown;
    try {
      config = JSON.parse(await readFile(a['--config']!, 'utf8'));
    } catch (e) {
      throw new Error(`--config ${a['--config']}: ${(e as Error).message}`);
    }
    const teacherConfig: Record<string, unknown> = { baseURL: a['--base-url'], model: a['--model'], apiKey };
    if (a['--max-concurrency']) teacherConfig.maxConcurrency = Number(a['--max-concurrency']);
    const teacher = new RemoteTeacher(teacherConfig);

    const store = await openStore(`elicit-cli-${Date.now()}`, await memoryIdb());
    const ds = await store.createDataset({ name: `elicit ${strategy.name}` });
    const job = await createElicitJob(store, ds.id, strategy, config);
    const runOpts: Parameters<typeof runElicitJob>[2] = {
      teacher,
      onProgress: (j) => io.log(`progress ${j.progress.done}/${j.progress.total} tokens=${j.progress.tokens} cost=${j.progress.cost.toFixed(6)}`),
    };
    if (io.signal) runOpts.signal = io.signal;
    const done = await runElicitJob(store, job.id, runOpts);
    if (done.status !== 'done') throw new Error(`the job ended ${done.status}${done.error ? `: ${done.error}` : ''}; nothing was written`);

    const withProv = a['--with-provenance'] === 'true';
    let text = await exportJsonlText(store, ds.id, format, { includeProvenance: withProv });
    for (const p of await store.getPairs(ds.id, { limit: 1_000_000 })) {
      const line: Record<string, unknown> = { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected };
      if (withProv) line.provenance = p.provenance;
      text += `${JSON.stringify(line)}\n`;
    }
    if (strategy.name === 'feature') {
      const recs = await store.getRecords(ds.id, { limit: 1_000_000 });
      let topk = '';
      for (const [line, r] of recs.entries()) {
        for (const e of await store.getTopKOfRecord(r.id)) {
          const rows = unpackTopKRows(e.rows);
          topk += `${JSON.stringify({ line, turn: e.turn, ids: rows.map((x) => Array.from(x.ids)), logprobs: rows.map((x) => Array.from(x.logprobs)) })}\n`;
        }
      }
      await writeAtomic(`${a['--out']}.topk.jsonl`, topk);
      await writeAtomic(`${a['--out']}.vocab.json`, JSON.stringify(await datasetVocab(store, ds.id)));
    }
    await writeAtomic(a['--out']!, text);
    const c = (await store.getDataset(ds.id))!.counts;
    io.log(`done: ${c.records} records, ${c.pairs} pairs, ${c.topkTokens} top-k tokens → ${a['--out']}`);
    store.close();
    return 0;
  } catch (e) {
    io.log(`error: ${(e as Error).message}`);
    return 1;
  }
}
