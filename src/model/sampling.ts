// Next-token sampling on the CPU, from one row of logits read back from the GPU, and stop-sequence matching on
// the decoded text. Sampling: temperature 0 is greedy (argmax, lowest id on ties); otherwise the logits are
// divided by the temperature, cut to the top-k tokens, then to the nucleus (the smallest set of most probable
// tokens whose mass reaches top-p, always at least one), renormalized and sampled with the caller's seeded Rng
// (one rng.next() per sampled token, none when greedy), so the same seed gives the same sequence.
// Ordering among equal logits is always by lowest id, so top-k and top-p cuts are deterministic.
import type { Rng } from '../util/rng.ts';

export interface SamplingConfig {
  /** 0 = greedy; otherwise logits are divided by it (< 1 sharpens, > 1 flattens). */
  temperature: number;
  /** Keep only the k most probable tokens; 0 = no limit. */
  topK: number;
  /** Nucleus: keep the smallest most-probable set with mass ≥ topP, in (0, 1]; 1 = no limit. */
  topP: number;
}

export const DEFAULT_SAMPLING: Readonly<SamplingConfig> = Object.freeze({ temperature: 1, topK: 0, topP: 1 });

/** Fills defaults and validates; unknown keys and bad values are rejected with an error naming them. */
export function resolveSampling(opts: Partial<SamplingConfig> = {}, where = 'sampling'): SamplingConfig {
  for (const key of Object.keys(opts)) {
    if (!Object.hasOwn(DEFAULT_SAMPLING, key)) throw new Error(`${where}: unknown option "${key}" (known: ${Object.keys(DEFAULT_SAMPLING).join(', ')})`);
  }
  const cfg: SamplingConfig = { ...DEFAULT_SAMPLING, ...stripUndefined(opts) };
  const { temperature, topK, topP } = cfg;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`${where}: temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0) throw new Error(`${where}: topK must be an integer ≥ 0, got ${topK}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new Error(`${where}: topP must be in (0, 1], got ${topP}`);
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface SampleOptions extends Partial<SamplingConfig> {
  rng: Rng;
}

/** The tokens a sample can return and their renormalized probabilities (summing to 1). */
export interface SamplingDistribution {
  /** Token ids: by decreasing probability (ties by lowest id) when top-k or top-p cut, else in id order. */
  ids: Int32Array;
  probs: Float64Array;
}

/** Throws on an empty row, NaN or +Infinity; −Infinity marks a token that can never be chosen. */
function checkLogits(logits: ArrayLike<number>, where: string): void {
  if (logits.length === 0) throw new Error(`${where}: logits are empty`);
  let anyFinite = false;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    if (Number.isNaN(x) || x === Infinity) throw new Error(`${where}: logits[${i}] is ${x}`);
    if (x !== -Infinity) anyFinite = true;
  }
  if (!anyFinite) throw new Error(`${where}: every one of the ${logits.length} logits is -Infinity`);
}

/** Lowest id among the largest logits. */
export function argmax(logits: ArrayLike<number>): number {
  checkLogits(logits, 'argmax');
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** a before b when a's logit is larger, or equal with a lower id. */
const before = (logits: ArrayLike<number>, a: number, b: number): boolean =>
  logits[a]! > logits[b]! || (logits[a]! === logits[b]! && a < b);

/** The k best token ids in order (a bounded heap: O(V log k)). */
function topKIds(logits: ArrayLike<number>, k: number): number[] {
  const heap: number[] = []; // worst kept token at the root
  const worse = (a: number, b: number) => before(logits, b, a);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < heap.length && worse(heap[l]!, heap[w]!)) w = l;
      if (r < heap.length && worse(heap[r]!, heap[w]!)) w = r;
      if (w === i) return;
      [heap[i], heap[w]] = [heap[w]!, heap[i]!];
      i = w;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (logits[id] === -Infinity) continue;
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0;) { // sift up
        const parent = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[parent]!)) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
    } else if (before(logits, id, heap[0]!)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (before(logits, a, b) ? -1 : 1));
}

/** The distribution sampleToken draws from (temperature > 0), or the argmax with probability 1 (temperature 0). */
export function samplingDistribution(logits: ArrayLike<number>, opts: Partial<SamplingConfig> = {}): SamplingDistribution {
  const where = 'samplingDistribution';
  const cfg = resolveSampling(opts, where);
  checkLogits(logits, where);
  return distribution(logits, cfg);
}

