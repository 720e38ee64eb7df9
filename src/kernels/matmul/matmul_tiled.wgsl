// Tiled f32 matmul in the three forms backprop needs, batched, with optional bias and accumulation:
//   C[b] (M, N) = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias (N) on every row)
//   op(A) = A (M, K) stored row-major, or Aᵀ where A is stored (K, M)   (TRANS_A)
//   op(B) = B (K, N) stored row-major, or Bᵀ where B is stored (N, K)   (TRANS_B)
// A workgroup of WG×WG threads computes a TM×TN tile of C; each thread RM×RN outputs with a stride of WG
// (rows lid.y + WG·i, columns lid.x + WG·j), so workgroup-memory reads and C stores are contiguous across a row
// of threads. K is walked in slices of TK through workgroup memory; the slice loads read global memory along
// its contiguous dimension for each storage order. Every global access is bounds-checked: any M, N, K works.
// The launcher (matmul.ts) prepends `Params` and the constants TM, TN, TK, WG, RM, RN, TRANS_A, TRANS_B,
// HAS_BIAS, USE_BETA. Row strides lda, ldb, ldc (elements) let a dispatch work on a row/column range of a larger
// matrix. Batch b = workgroup_id.z; batch strides are in elements (0 broadcasts one matrix).

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (N), read only when HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

const THREADS: u32 = WG * WG;
var<workgroup> As: array<f32, TK * TM>; // [k][m]
var<workgroup> Bs: array<f32, TK * TN>; // [k][n]

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * p.lda + m]; }
  return A[base + m * p.lda + k];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * p.ldb + k]; }
  return B[base + k * p.ldb + n];
}

@compute @workgroup_size(WG, WG, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WG + lid.x;
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let baseA = wid.z * p.strideA;
  let baseB = wid.z * p.strideB;
  let baseC = wid.z * p.strideC;
  var acc: array<f32, RM * RN>;

  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var idx = tid; idx < TK * TM; idx += THREADS) {
      var m: u32; var k: u32;
      if (TRANS_A) { k = idx / TM; m = idx % TM; } else { m = idx / TK; k = idx % TK; }
      As[k * TM + m] = loadA(baseA, row0 + m, k0 + k);
    }
    for (var idx = tid; idx < TK * TN; idx += THREADS) {
      var k: u32; var n: u32;
      if (TRANS_B) { n = idx / TK; k = idx % TK; } else { k = idx / TN; n = idx % TN; }
      Bs[k * TN + n] = loadB(baseB, k0 + k, col0 + n);
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      var a: array<f32, RM>;
      var b: array<f32, RN>;
      for (var i = 0u; i < RM; i++) { a[i] = As[k * TM + lid.y + i * WG]; }
      for (var j = 0u; j < RN; j++) { b[j] = Bs[k * TN + lid.x + j * WG]; }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) { acc[i * RN + j] = fma(a[i], b[j], acc[i * RN + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < RM; i++) {
    let m = row0 + lid.y + i * WG;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < RN; j++) {
      let n = col0 + lid.x + j * WG;
      if (n >= p.N) { continue; }
      let at = baseC + m * p.ldc + n;
      var v = p.alpha * acc[i * RN + j];
      if (HAS_BIAS) { v += bias[n]; }
      if (USE_BETA) { v = fma(p.beta, C[at], v); }
      C[at] = v;
    }
  }
}
