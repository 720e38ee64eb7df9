// Deadlines of one HTTP attempt, matched to how LLM servers fail (issue #12):
//   first-byte  the server accepted the request and sends nothing (a hung request, a lost connection behind a proxy)
//   idle        the body started and then fell silent between chunks (a stalled stream)
//   total       the body keeps trickling but the answer takes far longer than this server's answers usually do
// Each is a fixed number of ms or 'auto': AUTO_FACTOR × the p95 of what this teacher saw on its recent successful
// attempts, at least the kind's floor, at most timeoutMs. With fewer than AUTO_MIN_SAMPLES observations 'auto'
// falls back to what the client did before deadlines existed: the SDK's own timeout (timeoutMs, with its retries)
// until the response headers, timeoutMs of silence while reading the body, no overall limit. The auto deadlines
// are re-evaluated while an attempt waits, so a request that hung before anything was known is still cut once
// the first answers have shown the server's usual latency. A missed deadline aborts the attempt; the caller
// retries it like a 5xx (the elicitation layer: with backoff, outside the concurrency slot). A call that already
// missed one passes ChatOptions.deadlineScale (2, 4, …) so a request that is slow by nature (a long prompt) is
// given more time on each retry instead of being cut forever.
//
// Why a multiple of the usual latency rather than "a few seconds over it": a hung request holds one of the C slots
// until its deadline. At L = 200 ms with 6% of attempts hanging (and 30% failing, each costing L anyway), a deadline
// of L + 3 s adds ~0.19 s of slot time per attempt — goodput ≈ 0.35 of the fault-free run's; 2 × p95 with a 0.5 s
// floor (≈ 0.5 s there) keeps it above 0.6 (README, "Elicitation throughput"). For a server whose answers take
// seconds the auto deadline is seconds too; a request that is slow by nature is retried with it doubled.

export type DeadlineKind = 'first-byte' | 'idle' | 'total';
export type DeadlineSetting = number | 'auto';

export interface DeadlineSettings {
  firstByteTimeoutMs: DeadlineSetting;
  idleTimeoutMs: DeadlineSetting;
  totalTimeoutMs: DeadlineSetting;
  /** The hard cap of every deadline (the SDK's per-attempt timeout to the response headers). */
  timeoutMs: number;
}

/** 'auto' deadline = AUTO_FACTOR × p95 of the recent observations of that kind. */
export const AUTO_FACTOR = 2;
/** Lower bounds of the auto deadlines (ms): what a healthy server may take on a bad moment even when it is fast. */
export const AUTO_FLOOR_MS: Readonly<Record<DeadlineKind, number>> = { 'first-byte': 500, idle: 1000, total: 500 };
/** Observations needed before 'auto' uses them. */
export const AUTO_MIN_SAMPLES = 8;
/** Observations kept per kind (the most recent). */
const KEEP = 128;

/** The most recent `KEEP` values of one measurement. */
class Recent {
  private readonly values: number[] = [];
  private at = 0;
  add(v: number): void {
    if (this.values.length < KEEP) this.values.push(v);
    else { this.values[this.at] = v; this.at = (this.at + 1) % KEEP; }
  }
  get count(): number {
    return this.values.length;
  }
  /** Nearest-rank quantile (q in 0..1); NaN when empty. */
  quantile(q: number): number {
    if (this.values.length === 0) return NaN;
    const s = [...this.values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  }
}

export interface DeadlineSnapshot {
  /** The deadlines a new attempt gets now (ms; null = not enforced here). */
  firstByteMs: number | null;
  idleMs: number | null;
  totalMs: number | null;
  /** Successful attempts observed (of the most recent KEEP). */
  samples: number;
}

/** What one attempt is told when it misses a deadline. */
export type MissHandler = (kind: DeadlineKind, ms: number) => void;

interface Attempt {
  t0: number;
  headersAt: number | null;
  firstAt: number | null;
  lastAt: number;
  maxGap: number;
  endAt: number | null;
  scale: number;
  onMiss: MissHandler;
  accepted: boolean;
}

/** One attempt as the fetch wrapper sees it. */
export interface AttemptWatch {
  /** The response headers arrived. */
  headers(): void;
  /** A body chunk arrived. */
  chunk(): void;
  /** The attempt is over (its body was read to the end, failed or was cancelled): no more deadlines. */
  end(): void;
  /** This attempt produced the call's answer: its timings become an observation of the server's usual latency. */
  accept(): void;
}

/**
 * The latency model and deadline clock of one teacher: every attempt registers here; one timer (running only while
 * attempts are open) checks them against the current deadlines every SCAN_MS.
 */
export class DeadlineClock {
  private readonly firstByte = new Recent();
  private readonly gap = new Recent();
  private readonly total = new Recent();
  private readonly open = new Set<Attempt>();
  private timer: ReturnType<typeof setInterval> | null = null;
  static readonly SCAN_MS = 25;

