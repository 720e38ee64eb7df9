// CPU reference for KV-cache decode attention (generation): appending a step's k and v to a layer's cache, and
// attention of the step's S new queries against the cache. The oracle for attention_decode.wgsl and the plain
// statement of what it computes, in f64. Layout (row-major): q and o (B, S, H, D); k and v of the new tokens
// (B, S, Hkv, D); kcache and vcache (B, Tmax, Hkv, D). The new tokens sit at positions pos .. pos + S − 1;
// query s (absolute position pos + s) sees cache positions j = 0 .. pos + s (causal within the new tokens):
//   S[s, j] = scale · q[s]·kcache[j];  P = softmax_j(S);  o[s] = Σ_j P[s, j] vcache[j]
// Query head h reads kv head floor(h / (H / Hkv)), as attentionForwardRef. The arithmetic of one row is done in
// the same order as attentionForwardRef's, so prefill + decode steps reproduce its rows bit for bit.

export interface DecodeDims {
  B: number;
  /** New tokens per step (1 when decoding, a chunk length when prefilling). */
  S: number;
  /** Cache capacity in positions. */
  Tmax: number;
  /** Query heads. */
  H: number;
  /** Key/value heads; H must be a multiple of Hkv. */
  Hkv: number;
  /** Head dimension. */
  D: number;
}

/**
 * Throws a clear error for non-positive or non-integer sizes, a bad grouping, or S > Tmax; returns the shape as
 * 'B=.. S=.. Tmax=.. H=.. Hkv=.. D=..' (without H when `withH` is false: the cache append has no query heads).
 */
export function checkDecodeDims(fn: string, dims: DecodeDims, withH = true): string {
  const { B, S, Tmax, H, Hkv, D } = dims;
  for (const [name, v] of Object.entries({ B, S, Tmax, H, Hkv, D })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${v}`);
  }
  const shape = `B=${B} S=${S} Tmax=${Tmax}${withH ? ` H=${H}` : ''} Hkv=${Hkv} D=${D}`;
  if (H % Hkv !== 0) throw new Error(`${fn} ${shape}: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  if (S > Tmax) throw new Error(`${fn} ${shape}: S = ${S} new tokens do not fit a cache of Tmax = ${Tmax} positions`);
  return shape;
}

/** Throws unless pos is an integer with 0 ≤ pos and pos + S ≤ Tmax. */
export function checkDecodePos(fn: string, dims: DecodeDims, pos: number): void {
  if (!Number.isInteger(pos) || pos < 0) throw new Error(`${fn}: pos must be a non-negative integer, got ${pos}`);
  if (pos + dims.S > dims.Tmax) {
    throw new Error(`${fn}: pos + S = ${pos} + ${dims.S} = ${pos + dims.S} exceeds the cache capacity Tmax = ${dims.Tmax}`);
  }
}

function checkLengths(fn: string, arrays: Record<string, [ArrayLike<number>, number]>): void {
  for (const [name, [a, n]] of Object.entries(arrays)) {
    if (a.length !== n) throw new Error(`${fn}: ${name} has ${a.length} elements, expected ${n}`);
  }
}

/**
 * A copy of `cache` (B, Tmax, Hkv, D) with the step's `x` (B, S, Hkv, D) written at positions pos .. pos + S − 1;
 * every other position is unchanged. Use it for kcache with k and for vcache with v.
 */
export function kvAppendRef(cache: ArrayLike<number>, x: ArrayLike<number>, dims: DecodeDims, pos: number): Float64Array {
  const fn = 'kvAppendRef';
  checkDecodeDims(fn, dims);
  checkDecodePos(fn, dims, pos);
  const { B, S, Tmax, Hkv, D } = dims;
  checkLengths(fn, { cache: [cache, B * Tmax * Hkv * D], x: [x, B * S * Hkv * D] });
  const out = Float64Array.from(cache); // (B, Tmax, Hkv, D)
  const row = Hkv * D; // floats per position
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      for (let i = 0; i < row; i++) out[(b * Tmax + pos + s) * row + i] = x[(b * S + s) * row + i]!;
    }
  }
  return out;
}

/**
 * o (B, S, H, D) of the step's queries `q` (B, S, H, D) against caches that already hold the step's keys and
 * values at pos .. pos + S − 1 (see kvAppendRef). `scale` defaults to 1/√D. Positions past pos + s are never read.
 */
export function attentionDecodeRef(
  q: ArrayLike<number>, // (B, S, H, D)
  kcache: ArrayLike<number>, // (B, Tmax, Hkv, D)
  vcache: ArrayLike<number>, // (B, Tmax, Hkv, D)
  dims: DecodeDims,
  pos: number,
  scale = 1 / Math.sqrt(dims.D),
): Float64Array {
  const fn = 'attentionDecodeRef';
  checkDecodeDims(fn, dims);
  checkDecodePos(fn, dims, pos);
  const { B, S, Tmax, H, Hkv, D } = dims;
  checkLengths(fn, { q: [q, B * S * H * D], kcache: [kcache, B * Tmax * Hkv * D], vcache: [vcache, B * Tmax * Hkv * D] });
  const o = new Float64Array(B * S * H * D); // (B, S, H, D)
  const qAt = (b: number, s: number, h: number): number => ((b * S + s) * H + h) * D;
  const cAt = (b: number, j: number, hk: number): number => ((b * Tmax + j) * Hkv + hk) * D;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let s = 0; s < S; s++) {
        const t = pos + s; // the query's absolute position: keys 0 .. t
        const p = new Float64Array(t + 1);
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qAt(b, s, h) + d]! * kcache[cAt(b, j, hk) + d]!;
          p[j] = scale * dot;
          max = Math.max(max, p[j]!);
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) sum += (p[j] = Math.exp(p[j]! - max));
        for (let j = 0; j <= t; j++) p[j]! /= sum;
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < D; d++) o[qAt(b, s, h) + d]! += p[j]! * vcache[cAt(b, j, hk) + d]!;
        }
      }
    }
  }
  return o;
}
