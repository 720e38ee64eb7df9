// CPU reference for matmul: the oracle the WGSL kernels are tested against, and the plain statement of what
// they compute. Accumulates in f64 so the reference is more accurate than any f32 kernel.

/** C (M, N) = A (M, K) · B (K, N), row-major. */
export function matmulRef(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float32Array {
  if (a.length !== M * K) throw new Error(`matmulRef: A has ${a.length} elements, expected M·K = ${M}·${K}`);
  if (b.length !== K * N) throw new Error(`matmulRef: B has ${b.length} elements, expected K·N = ${K}·${N}`);
  const c = new Float32Array(M * N);
  const row = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const av = a[m * K + k]!;
      const off = k * N;
      for (let n = 0; n < N; n++) row[n]! += av * b[off + n]!;
    }
    c.set(row, m * N);
  }
  return c;
}

/** One element of the product, for spot checks of shapes too large for matmulRef. */
export function matmulRefAt(a: Float32Array, b: Float32Array, N: number, K: number, m: number, n: number): number {
  let acc = 0;
  for (let k = 0; k < K; k++) acc += a[m * K + k]! * b[k * N + n]!;
  return acc;
}

/** Σ|A[m,k]·B[k,n]| per element: the scale that f32 rounding error of a K-term dot product grows with. */
export function matmulAbsRef(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float32Array {
  return matmulRef(a.map(Math.abs), b.map(Math.abs), M, N, K);
}
