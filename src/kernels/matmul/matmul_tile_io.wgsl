// Shared part of the scalar register-tiled variants (matmul_tiled.wgsl, matmul_subgroup.wgsl), after
// matmul_common.wgsl: the workgroup tiles of one K slice, their bounds-checked loads, and the epilogue.
// Slice loads read global memory along the operand's contiguous dimension for each storage order.
// Thread (x, y) owns RM×RN outputs with a stride of WG: rows y + WG·i, columns x + WG·j (i < RM, j < RN).

var<workgroup> As: array<f32, TK * TM>; // [k][m]
var<workgroup> Bs: array<f32, TK * TN>; // [k][n]

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * p.lda + m]; }
  return A[base + m * p.lda + k];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return readB(base + n * p.ldb + k); }
  return readB(base + k * p.ldb + n);
}

// As and Bs ← the tile's K slice [k0, k0 + TK), zero past the edges; thread tid of THREADS takes every THREADS-th.
fn loadSlice(t: Tile, k0: u32, tid: u32) {
  for (var idx = tid; idx < TK * TM; idx += THREADS) {
    var m: u32; var k: u32;
    if (TRANS_A) { k = idx / TM; m = idx % TM; } else { m = idx / TK; k = idx % TK; }
    As[k * TM + m] = loadA(t.baseA, t.row0 + m, k0 + k);
  }
  for (var idx = tid; idx < TK * TN; idx += THREADS) {
    var k: u32; var n: u32;
    if (TRANS_B) { n = idx / TK; k = idx % TK; } else { k = idx / TN; n = idx % TN; }
    Bs[k * TN + n] = loadB(t.baseB, k0 + k, t.col0 + n);
  }
}

// The outputs of thread (x, y), acc[i·RN + j] at row y + WG·i, column x + WG·j of the tile.
fn storeTile(t: Tile, x: u32, y: u32, acc: ptr<function, array<f32, RM * RN>>) {
  for (var i = 0u; i < RM; i++) {
    let m = t.row0 + y + i * WG;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < RN; j++) {
      let n = t.col0 + x + j * WG;
      if (n >= p.N) { continue; }
      storeOut(t.baseC, m, n, (*acc)[i * RN + j]);
    }
  }
}
