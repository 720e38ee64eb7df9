// Tiled f32 matmul in the three forms backprop needs, batched, with optional bias and accumulation:
//   C[b] (M, N) = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias (N) on every row)
//   op(A) = A (M, K) stored row-major, or Aᵀ where A is stored (K, M)   (TRANS_A)
//   op(B) = B (K, N) stored row-major, or Bᵀ where B is stored (N, K)   (TRANS_B)
// A workgroup of WG×WG threads computes a TM×TN tile of C; each thread RM×RN outputs with a stride of WG
// (rows lid.y + WG·i, columns lid.x + WG·j), so workgroup-memory reads and C stores are contiguous across a row
// of threads. K is walked in slices of TK through workgroup memory. Every global access is bounds-checked: any
// M, N, K works. Bindings, the slice loads and the epilogue live in matmul_common.wgsl and matmul_tile_io.wgsl,
// which the launcher (matmul.ts) puts in front of this file after `Params` and the constants TM, TN, TK, WG, RM,
// RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA. Row strides lda, ldb, ldc (elements) let a dispatch work on a
// row/column range of a larger matrix. Batch b = workgroup_id.z; batch strides are in elements (0 broadcasts one
// matrix).

@compute @workgroup_size(WG, WG, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WG + lid.x;
  let t = tileOf(wid);
  var acc: array<f32, RM * RN>;

  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    loadSlice(t, k0, tid);
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
  storeTile(t, lid.x, lid.y, &acc);
}
