// Elicitation throughput benchmark (issue #5; no GPU): the test OpenAI server (tests/support/openai-server.ts) on
// 127.0.0.1 answers every chat request after a fixed latency L (no faults, tokensPerSecond 0, a bigram model); a
// labeling job of M prompts runs through RemoteTeacher with maxConcurrency C into a DistillStore over
// fake-indexeddb. The server's capacity at concurrency C is C / L requests per second; the job's throughput is
// M / wall time; ratio = throughput / capacity (the goal is ≥ 0.9). Per C it also reports the client-side request
// latency (fetch sent → last body byte, p50/p95), how full the C slots were on average (utilization), the client
// thread's event-loop load and CPU per request: they separate "requests took longer than L" (CPU: the SDK, the
// test server, other processes) from "slots stood empty" (the job's own pipeline). In the CLI the server runs in a
// worker thread, as a remote server would not share our event loop.
// With --faults R (issue #12) the server also fails a share R of the requests like real LLM servers do, in the mix
// of FAULT_MIX: 429/500/503 with Retry-After, cut streams, malformed bodies, slow trickles and — a fifth of R —
// requests accepted and never answered; goodput = prompts answered per second, and goodputRatio = goodput ÷ the
// fault-free run's at the same C and L (the fault-free rate is measured in the same command: list 0 first).
// Every run is checked: job done, each prompt's record stored exactly once, one HTTP request per prompt (at least
// one when faults are injected), never more than C requests open at the client (nor at the server, fault-free).
// --hedge on|off (default on, as the CLI runs jobs): runElicitJob's second attempts for retrying stragglers.
//   npm run bench -- --suite elicit [--latency-ms 100] [--prompts 512] [--concurrency 1,4,16,32] [--faults 0,0.3] [--hedge on|off]
//                                   [--batch-size N|auto] [--max-tokens 16] [--server worker|same-thread] [--out f.json]
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { performance as nodePerformance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { labeling, labelingBatchSize } from '../src/elicit/labeling.ts';
import { createElicitJob, runElicitJob } from '../src/elicit/run.ts';
import { openStore, type DistillStore } from '../src/store/store.ts';
import { RemoteTeacher } from '../src/teacher/remote.ts';
import { startOpenAiServer, type FaultConfig } from '../tests/support/openai-server.ts';
import { BigramModel } from '../tests/support/text-model.ts';

export interface ElicitBenchOptions {
  /** Fixed server latency L before every answer (ms). */
  latencyMs: number;
  /**
   * Prompts M in the labeling job (one request and one record each). The default 512 is a multiple of every default
   * C, so the last round of requests is full (with M = 400 at C = 32 the ceiling would be 400 / (13·32) = 0.96).
   */
  prompts: number;
  /** The maxConcurrency values C to measure, one run each (per fault rate). */
  concurrency: number[];
  /** Shares of requests the server fails (FAULT_MIX scaled to each), one run each per C; 0 = fault-free. */
  faults: number[];
  /** runElicitJob's `hedge` (a retrying straggler of the tail gets a second attempt), as the CLI runs it. */
  hedge: boolean;
  /** The labeling job's batchSize (inputs per step); 'auto' = the job's default. */
  batchSize: number | 'auto';
  /** max_tokens of every request (the server's work per request; it answers at once after L). */
  maxTokens: number;
  /** Where the test server runs (default this thread; the CLI uses a worker). */
  server: ServerPlacement;
  /** The module a worker-thread server runs: a bundle that includes this file (the CLI passes its own URL). */
  workerModule?: URL;
  /** Called with each row as it is measured. */
  log?: (row: ElicitBenchRow) => void;
  /** Called after each run with its store (still open), dataset and job: tests check the records themselves. */
  inspect?: (store: DistillStore, datasetId: string, jobId: string) => Promise<void>;
}

export const ELICIT_BENCH_DEFAULTS: ElicitBenchOptions = {
  latencyMs: 100, prompts: 512, concurrency: [1, 4, 16, 32], faults: [0], hedge: true, batchSize: 'auto', maxTokens: 16, server: 'same-thread',
};

/**
 * The fault mix at a fault rate of 1 (scaled by the rate): a fifth never answered, the rest 429/500/503 with
 * Retry-After, cut streams, malformed bodies and slow trickles (a chunk every 100 ms: a 16-token answer takes 1.6 s).
 */
export const FAULT_MIX = { p429: 0.2, p500: 0.12, p503: 0.12, pCutStream: 0.12, pMalformed: 0.12, pTrickle: 0.12, pTimeout: 0.2 };

/** The server's fault config at `rate` (0 = none). */
export function faultConfig(rate: number): Partial<FaultConfig> | undefined {
  if (rate === 0) return undefined;
  const scaled = Object.fromEntries(Object.entries(FAULT_MIX).map(([k, p]) => [k, p * rate]));
  return { ...scaled, timeoutMode: 'hang', trickleMs: 100, retryAfterMs: [1, 5] };
}

export interface ElicitBenchRow {
  suite: 'elicit';
  concurrency: number;
  latencyMs: number;
  prompts: number;
  /** Share of requests the server was told to fail (0 = fault-free). */
  faultRate: number;
  hedge: boolean;
  /** Inputs per commit (the job's batchSize, or the automatic size for this teacher). */
  batchSize: number;
  server: ServerPlacement;
  wallMs: number;
  /** M / wall time (requests per second). */
  measuredRps: number;
  /** C / L (requests per second). */
  capacityRps: number;
  /** measuredRps / capacityRps. */
  ratio: number;
  /** measuredRps ÷ the fault-free run's at the same C and L (measured earlier in the same command); null if none. */
  goodputRatio: number | null;
  /** Faults the server injected (all kinds, trickles and hangs included) and, of those, requests never answered. */
  faultsInjected: number;
  hangs: number;
  /** Attempts the client cut for missing a deadline (first byte, idle, overall), and the deadlines at the end. */
  deadlineMisses: number;
  firstByteDeadlineMs: number | null;
  /** Client-side latency of the HTTP requests (fetch sent → last byte of the body), ms. */
  p50Ms: number;
  p95Ms: number;
  /** Mean requests in flight over the wall time ÷ C. */
  utilization: number;
  /** Store commits (batches of finished requests) and the time they took (wall clock: overlapped with requests). */
  commits: number;
  commitMsTotal: number;
  commitMsMax: number;
  /** Share of the wall time this thread's event loop was busy (client, job runner, store; the server too when same-thread). */
  eventLoopBusy: number;
  /** CPU time of this process (user + system; all threads) per request over the run. */
  cpuMsPerRequest: number;
  /** Most chat requests the server had in flight at once. */
  serverMaxInFlight: number;
  /** Most HTTP requests the client had open at once (fetch sent → end of the body, or its failure). */
  clientMaxInFlight: number;
  /** HTTP chat requests the server received. */
  requests: number;
  /** Records stored in the dataset. */
  records: number;
  /** Prompts whose answer was empty (skipped by the labeling job, counted in its cursor): records + skipped = M. */
  skippedEmpty: number;
  /** Every prompt's record stored exactly once, job done, one request per prompt (≥ one with faults), ≤ C in flight. */
  checkOk: boolean;
  checkDetail: string;
}

/** q-quantile (0..1) of the values by the nearest-rank rule; NaN for none. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A fetch that records each request's latency (call → end of its body) and the requests in flight over time
 * (as the integral of in-flight count dt, for the mean).
 */
export function timedFetch(now: () => number) {
  const latencies: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let area = 0;
  let last = now();
  const tick = (delta: number) => {
    const t = now();
    area += inFlight * (t - last);
    last = t;
    inFlight += delta;
    maxInFlight = Math.max(maxInFlight, inFlight);
  };
  const fetch: FetchFn = async (input, init) => {
    const t0 = now();
    tick(+1);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      tick(-1);
      latencies.push(now() - t0);
    };
    try {
      const res = await globalThis.fetch(input, init);
      if (!res.body) { finish(); return res; }
      // The request ends when its body has been read to the end, or cancelled (an SDK may stop at [DONE]).
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          try {
            const { value, done: end } = await reader.read();
            if (end) { finish(); ctl.close(); } else ctl.enqueue(value);
          } catch (e) {
            finish();
            ctl.error(e);
          }
        },
        cancel(reason) {
          finish();
          return reader.cancel(reason);
        },
      });
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } catch (e) {
      finish();
      throw e;
    }
  };
  return { fetch, latencies, maxInFlight: () => maxInFlight, meanInFlight: (t0: number, t1: number) => { tick(0); return area / Math.max(1e-9, t1 - t0); }, reset: () => { tick(0); area = 0; } };
}

