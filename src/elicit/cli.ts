// `npm run cli -- elicit ...` (Node only; wired into src/cli/main.ts): runs one elicitation job against an
// OpenAI-compatible server into a durable store on disk (src/cli/journal-store.ts: the app's DistillStore over
// fake-indexeddb with a journal of committed transactions) in the folder --store (default <out>.store), and writes
// the JSONL from the store when the job is done. A run that was killed (SIGKILL included) is continued by
// `--resume`: every record exactly once, the same file as an uninterrupted run. `--export` writes the JSONL from
// the store at any time (also while a job runs in another process: what is committed so far). The API key is read
// from the environment variable named by --api-key-env and is never printed or written (the store's elicit.json
// keeps the variable's name, the base URL, the model and the output settings, for --resume).
//
//   new job:  --base-url URL --model NAME [--api-key-env VAR] --strategy S --config file.json --out file.jsonl
//             [--store DIR] [--format openai|alpaca|sharegpt] [--with-provenance] [--max-concurrency N]
//             [--first-byte-timeout-ms N] [--idle-timeout-ms N] [--total-timeout-ms N] [--no-hedge]
//             [--commit-every-ms N]   (answers wait at most this long to be committed; default 1000)
//             [--members NAME[@URL],NAME[@URL],...]   (strategy ensemble: the teachers that answer; --model judges;
//             a member without @URL is served at --base-url; all use --api-key-env)
//   resume:   --resume (--store DIR | --out file.jsonl) [any teacher or output flag above, to change it]
//   export:   --export (--store DIR | --out file.jsonl) [--out file.jsonl] [--format F] [--with-provenance]
//
// Exit codes: 0 done (or exported), 1 failed / stopped (resumable), 2 bad arguments.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openJournalStore, type JournalStore } from '../cli/journal-store.ts';
import { JSONL_FORMATS, type JsonlFormat } from '../store/io.ts';
import type { Job } from '../store/schema.ts';
import { RemoteTeacher } from '../teacher/remote.ts';
import { exportDataset, writeFileAtomic } from './cli-export.ts';
import { createElicitJob, elicitJobStrategy, JOB_KIND_PREFIX, runElicitJob, strategyByName } from './run.ts';

export const ELICIT_USAGE = `usage: npm run cli -- elicit --base-url URL --model NAME [--api-key-env VAR] --strategy S
                          --config file.json --out file.jsonl [--store DIR] [--format openai|alpaca|sharegpt]
                          [--with-provenance] [--max-concurrency N] [--first-byte-timeout-ms N|auto]
                          [--idle-timeout-ms N|auto] [--total-timeout-ms N|auto] [--no-hedge] [--commit-every-ms N]
                          [--members NAME[@URL],...]   (ensemble: its teachers; --model is the judge)
       npm run cli -- elicit --resume (--store DIR | --out file.jsonl) [flags above to change them]
       npm run cli -- elicit --export (--store DIR | --out file.jsonl) [--out F] [--format F] [--with-provenance]
The store (default <out>.store) keeps every committed answer: --resume continues a stopped or killed job,
--export writes what it holds now.`;

export interface ElicitIo {
  env: Record<string, string | undefined>;
  /** Progress and errors (stderr). */
  log: (line: string) => void;
  signal?: AbortSignal;
}

const TEACHER_FLAGS = ['--base-url', '--model', '--api-key-env', '--max-concurrency', '--first-byte-timeout-ms', '--idle-timeout-ms', '--total-timeout-ms'];
const VALUE_FLAGS = [...TEACHER_FLAGS, '--members', '--strategy', '--config', '--out', '--format', '--store', '--commit-every-ms'];
const BOOL_FLAGS = ['--with-provenance', '--resume', '--export', '--no-hedge'];
const SETTINGS = 'elicit.json';

class UsageError extends Error {}

/** What a store folder remembers of the command that made it (never the key: only its variable's name). */
interface Settings {
  version: 1;
  strategy: string;
  baseURL: string;
  model: string;
  apiKeyEnv: string | null;
  teacher: Record<string, number | string>;
  /** ensemble: its teachers, each {model, baseURL} (same key variable and limits as the judge). */
  members?: { model: string; baseURL: string }[];
  out: string;
  format: JsonlFormat;
  withProvenance: boolean;
}

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
  if (out['--resume'] && out['--export']) throw new UsageError('--resume and --export exclude each other');
  if (out['--resume'] || out['--export']) {
    if (!out['--store'] && !out['--out']) throw new UsageError(`${out['--resume'] ? '--resume' : '--export'} needs --store DIR (or the --out of the run)`);
    for (const k of ['--strategy', '--config']) if (out[k]) throw new UsageError(`${k} belongs to a new job; the store's job keeps its own`);
  } else {
    for (const k of ['--base-url', '--model', '--strategy', '--config', '--out']) if (!out[k]) throw new UsageError(`${k} is required`);
  }
  return out;
}