function distribution(logits: ArrayLike<number>, cfg: SamplingConfig): SamplingDistribution {
  if (cfg.temperature === 0) return { ids: Int32Array.of(argmax(logits)), probs: Float64Array.of(1) };
  const V = logits.length;
  let ids: number[];
  if (cfg.topK > 0 && cfg.topK < V) ids = topKIds(logits, cfg.topK);
  else {
    ids = [];
    for (let id = 0; id < V; id++) if (logits[id] !== -Infinity) ids.push(id);
    if (cfg.topP < 1) ids.sort((a, b) => (before(logits, a, b) ? -1 : 1));
  }
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[id]!);
  const w = new Float64Array(ids.length);
  let total = 0;
  for (let i = 0; i < ids.length; i++) total += (w[i] = Math.exp((logits[ids[i]!]! - max) / cfg.temperature));
  let keep = ids.length;
  if (cfg.topP < 1) { // ids are sorted here: cut after the first prefix whose mass reaches topP
    let mass = 0;
    for (let i = 0; i < ids.length; i++) {
      mass += w[i]! / total;
      if (mass >= cfg.topP) { keep = i + 1; break; }
    }
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += w[i]!;
  const probs = new Float64Array(keep);
  for (let i = 0; i < keep; i++) probs[i] = w[i]! / kept;
  return { ids: Int32Array.from(ids.slice(0, keep)), probs };
}

/** Draws the next token id from one row of logits (V). See the banner for the rules. */
export function sampleToken(logits: ArrayLike<number>, opts: SampleOptions): number {
  const where = 'sampleToken';
  const { rng, ...rest } = opts ?? ({} as SampleOptions);
  if (!rng || typeof rng.next !== 'function') throw new Error(`${where}: rng (a seeded Rng) is required`);
  const cfg = resolveSampling(rest, where);
  checkLogits(logits, where);
  if (cfg.temperature === 0) return argmax(logits);
  const { ids, probs } = distribution(logits, cfg);
  const u = rng.next();
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += probs[i]!;
    if (u < cum) return ids[i]!;
  }
  return ids[ids.length - 1]!; // u within rounding of 1
}

// ---------------------------------------------------------------------------------------------------------------

export interface StopPush {
  /** New text safe to show: everything before any stop sequence, minus a held-back tail that may start one. */
  text: string;
  /** A stop sequence has been matched: generation should end. */
  stopped: boolean;
}

/**
 * Finds stop sequences in streamed decoded text, including one split across tokens. push() each token's text;
 * it returns the text that can be shown now and holds back the longest tail that could still begin a stop
 * sequence. When a stop sequence completes (the earliest one in the text; the shorter at equal starts),
 * `stopped` is true and `text` ends just before it; nothing after it is ever returned. flush() at the end of a
 * generation that did not stop returns the held-back tail. `text` (the property) is all text returned so far.
 */
export class StopMatcher {
  readonly stops: readonly string[];
  private held = '';
  private emitted = '';
  private matched: string | undefined;

  constructor(stops: readonly string[]) {
    if (!Array.isArray(stops)) throw new Error(`StopMatcher: stops must be an array of strings, got ${typeof stops}`);
    stops.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) throw new Error(`StopMatcher: stops[${i}] must be a non-empty string, got ${JSON.stringify(s)}`);
    });
    this.stops = [...stops];
  }

  /** The stop sequence that ended the text, if any. */
  get stop(): string | undefined {
    return this.matched;
  }

  get stopped(): boolean {
    return this.matched !== undefined;
  }

  /** Everything returned so far: after a stop, the whole text before it. */
  get text(): string {
    return this.emitted;
  }

  push(piece: string): StopPush {
    if (typeof piece !== 'string') throw new Error(`StopMatcher.push: expected a string, got ${typeof piece}`);
    if (this.matched !== undefined) throw new Error(`StopMatcher.push: the stop sequence ${JSON.stringify(this.matched)} was already matched`);
    const buf = this.held + piece;
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at || (i === at && s.length < this.matched!.length))) {
        at = i;
        this.matched = s;
      }
    }
    if (at >= 0) {
      this.held = '';
      return this.emit(buf.slice(0, at), true);
    }
    const hold = this.partialTail(buf);
    this.held = buf.slice(buf.length - hold);
    return this.emit(buf.slice(0, buf.length - hold), false);
  }

  /** Ends the stream: returns the held-back tail ('' after a stop). */
  flush(): string {
    const tail = this.held;
    this.held = '';
    this.emitted += tail;
    return tail;
  }

  private emit(text: string, stopped: boolean): StopPush {
    this.emitted += text;
    return { text, stopped };
  }

  /** Length of the longest suffix of buf that is a proper prefix of some stop sequence. */
  private partialTail(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) { best = n; break; }
      }
    }
    return best;
  }
}
