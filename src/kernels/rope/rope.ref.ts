// CPU reference for RoPE (Hugging Face Llama `rotate_half` convention), in f64: the oracle for rope.wgsl.
// x (B, T, H, D) packed; pair (j, j + D/2) of every head at position pos = t + posOffset rotates by
// angle = pos · θ^(−2j/D). The backward is the inverse rotation (angle → −angle) applied to dy.

export interface RopeRefOptions {
  posOffset?: number;
  theta?: number;
  /** Explicit inverse frequencies (D/2), e.g. llama3-scaled; overrides theta. */
  invFreq?: ArrayLike<number>;
}

function rotate(x: ArrayLike<number>, B: number, T: number, H: number, D: number, sign: number, opts: RopeRefOptions, fn: string): Float64Array {
  if (D % 2 !== 0) throw new Error(`${fn}: D must be even, got ${D}`);
  if (x.length !== B * T * H * D) throw new Error(`${fn}: x has ${x.length} elements, expected B·T·H·D = ${B * T * H * D}`);
  const theta = opts.theta ?? 10000;
  const posOffset = opts.posOffset ?? 0;
  const half = D / 2;
  if (opts.invFreq && opts.invFreq.length !== half) throw new Error(`${fn}: invFreq has ${opts.invFreq.length} entries, expected D/2 = ${half}`);
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = t + posOffset;
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * D;
        for (let j = 0; j < half; j++) {
          const angle = pos * (opts.invFreq ? opts.invFreq[j]! : theta ** ((-2 * j) / D));
          const c = Math.cos(angle);
          const s = sign * Math.sin(angle);
          const x0 = x[base + j]!;
          const x1 = x[base + j + half]!;
          out[base + j] = x0 * c - x1 * s;
          out[base + j + half] = x1 * c + x0 * s;
        }
      }
    }
  }
  return out;
}

/** x' = x·cos + rotate_half(x)·sin per head, (B, T, H, D). */
export function ropeForwardRef(x: ArrayLike<number>, B: number, T: number, H: number, D: number, opts: RopeRefOptions = {}): Float64Array {
  return rotate(x, B, T, H, D, 1, opts, 'ropeForwardRef');
}

/** dx from dy: the transpose (= inverse) of the forward rotation. */
export function ropeBackwardRef(dy: ArrayLike<number>, B: number, T: number, H: number, D: number, opts: RopeRefOptions = {}): Float64Array {
  return rotate(dy, B, T, H, D, -1, opts, 'ropeBackwardRef');
}
