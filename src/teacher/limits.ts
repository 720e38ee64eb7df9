// Client-side limits shared by all calls of one teacher: a FIFO semaphore (requests in flight) and a token bucket
// (requests started per window). Both waits are abortable; the clock is injectable so tests can drive them exactly.

export interface Clock {
  now(): number;
  /** Resolves after ms, or rejects with signal.reason when the signal fires first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** At most `max` holders at once; waiters are served first come, first served. */
export class Semaphore {
  private active = 0;
  private readonly waiters: { grant: () => void; reject: (e: unknown) => void }[] = [];
  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`Semaphore: max must be a positive integer, got ${max}`);
  }
  get inUse(): number {
    return this.active;
  }
  get waiting(): number {
    return this.waiters.length;
  }
  /** Resolves with a release function (call it exactly once; later calls do nothing). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.active--;
        const next = this.waiters.shift();
        if (next) next.grant();
      };
      if (this.active < this.max) {
        this.active++;
        return resolve(release);
      }
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortReason(signal!));
      };
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.active++;
          resolve(release);
        },
        reject,
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Token bucket: `rate` requests per `windowMs`, holding at most `burst` tokens. Over any interval of length t, at most
 * burst + rate·t/windowMs takes succeed (plus any `takeNow` debt, which later takes repay). Takes are served in order.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly perMs: number;
  constructor(
    readonly rate: number,
    readonly windowMs: number,
    readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(rate > 0) || !(windowMs > 0) || !(burst >= 1)) throw new Error(`TokenBucket: need rate > 0, windowMs > 0, burst ≥ 1 (got ${rate}, ${windowMs}, ${burst})`);
    this.perMs = rate / windowMs;
    this.tokens = burst;
    this.last = clock.now();
  }
  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
  }
  /** Waits for a token (in FIFO order with other takes). Rejects when the signal fires first. */
  take(signal?: AbortSignal): Promise<void> {
    const mine = this.queue.then(async () => {
      for (;;) {
        if (signal?.aborted) throw abortReason(signal);
        this.refill();
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        await this.clock.sleep((1 - this.tokens) / this.perMs, signal);
      }
    });
    this.queue = mine.catch(() => undefined);
    return mine;
  }
  /** Takes a token without waiting, going into debt if none is left (used for SDK retries, see remote.ts). */
  takeNow(): void {
    this.refill();
    this.tokens -= 1;
  }
}
