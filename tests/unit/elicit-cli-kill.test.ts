// The elicit CLI killed for real (issue #12): the real CLI (src/cli/main.ts, bundled by esbuild into a temporary
// folder as scripts/build-node.mjs does) runs a labeling job as a child process against the test server (in this
// process, with faults — a few requests never answered — so the child has retries and deadlines in flight), and
// is SIGKILLed at random instants 20 times: while starting, replaying its store, waiting on requests, committing
// (every other kill is timed from the moment the child says it is at work, so a slow machine cannot push them all
// into start-up).
// After each kill the store opens (read-only, as `--export` does) with every record at most once and exactly the
// records its job's cursor says are committed; a journal that exists but does not open fails the test (only a kill
// before the journal was created counts as "no store yet"). `--export` writes a JSONL of them. Then `--resume`
// finishes the job, and its JSONL (with provenance) has every prompt exactly once and is line for line the JSONL of
// an uninterrupted run with the same seeds, but for the provenance's timestamps (when each answer came back).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournalStore } from '../../src/cli/journal-store.ts';
import { readWindowCursor, nextOpen } from '../../src/store/window.ts';
import { Rng } from '../../src/util/rng.ts';
import { startOpenAiServer, type OpenAiServer } from '../support/openai-server.ts';
import { BigramModel } from '../support/text-model.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const M = 800; // enough work that the job outlasts 20 kills also on a loaded machine (400 ended after 14 there)
let work: string;
let cli: string;
let server: OpenAiServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'elicit-kill-'));
  cli = join(work, 'cli.mjs');
  await build({
    entryPoints: [join(ROOT, 'src/cli/main.ts')], outfile: cli, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    external: ['webgpu'], logLevel: 'warning',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    plugins: [{
      name: 'raw',
      setup(b) {
        b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: resolve(a.resolveDir, a.path.slice(0, -4)), namespace: 'raw' }));
        b.onLoad({ filter: /.*/, namespace: 'raw' }, (a) => ({ contents: readFileSync(a.path, 'utf8'), loader: 'text' }));
      },
    }],
  });
  server = await startOpenAiServer({
    model: new BigramModel(), latencyMs: 40, seed: 3,
    faults: { p429: 0.04, p500: 0.03, pCutStream: 0.03, pMalformed: 0.03, pTimeout: 0.03, timeoutMode: 'hang', retryAfterMs: [1, 3] },
  });
  const inputs = Array.from({ length: M }, (_, i) => `Tell me about the mill and the river, part ${i}.`);
  writeFileSync(join(work, 'cfg.json'), JSON.stringify({ inputs, maxTokens: 10, temperature: 0.8, seed: 11 }));
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Exit { code: number | null; signal: NodeJS.Signals | null; stderr: string }

/**
 * Runs the CLI; with `kill`, SIGKILLs it `ms` after it started — or, with `running`, `ms` after it said it is at work
 * (its first "resuming" or "progress" line), so that on a slow machine kills land in the run and not only in start-up.
 */
function runCli(args: string[], kill?: { ms: number; running: boolean }): Promise<Exit> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(process.execPath, [cli, 'elicit', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => { timer ??= setTimeout(() => child.kill('SIGKILL'), kill!.ms); };
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (kill?.running && /resuming|progress /.test(stderr)) arm();
    });
    if (kill && !kill.running) arm();
    child.once('error', reject);
    child.once('exit', (code, signal) => { clearTimeout(timer); resolveExit({ code, signal, stderr }); });
  });
}

const jobArgs = (out: string) => [
  '--base-url', server.url, '--model', server.model.name, '--strategy', 'labeling', '--config', join(work, 'cfg.json'),
  '--out', out, '--max-concurrency', '6', '--with-provenance', '--commit-every-ms', '150',
];