/** Where the test server runs: in this thread (tests), or in a worker thread (the CLI: its CPU is not ours). */
export type ServerPlacement = 'same-thread' | 'worker';

interface BenchServer {
  url: string;
  modelName: string;
  stats(): Promise<ServerStats>;
  close(): Promise<void>;
}

interface ServerWorkerData {
  elicitBenchServer: { latencyMs: number; faultRate: number };
}

function isServerWorkerData(x: unknown): x is ServerWorkerData {
  return typeof x === 'object' && x !== null && 'elicitBenchServer' in x;
}

const serverOptions = (latencyMs: number, faultRate: number) => {
  const faults = faultConfig(faultRate);
  return { model: new BigramModel(), latencyMs, tokensPerSecond: 0, seed: 1, ...(faults ? { faults } : {}) };
};

interface ServerStats { chatRequests: number; maxInFlight: number; faultsInjected: number; hangs: number }
function serverStats(s: Awaited<ReturnType<typeof startOpenAiServer>>): ServerStats {
  const f = s.stats.faults;
  const faultsInjected = Object.values(f).reduce((a, b) => a + b, 0) + s.stats.trickled;
  return { chatRequests: s.stats.chatRequests, maxInFlight: s.stats.maxInFlight, faultsInjected, hangs: f.timeout };
}