  constructor(private readonly s: DeadlineSettings, private readonly now: () => number = () => performance.now()) {}

  /** The deadline of `kind` for an attempt whose deadlines are scaled by `scale`; null = not enforced here. */
  deadline(kind: DeadlineKind, scale = 1): number | null {
    const setting = kind === 'first-byte' ? this.s.firstByteTimeoutMs : kind === 'idle' ? this.s.idleTimeoutMs : this.s.totalTimeoutMs;
    let ms: number | null;
    if (setting !== 'auto') ms = setting;
    else {
      const r = kind === 'first-byte' ? this.firstByte : kind === 'idle' ? this.gap : this.total;
      if (r.count < AUTO_MIN_SAMPLES) ms = kind === 'total' ? null : this.s.timeoutMs;
      else ms = Math.max(AUTO_FLOOR_MS[kind], Math.ceil(AUTO_FACTOR * r.quantile(0.95)));
    }
    return ms === null ? null : Math.min(this.s.timeoutMs, Math.ceil(ms * scale));
  }

  snapshot(): DeadlineSnapshot {
    return { firstByteMs: this.deadline('first-byte'), idleMs: this.deadline('idle'), totalMs: this.deadline('total'), samples: this.total.count };
  }

  /** Starts watching an attempt sent now; its deadlines are scaled by `scale`. */
  start(onMiss: MissHandler, scale = 1): AttemptWatch {
    const t0 = this.now();
    const a: Attempt = { t0, headersAt: null, firstAt: null, lastAt: t0, maxGap: 0, endAt: null, scale, onMiss, accepted: false };
    this.open.add(a);
    this.timer ??= startTimer(() => this.scan(), DeadlineClock.SCAN_MS);
    return {
      headers: () => { a.headersAt ??= this.now(); },
      chunk: () => {
        const t = this.now();
        if (a.firstAt === null) a.firstAt = t;
        else a.maxGap = Math.max(a.maxGap, t - a.lastAt);
        a.lastAt = t;
      },
      end: () => this.finish(a),
      accept: () => {
        if (a.accepted || a.firstAt === null) return;
        a.accepted = true;
        this.finish(a);
        this.firstByte.add(a.firstAt - a.t0);
        this.gap.add(a.maxGap);
        this.total.add(a.endAt! - a.t0);
      },
    };
  }

  private finish(a: Attempt): void {
    if (a.endAt !== null) return;
    a.endAt = this.now();
    this.open.delete(a);
    if (this.open.size === 0 && this.timer !== null) { clearInterval(this.timer); this.timer = null; }
  }

  private scan(): void {
    const t = this.now();
    for (const a of [...this.open]) {
      const miss = this.missed(a, t);
      if (!miss) continue;
      this.finish(a);
      a.onMiss(miss.kind, miss.ms);
    }
  }

  private missed(a: Attempt, t: number): { kind: DeadlineKind; ms: number } | null {
    if (a.firstAt === null) {
      const ms = this.deadline('first-byte', a.scale);
      // Before the headers the SDK's own timeout (timeoutMs, retried by the SDK) covers the default case.
      if (ms === null || (a.headersAt === null && ms >= this.s.timeoutMs)) return null;
      return t - a.t0 > ms ? { kind: 'first-byte', ms } : null;
    }
    const idle = this.deadline('idle', a.scale);
    if (idle !== null && t - a.lastAt > idle) return { kind: 'idle', ms: idle };
    const total = this.deadline('total', a.scale);
    if (total !== null && t - a.t0 > total) return { kind: 'total', ms: total };
    return null;
  }
}

function startTimer(fn: () => void, ms: number): ReturnType<typeof setInterval> {
  const t = setInterval(fn, ms);
  (t as { unref?: () => void }).unref?.(); // Node: an idle teacher must not keep the process alive
  return t;
}

/** A body that reports its chunks and its end to `watch` (and passes everything through unchanged). */
export function watchedBody(body: ReadableStream<Uint8Array>, watch: AttemptWatch): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const { value, done } = await reader.read();
        if (done) { watch.end(); ctl.close(); return; }
        watch.chunk();
        ctl.enqueue(value);
      } catch (e) {
        watch.end();
        ctl.error(e);
      }
    },
    cancel(reason) {
      watch.end();
      return reader.cancel(reason);
    },
  });
}

/** The message of a TeacherError('timeout') for a missed deadline. */
export function deadlineMessage(kind: DeadlineKind, ms: number): string {
  if (kind === 'first-byte') return `no first byte within ${ms} ms (time-to-first-byte deadline)`;
  if (kind === 'idle') return `the response body stalled for more than ${ms} ms between chunks (idle deadline)`;
  return `the response took longer than ${ms} ms (overall deadline)`;
}