function storeDir(a: Record<string, string>): string {
  return a['--store'] ?? `${a['--out']}.store`;
}

function readSettings(dir: string): Settings | null {
  const p = join(dir, SETTINGS);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Settings;
  } catch (e) {
    throw new Error(`${p}: ${(e as Error).message}`);
  }
}

/** The settings of this run: the store's, changed by the flags given now. */
function settingsFrom(a: Record<string, string>, base: Settings | null, strategy: string): Settings {
  const teacher: Record<string, number | string> = { ...(base?.teacher ?? {}) };
  const num = (flag: string, key: string, auto: boolean) => {
    const v = a[flag];
    if (v === undefined) return;
    teacher[key] = auto && v === 'auto' ? 'auto' : Number(v);
  };
  num('--max-concurrency', 'maxConcurrency', false);
  num('--first-byte-timeout-ms', 'firstByteTimeoutMs', true);
  num('--idle-timeout-ms', 'idleTimeoutMs', true);
  num('--total-timeout-ms', 'totalTimeoutMs', true);
  const format = (a['--format'] ?? base?.format ?? 'openai') as JsonlFormat;
  if (!JSONL_FORMATS.includes(format)) throw new Error(`--format must be one of ${JSONL_FORMATS.join(', ')}`);
  const baseURL = a['--base-url'] ?? base?.baseURL;
  const model = a['--model'] ?? base?.model;
  const out = a['--out'] ?? base?.out;
  if (!baseURL || !model || !out) throw new Error('the store has no settings to resume with (elicit.json): give --base-url, --model and --out');
  const members = a['--members'] !== undefined ? parseMembers(a['--members'], baseURL) : base?.members;
  return {
    version: 1, strategy, baseURL, model, apiKeyEnv: a['--api-key-env'] ?? base?.apiKeyEnv ?? null, teacher, out, format,
    withProvenance: a['--with-provenance'] === 'true' || (base?.withProvenance ?? false),
    ...(members ? { members } : {}),
  };
}

/** `--members a,b@http://host/v1`: each member's model and base URL (the judge's when not given). */
function parseMembers(v: string, baseURL: string): { model: string; baseURL: string }[] {
  return v.split(',').map((m, i) => {
    const at = m.indexOf('@');
    const model = (at < 0 ? m : m.slice(0, at)).trim();
    const url = at < 0 ? baseURL : m.slice(at + 1).trim();
    if (model === '') throw new Error(`--members: entry ${i + 1} has no model name (expected NAME or NAME@URL, comma-separated)`);
    try { new URL(url); } catch { throw new Error(`--members: ${model}'s base URL '${url}' is not a URL`); }
    return { model, baseURL: url };
  });
}

function teacherOf(s: Settings, env: Record<string, string | undefined>, member?: { model: string; baseURL: string }): RemoteTeacher {
  let apiKey = '';
  if (s.apiKeyEnv) {
    apiKey = env[s.apiKeyEnv] ?? '';
    if (apiKey === '') throw new Error(`the environment variable ${s.apiKeyEnv} (--api-key-env) is empty or not set`);
  }
  return new RemoteTeacher({ baseURL: member?.baseURL ?? s.baseURL, model: member?.model ?? s.model, apiKey, ...s.teacher });
}

/** The store's elicitation job (a store made by this command holds exactly one), or null. */
async function storeJob(js: JournalStore): Promise<Job | null> {
  const jobs = (await js.store.listJobs()).filter((j) => j.kind.startsWith(JOB_KIND_PREFIX));
  if (jobs.length > 1) throw new Error(`the store ${js.dir} holds ${jobs.length} elicitation jobs; this command expects one`);
  return jobs[0] ?? null;
}

async function writeOutput(js: JournalStore, job: Job, s: Settings, io: ElicitIo): Promise<void> {
  const { strategy } = elicitJobStrategy(job);
  const r = await exportDataset(js.store, job.datasetId, s.out, { format: s.format, withProvenance: s.withProvenance, feature: strategy.name === 'feature' });
  const skipped = r.skipped > 0 ? ` (${r.skipped} records the ${s.format} format cannot hold left out)` : '';
  const state = job.status === 'done' ? 'done' : `job ${job.status}, ${job.progress.done}/${job.progress.total} so far`;
  io.log(`${state === 'done' ? 'done' : `exported (${state})`}: ${r.records} records, ${r.pairs} pairs, ${r.topkTokens} top-k tokens → ${s.out}${skipped}`);
}