/** Starts the test server here, or in a worker running `workerModule` (a bundle that includes this file). */
async function startBenchServer(latencyMs: number, faultRate: number, placement: ServerPlacement, workerModule: URL | undefined): Promise<BenchServer> {
  if (placement === 'same-thread') {
    const s = await startOpenAiServer(serverOptions(latencyMs, faultRate));
    return { url: s.url, modelName: s.model.name, stats: async () => serverStats(s), close: () => s.close() };
  }
  if (!workerModule) throw new Error('elicit bench: a worker-thread server needs the bundled module to run (workerModule)');
  const data: ServerWorkerData = { elicitBenchServer: { latencyMs, faultRate } };
  const worker = new Worker(workerModule, { workerData: data });
  const reply = <T>(): Promise<T> => new Promise<T>((resolve, reject) => {
    const onError = (e: unknown) => reject(e instanceof Error ? e : new Error(String(e)));
    worker.once('error', onError);
    worker.once('message', (m: T) => { worker.off('error', onError); resolve(m); });
  });
  const hello = await reply<{ url: string; modelName: string }>();
  return {
    url: hello.url,
    modelName: hello.modelName,
    stats: async () => { const r = reply<ServerStats>(); worker.postMessage('stats'); return r; },
    close: async () => { const r = reply<string>(); worker.postMessage('close'); await r; await worker.terminate(); },
  };
}

/** The worker side: serve until told to close; answer 'stats' with the server's counters. */
async function serveInWorker(d: ServerWorkerData): Promise<void> {
  const port = parentPort!;
  const s = await startOpenAiServer(serverOptions(d.elicitBenchServer.latencyMs, d.elicitBenchServer.faultRate));
  port.on('message', (m: unknown) => {
    if (m === 'stats') port.postMessage(serverStats(s));
    if (m === 'close') void s.close().then(() => port.postMessage('closed'));
  });
  port.postMessage({ url: s.url, modelName: s.model.name });
}

