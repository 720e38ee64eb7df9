// CPU reference for matmul: the oracle the WGSL kernels are tested against, and the plain statement of what
// they compute. Accumulates in f64 so the reference is more accurate than any f32 kernel.
// A 16-bit B (matmul.ts bFormat 'bf16' | 'f16') is the same product on the dequantized B (matmulRefHalfB): every
// bf16/f16 is an f32 exactly, so the kernels' decoding adds no error of its own.
//   C[b] (M, N) = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias (N) on every row)
//   op(A) = A (M, K), or Aᵀ with A stored (K, M) when transA; op(B) = B (K, N), or Bᵀ with B stored (N, K).

import { unpackHalf, type HalfFormat } from '../../util/half.ts';

/** The form of a product, as the reference and the launcher (MatmulArgs) take it. */
export interface MatmulForm {
  transA?: boolean;
  transB?: boolean;
  /** Batch count (default 1) and batch strides in elements (default the matrix sizes; 0 broadcasts A or B). */
  batch?: number;
  strideA?: number;
  strideB?: number;
  alpha?: number;
  /** 0 (default): C is overwritten and never read. Otherwise beta · C is added. */
  beta?: number;
}

export interface MatmulRefOptions extends MatmulForm {
  /** C's previous value (read when beta ≠ 0), (batch, M, N). */
  c?: ArrayLike<number>;
  bias?: ArrayLike<number>;
  /** Take |A|·|B| (the scale that f32 rounding error grows with). */
  abs?: boolean;
}

export function matmulRefGeneral(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, o: MatmulRefOptions = {}): Float64Array {
  const batch = o.batch ?? 1;
  const strideA = o.strideA ?? M * K;
  const strideB = o.strideB ?? K * N;
  const alpha = o.alpha ?? 1;
  const beta = o.beta ?? 0;
  const need = (name: string, arr: ArrayLike<number>, n: number) => {
    if (arr.length < n) throw new Error(`matmulRef: ${name} has ${arr.length} elements, needs ${n}`);
  };
  need('A', a, (batch - 1) * strideA + M * K);
  need('B', b, (batch - 1) * strideB + K * N);
  if (beta !== 0) need('C', o.c ?? [], batch * M * N);
  if (o.bias) need('bias', o.bias, N);
  const f = o.abs ? Math.abs : (x: number) => x;
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ba = z * strideA, bb = z * strideB, bc = z * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const av = o.transA ? a[ba + k * M + m]! : a[ba + m * K + k]!;
          const bv = o.transB ? b[bb + n * K + k]! : b[bb + k * N + n]!;
          acc += f(av) * f(bv);
        }
        let v = (o.abs ? Math.abs(alpha) : alpha) * acc;
        if (o.bias) v += f(o.bias[n]!);
        if (beta !== 0) v += (o.abs ? Math.abs(beta) : beta) * f(o.c![bc + m * N + n]!);
        out[bc + m * N + n] = v;
      }
    }
  }
  return out;
}

/** matmulRefGeneral with B given as packed 16-bit words in `format` (element e in half e & 1 of word e >> 1). */
export function matmulRefHalfB(a: ArrayLike<number>, bWords: Uint32Array, format: HalfFormat, M: number, N: number, K: number, o: MatmulRefOptions = {}): Float64Array {
  const elements = ((o.batch ?? 1) - 1) * (o.strideB ?? K * N) + K * N;
  return matmulRefGeneral(a, unpackHalf(bWords, elements, format), M, N, K, o);
}

/** C (M, N) = A (M, K) · B (K, N), row-major. */
export function matmulRef(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float32Array {
  if (a.length !== M * K) throw new Error(`matmulRef: A has ${a.length} elements, expected M·K = ${M}·${K}`);
  if (b.length !== K * N) throw new Error(`matmulRef: B has ${b.length} elements, expected K·N = ${K}·${N}`);
  return Float32Array.from(matmulRefGeneral(a, b, M, N, K));
}

/** One element of A (M, K) · B (K, N), for spot checks of shapes too large for matmulRef. */
export function matmulRefAt(a: Float32Array, b: Float32Array, N: number, K: number, m: number, n: number): number {
  let acc = 0;
  for (let k = 0; k < K; k++) acc += a[m * K + k]! * b[k * N + n]!;
  return acc;
}

/** Σ|A[m,k]·B[k,n]| per element: the scale that f32 rounding error of a K-term dot product grows with. */
export function matmulAbsRef(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float32Array {
  return Float32Array.from(matmulRefGeneral(a, b, M, N, K, { abs: true }));
}