/** An ensemble config's `teachers` from --members (which it must then match, when the config names them). */
function withMembers(config: unknown, s: Settings): unknown {
  if (!s.members) throw new Error("strategy 'ensemble' asks several teachers: name them with --members NAME[@URL],NAME[@URL] (--model is the judge)");
  const names = s.members.map((m) => m.model);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return config;
  const given = (config as { teachers?: unknown }).teachers;
  if (given !== undefined && JSON.stringify(given) !== JSON.stringify(names)) {
    throw new Error(`--config names the teachers ${JSON.stringify(given)} but --members gives ${JSON.stringify(names)}: make them the same, or leave teachers out of the config`);
  }
  return { ...config, teachers: names };
}

/** Runs the command; resolves with the exit code (0 done, 1 failed or stopped, 2 bad arguments). */
export async function elicitCommand(args: string[], io: ElicitIo = { env: process.env, log: (l) => console.error(l) }): Promise<number> {
  let a: Record<string, string>;
  try {
    a = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.log(`error: ${e.message}\n\n${ELICIT_USAGE}`);
    return 2;
  }
  let js: JournalStore | null = null;
  try {
    const dir = storeDir(a);
    if (a['--export']) {
      js = await openJournalStore(dir, { readOnly: true });
      const job = await storeJob(js);
      if (!job) throw new Error(`the store ${dir} holds no job`);
      await writeOutput(js, job, settingsFrom(a, readSettings(dir), elicitJobStrategy(job).strategy.name), io);
      return 0;
    }
    let settings: Settings;
    let teacher: RemoteTeacher;
    let job: Job | null;
    if (a['--resume']) {
      const base = readSettings(dir);
      js = await openJournalStore(dir);
      job = await storeJob(js);
      if (!job) throw new Error(`the store ${dir} holds no job to resume (start one without --resume)`);
      settings = settingsFrom(a, base, elicitJobStrategy(job).strategy.name);
      teacher = teacherOf(settings, io.env);
      writeFileAtomic(join(dir, SETTINGS), JSON.stringify(settings, null, 2));
      io.log(`resuming job ${job.id} (${job.status}, ${job.progress.done}/${job.progress.total}) from ${dir} (${js.replayed} commits replayed${js.droppedBytes > 0 ? `, a torn last write of ${js.droppedBytes} bytes dropped` : ''})`);
    } else {
      const strategy = strategyByName(a['--strategy']);
      if (strategy.name === 'feedback' || strategy.name === 'self-knowledge') {
        throw new Error(`strategy '${strategy.name}' needs the student's sampler, which the CLI does not have yet (run it in the app)`);
      }
      settings = settingsFrom(a, null, strategy.name);
      teacher = teacherOf(settings, io.env);
      let config: unknown;
      try {
        config = JSON.parse(readFileSync(a['--config']!, 'utf8'));
      } catch (e) {
        throw new Error(`--config ${a['--config']}: ${(e as Error).message}`);
      }
      if (strategy.name === 'ensemble') config = withMembers(config, settings);
      strategy.validate(config); // a bad config fails here, before the store is made
      js = await openJournalStore(dir);
      const old = await storeJob(js);
      if (old) {
        throw new Error(`the store ${dir} already holds a ${elicitJobStrategy(old).strategy.name} job (${old.status}, ${old.progress.done}/${old.progress.total}): ` +
          'continue it with --resume, write its JSONL with --export, or give another --store');
      }
      writeFileAtomic(join(dir, SETTINGS), JSON.stringify(settings, null, 2));
      const ds = await js.store.createDataset({ name: `elicit ${strategy.name}` });
      job = await createElicitJob(js.store, ds.id, strategy, config);
    }
    if (job.status !== 'done') {
      const runOpts: Parameters<typeof runElicitJob>[2] = {
        teacher,
        ...(settings.members ? { members: settings.members.map((m) => teacherOf(settings, io.env, m)) } : {}),
        hedge: a['--no-hedge'] !== 'true', // a retrying straggler of the tail gets a second attempt (runElicitJob)
        onProgress: (j) => io.log(`progress ${j.progress.done}/${j.progress.total} tokens=${j.progress.tokens} cost=${j.progress.cost.toFixed(6)}`),
      };
      if (io.signal) runOpts.signal = io.signal;
      if (a['--commit-every-ms']) {
        const ms = Number(a['--commit-every-ms']);
        if (!Number.isInteger(ms) || ms < 1) throw new Error(`--commit-every-ms must be a positive integer, got '${a['--commit-every-ms']}'`);
        runOpts.commitEveryMs = ms;
      }
      job = await runElicitJob(js.store, job.id, runOpts);
    }
    if (job.status !== 'done') {
      throw new Error(`the job ended ${job.status}${job.error ? `: ${job.error}` : ''}; what it committed is kept in ${dir}: ` +
        `continue with --resume --store ${dir} (or write it now with --export)`);
    }
    await writeOutput(js, job, settings, io);
    return 0;
  } catch (e) {
    io.log(`error: ${(e as Error).message}`);
    return 1;
  } finally {
    await js?.close();
  }
}