if (!isMainThread && isServerWorkerData(workerData)) void serveInWorker(workerData);

/** One run at concurrency C and fault rate `faultRate`; `cleanRps` = the fault-free run's rate at this C, if known. */
async function runOne(o: ElicitBenchOptions, C: number, faultRate: number, cleanRps: number | undefined): Promise<ElicitBenchRow> {
  const server = await startBenchServer(o.latencyMs, faultRate, o.server, o.workerModule);
  const store = await openStore(`elicit-bench-${C}`, new IDBFactory());
  try {
    const now = () => performance.now();
    const timed = timedFetch(now);
    const teacher = new RemoteTeacher(
      { baseURL: server.url, model: server.modelName, maxConcurrency: C, timeoutMs: 60_000 },
      { fetch: timed.fetch },
    );
    const ds = await store.createDataset({ name: `elicit bench C=${C}` });
    const inputs = Array.from({ length: o.prompts }, (_, i) => `Tell me about the river, part ${i}.`);
    const config: Record<string, unknown> = { inputs, maxTokens: o.maxTokens, temperature: 0.7, seed: 1 };
    if (o.batchSize !== 'auto') config.batchSize = o.batchSize;
    const job = await createElicitJob(store, ds.id, 'labeling', config);
    const batchSize = labelingBatchSize(labeling.validate((job.config as { config: unknown }).config), teacher);

    // Time spent in the store's commits (each step's records + cursor in one transaction).
    const commits: number[] = [];
    const updateJob = store.updateJob.bind(store);
    store.updateJob = async (...a: Parameters<typeof updateJob>) => {
      const s = now();
      try {
        return await updateJob(...a);
      } finally {
        commits.push(now() - s);
      }
    };
    const cpu0 = process.cpuUsage();
    const elu0 = nodePerformance.eventLoopUtilization();
    timed.reset();
    const t0 = now();
    const end = await runElicitJob(store, job.id, { teacher, hedge: o.hedge });
    const t1 = now();
    const wallMs = t1 - t0;
    const cpu = process.cpuUsage(cpu0);
    const elu = nodePerformance.eventLoopUtilization(elu0);
    const stats = await server.stats();

    const recs = await store.getRecords(ds.id, { limit: o.prompts + 10 });
    const problems: string[] = [];
    if (end.status !== 'done') problems.push(`job ended ${end.status}${end.error ? `: ${end.error}` : ''}`);
    const want = new Set(inputs.map((_, i) => `${job.id}:labeling:${i}:0`));
    const keys = new Set(recs.map((r) => r.key));
    if (keys.size !== recs.length) problems.push('a record key is stored twice');
    // The labeling job skips (and counts in its cursor) answers that are empty: the bigram model can end at once.
    const skipped = Number((end.cursor as { stats?: { emptyAnswer?: number } } | null)?.stats?.emptyAnswer ?? 0);
    const missing = [...want].filter((k) => !keys.has(k));
    if (missing.length !== skipped) problems.push(`${missing.length} prompts have no record but ${skipped} answers were empty (first ${missing[0]})`);
    if ([...keys].some((k) => !want.has(k))) problems.push('a record with an unexpected key');
    if (faultRate === 0 ? stats.chatRequests !== o.prompts : stats.chatRequests < o.prompts) problems.push(`${stats.chatRequests} requests for ${o.prompts} prompts`);
    if (faultRate === 0 && timed.latencies.length !== stats.chatRequests) problems.push(`${timed.latencies.length} responses ended for ${stats.chatRequests} requests`);
    if (timed.maxInFlight() > C) problems.push(`the client had ${timed.maxInFlight()} requests open at maxConcurrency ${C}`);
    // A request the client cut at a deadline is closed at once, but the server may take the next one in before it
    // notices that close: with faults its count can exceed C by the abandoned requests it has not yet seen go.
    if (faultRate === 0 && stats.maxInFlight > C) problems.push(`the server saw ${stats.maxInFlight} requests in flight at maxConcurrency ${C}`);
    await o.inspect?.(store, ds.id, job.id);
    const measuredRps = o.prompts / (wallMs / 1000);
    const capacityRps = C / (o.latencyMs / 1000);
    const tc = teacher.counters;
    return {
      suite: 'elicit',
      concurrency: C,
      latencyMs: o.latencyMs,
      prompts: o.prompts,
      faultRate,
      hedge: o.hedge,
      batchSize,
      server: o.server,
      wallMs: round(wallMs, 1),
      measuredRps: round(measuredRps, 2),
      capacityRps: round(capacityRps, 2),
      ratio: round(measuredRps / capacityRps, 4),
      goodputRatio: cleanRps === undefined ? null : round(measuredRps / cleanRps, 4),
      faultsInjected: stats.faultsInjected,
      hangs: stats.hangs,
      deadlineMisses: tc.firstByteTimeouts + tc.idleTimeouts + tc.totalTimeouts,
      firstByteDeadlineMs: teacher.deadlines.firstByteMs,
      p50Ms: round(quantile(timed.latencies, 0.5), 1),
      p95Ms: round(quantile(timed.latencies, 0.95), 1),
      utilization: round(timed.meanInFlight(t0, t1) / C, 4),
      commits: commits.length,
      commitMsTotal: round(commits.reduce((a, b) => a + b, 0), 1),
      commitMsMax: round(Math.max(0, ...commits), 1),
      eventLoopBusy: round(elu.utilization, 4),
      cpuMsPerRequest: round((cpu.user + cpu.system) / 1000 / o.prompts, 3),
      serverMaxInFlight: stats.maxInFlight,
      clientMaxInFlight: timed.maxInFlight(),
      requests: stats.chatRequests,
      records: recs.length,
      skippedEmpty: skipped,
      checkOk: problems.length === 0,
      checkDetail: problems.join('; '),
    };
  } finally {
    store.close();
    await server.close();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Measures every C in turn (one fresh server, store and teacher each). */
export async function runElicitBench(options: Partial<ElicitBenchOptions> = {}): Promise<ElicitBenchRow[]> {
  const o: ElicitBenchOptions = { ...ELICIT_BENCH_DEFAULTS, ...options };
  if (!(o.latencyMs > 0)) throw new Error(`elicit bench: latencyMs must be > 0, got ${o.latencyMs}`);
  if (!Number.isInteger(o.prompts) || o.prompts < 1) throw new Error(`elicit bench: prompts must be a positive integer, got ${o.prompts}`);
  if (o.concurrency.length === 0 || !o.concurrency.every((c) => Number.isInteger(c) && c >= 1 && c <= 1024)) {
    throw new Error(`elicit bench: concurrency must be integers in [1, 1024], got ${o.concurrency.join(',')}`);
  }
  if (o.faults.length === 0 || !o.faults.every((f) => Number.isFinite(f) && f >= 0 && f <= 0.9)) {
    throw new Error(`elicit bench: faults must be shares in [0, 0.9], got ${o.faults.join(',')}`);
  }
  const rows: ElicitBenchRow[] = [];
  for (const C of o.concurrency) {
    let clean: number | undefined;
    for (const f of o.faults) {
      const row = await runOne(o, C, f, f === 0 ? undefined : clean);
      if (f === 0) clean = row.measuredRps;
      rows.push(row);
      o.log?.(row);
    }
  }
  return rows;
}

/** The table printed after a run (markdown). */
export function formatElicitTable(rows: ElicitBenchRow[]): string {
  const head = '| C | L ms | M | faults | batch | wall s | measured req/s | capacity req/s | ratio | vs fault-free | p50 ms | p95 ms | slots used | loop busy | CPU ms/req |';
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|';
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = rows.map((r) =>
    `| ${r.concurrency} | ${r.latencyMs} | ${r.prompts} | ${r.faultRate === 0 ? 'none' : `${pct(r.faultRate)} (${r.hangs} hung)`} | ${r.batchSize} | ` +
    `${(r.wallMs / 1000).toFixed(2)} | ${r.measuredRps.toFixed(1)} | ${r.capacityRps.toFixed(1)} | ` +
    `${r.ratio.toFixed(3)}${r.faultRate > 0 || r.ratio >= 0.9 ? '' : ' (< 0.9)'} | ${r.goodputRatio === null ? '' : r.goodputRatio.toFixed(3)} | ` +
    `${r.p50Ms.toFixed(1)} | ${r.p95Ms.toFixed(1)} | ` +
    `${pct(r.utilization)} | ${pct(r.eventLoopBusy)} | ${r.cpuMsPerRequest.toFixed(2)} |${r.checkOk ? '' : ` CHECK FAILED: ${r.checkDetail}`}`);
  return [head, sep, ...lines].join('\n');
}

const OPTIONS = ['--suite', '--latency-ms', '--prompts', '--concurrency', '--faults', '--hedge', '--batch-size', '--max-tokens', '--server', '--out'];

function parseArgs(argv: string[]): { options: ElicitBenchOptions; out: string } {
  for (let i = 0; i < argv.length; i += 2) {
    if (!OPTIONS.includes(argv[i]!)) throw new Error(`elicit bench: unknown option ${argv[i]} (have: ${OPTIONS.join(' ')})`);
    if (argv[i + 1] === undefined) throw new Error(`elicit bench: ${argv[i]} needs a value`);
  }
  const get = (k: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
  const int = (k: string, dflt: number) => {
    const v = get(k);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`elicit bench: --${k} must be a positive integer, got '${v}'`);
    return n;
  };
  const d = ELICIT_BENCH_DEFAULTS;
  const bs = get('batch-size');
  const server = get('server') ?? 'worker';
  if (server !== 'worker' && server !== 'same-thread') throw new Error(`elicit bench: --server must be worker or same-thread, got '${server}'`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    options: {
      latencyMs: int('latency-ms', d.latencyMs),
      prompts: int('prompts', d.prompts),
      concurrency: get('concurrency')?.split(',').map(Number) ?? d.concurrency,
      faults: get('faults')?.split(',').map(Number) ?? d.faults,
      hedge: get('hedge') === undefined ? d.hedge : get('hedge') === 'on',
      batchSize: bs === undefined || bs === 'auto' ? 'auto' : int('batch-size', 1),
      maxTokens: int('max-tokens', d.maxTokens),
      server,
    },
    out: get('out') ?? `bench/results/elicit-${stamp}.json`,
  };
}

/**
 * `npm run bench -- --suite elicit ...`: JSON lines on stdout, the table on stderr, a JSON file in bench/results/.
 * Must run from a bundle (scripts/build-node.mjs): the worker-thread server runs this same module.
 */
export async function elicitBenchMain(argv: string[]): Promise<number> {
  const { options, out } = parseArgs(argv);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}`, loadavg: loadavg() };
  console.error(`elicit bench: L=${options.latencyMs} ms, M=${options.prompts}, C=${options.concurrency.join(',')}, faults=${options.faults.join(',')}, hedge=${options.hedge ? 'on' : 'off'}, batchSize=${options.batchSize}, ` +
    `server in ${options.server === 'worker' ? 'a worker thread' : 'this thread'}; ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, ` +
    `load ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  const rows = await runElicitBench({ ...options, workerModule: new URL(import.meta.url), log: (r) => console.log(JSON.stringify(r)) });
  console.error(formatElicitTable(rows));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), suite: 'elicit', machine, options, results: rows }, null, 2));
  console.error(`wrote ${out}`);
  return rows.every((r) => r.checkOk) ? 0 : 1;
}