/** The store as `--export` sees it: every record at most once, and exactly the items its cursor has committed. */
async function checkStore(dir: string): Promise<{ records: number; status: string } | null> {
  // Killed before the store existed: no journal yet (a kill between the folder's mkdir and the journal's creation
  // leaves the folder alone). A journal that exists must open: an error here fails the test.
  if (!existsSync(join(dir, 'journal.log'))) return null;
  const js = await openJournalStore(dir, { readOnly: true });
  try {
    const job = (await js.store.listJobs())[0];
    if (!job) return null;
    const recs = await js.store.getRecords(job.datasetId, { limit: 10_000 });
    const keys = recs.map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    const pos = readWindowCursor(job.cursor, M);
    const committed = new Set<number>();
    for (let i = 0; i < M; i++) if (nextOpen(pos, i) !== i) committed.add(i);
    const stored = new Set(keys.map((k) => Number(k.split(':')[2])));
    const empty = Number((job.cursor as { stats?: { emptyAnswer?: number } } | null)?.stats?.emptyAnswer ?? 0);
    for (const i of stored) expect(committed.has(i)).toBe(true);
    expect(stored.size + empty).toBe(committed.size);
    expect(job.progress.done).toBe(committed.size);
    expect((await js.store.counts(job.datasetId)).records).toBe(recs.length);
    return { records: recs.length, status: job.status };
  } finally {
    await js.close();
  }
}

/** The JSONL without the provenance's time (the only field that differs between two runs with the same seeds). */
function normalized(path: string): string[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => {
    const o = JSON.parse(l) as { messages: unknown; provenance: { time: number } };
    o.provenance.time = 0;
    return JSON.stringify(o);
  });
}

describe('elicit CLI under SIGKILL', () => {
  it('20 kills at random instants, then --resume: every prompt once, the same JSONL as an uninterrupted run', async () => {
    const refOut = join(work, 'ref.jsonl');
    const ref = await runCli(jobArgs(refOut));
    expect(ref.stderr).toMatch(/done: \d+ records/);
    expect(ref.code).toBe(0);
    const want = normalized(refOut);
    expect(want.length).toBeGreaterThan(M * 0.8); // the rest were empty answers (counted, not stored)

    const out = join(work, 'killed.jsonl');
    const dir = `${out}.store`;
    const rng = new Rng(20261202);
    let kills = 0;
    let finishedEarly = 0;
    const seen: number[] = [];
    for (let k = 0; k < 20; k++) {
      const args = k === 0 ? jobArgs(out) : ['--resume', '--store', dir, '--commit-every-ms', '150'];
      // Even kills: any instant from the start (start-up, replay, the first requests); odd ones: within the run.
      const r = await runCli(args, k % 2 === 0 ? { ms: 100 + rng.int(1500), running: false } : { ms: rng.int(1500), running: true });
      if (r.signal === 'SIGKILL') kills++;
      else {
        expect(r.code, r.stderr).toBe(0);
        finishedEarly++;
      }
      const s = await checkStore(dir);
      if (s) seen.push(s.records);
      if (s?.status === 'done') break;
    }
    expect(kills).toBeGreaterThanOrEqual(15);
    expect(seen.at(-1)!, JSON.stringify(seen)).toBeGreaterThan(seen[0]!); // runs between the kills made progress that the kills kept
    const mid = await runCli(['--export', '--store', dir, '--out', join(work, 'mid.jsonl')]);
    expect(mid.code, mid.stderr).toBe(0);
    const midLines = normalized(join(work, 'mid.jsonl'));
    expect(new Set(midLines).size).toBe(midLines.length);

    const fin = await runCli(['--resume', '--store', dir]);
    expect(fin.code, fin.stderr).toBe(0);
    expect(fin.stderr).toMatch(/done: \d+ records/);
    const got = normalized(out);
    expect(got).toEqual(want);
    const inputs = got.map((l) => (JSON.parse(l) as { messages: { content: string }[] }).messages[0]!.content);
    expect(new Set(inputs).size).toBe(inputs.length);
    for (const l of midLines) expect(want).toContain(l); // what was committed before the end is in the final file unchanged
    console.log('[elicit kill]', JSON.stringify({ kills, finishedEarly, recordsSeenAfterKills: seen, records: got.length }));
  }, 240_000);
});
