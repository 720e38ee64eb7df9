// Shared part of the vec4 matmul lab variants (matmul_vec4.wgsl, matmul_dbuf.wgsl), after matmul_common.wgsl: the
// vec4 views of A and B, workgroup tiles, global loads in quads, the product of one K slice, and the epilogue. Same contract as matmul_tiled.wgsl:
//   C[b] (M, N) = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias (N) on every row)
// A quad is 4 consecutive floats along an operand's stored-contiguous dimension: k for A (M, K) and Bᵀ (N, K),
// m for Aᵀ stored (K, M), n for B (K, N). When VEC_A / VEC_B (the launcher sets them when lda / ldb and the
// batch stride are multiples of 4 and the binding offset a multiple of 16) a quad wholly inside the matrix is
// ONE vec4 load through A4 / B4, the same binding viewed as array<vec4f>; edge quads and unaligned layouts load
// up to 4 bounds-checked scalars instead (so any shape and layout works, only slower).
// Workgroup tiles keep each quad whole, in the operand's stored order (no scattered component writes, so no
// two threads ever write parts of one vec4):
//   As [slot][k][m/4] when TRANS_A, else [slot][m][k/4];   Bs [slot][k][n/4] unless TRANS_B, else [slot][n][k/4].
// Thread (x, y) owns rows (i·WG + y)·4 + r and columns (j·WG + x)·4 + c (i < RM/4, j < RN/4, r, c < 4); per 4 k
// it reads RM/4·4 or RM (A) and RN/4·4 or RN (B) vec4s of workgroup memory, transposes in registers where the
// tile is stored along k, and does RM·RN vec4 fmas. Each output is summed over k in order with fma, as in
// tiled128. The including kernel defines NBUF (tile slots); the launcher prepends Params and the constants
// TM, TN, TK, WG, RM, RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA, VEC_A, VEC_B.

@group(0) @binding(5) var<storage, read> A4: array<vec4f>;      // binding 0 again as vec4 (a dummy unless VEC_A)
@group(0) @binding(6) var<storage, read> B4: array<vec4f>;      // binding 1 again as vec4 (a dummy unless VEC_B)

const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
const TK4: u32 = TK / 4u;
const RN4: u32 = RN / 4u;
const ACC: u32 = RM * RN4; // vec4 accumulators per thread: row i, column quad j at i·RN4 + j
const_assert TM == WG * RM && TN == WG * RN && RM % 4u == 0u && RN % 4u == 0u && TK % 4u == 0u;

var<workgroup> As: array<vec4f, NBUF * TK * TM4>;
var<workgroup> Bs: array<vec4f, NBUF * TK * TN4>;

// Quad q (< TK·TM/4) of the A tile at (row0, k0), numbered in As order.
fn loadAQuad(base: u32, row0: u32, k0: u32, q: u32) -> vec4f {
  var m: u32; var k: u32;
  if (TRANS_A) { k = k0 + q / TM4; m = row0 + (q % TM4) * 4u; } else { m = row0 + q / TK4; k = k0 + (q % TK4) * 4u; }
  if (m >= p.M || k >= p.K) { return vec4f(0.0); }
  var at: u32; var rest: u32; // first element; elements left along the contiguous dimension
  if (TRANS_A) { at = base + k * p.lda + m; rest = p.M - m; } else { at = base + m * p.lda + k; rest = p.K - k; }
  if (VEC_A && rest >= 4u) { return A4[at / 4u]; }
  var v = vec4f(0.0);
  for (var c = 0u; c < min(rest, 4u); c++) { v[c] = A[at + c]; }
  return v;
}

// Quad q (< TK·TN/4) of the B tile at (k0, col0), numbered in Bs order.
fn loadBQuad(base: u32, col0: u32, k0: u32, q: u32) -> vec4f {
  var k: u32; var n: u32;
  if (TRANS_B) { n = col0 + q / TK4; k = k0 + (q % TK4) * 4u; } else { k = k0 + q / TN4; n = col0 + (q % TN4) * 4u; }
  if (k >= p.K || n >= p.N) { return vec4f(0.0); }
  var at: u32; var rest: u32;
  if (TRANS_B) { at = base + n * p.ldb + k; rest = p.K - k; } else { at = base + k * p.ldb + n; rest = p.N - n; }
  if (VEC_B && rest >= 4u) { return B4[at / 4u]; }
  var v = vec4f(0.0);
  for (var c = 0u; c < min(rest, 4u); c++) { v[c] = readB(at + c); } // f32 only: VEC variants refuse 16-bit B
  return v;
}

// a[i] = op(A)[row i of this thread][k = kq·4 .. kq·4 + 3]
fn sliceA(s: u32, kq: u32, y: u32) -> array<vec4f, RM> {
  var a: array<vec4f, RM>;
  if (TRANS_A) {
    for (var kk = 0u; kk < 4u; kk++) {
      for (var i4 = 0u; i4 < RM / 4u; i4++) {
        let v = As[s + (kq * 4u + kk) * TM4 + i4 * WG + y];
        for (var r = 0u; r < 4u; r++) { a[i4 * 4u + r][kk] = v[r]; }
      }
    }
  } else {
    for (var i = 0u; i < RM; i++) { a[i] = As[s + (((i / 4u) * WG + y) * 4u + i % 4u) * TK4 + kq]; }
  }
  return a;
}

// b[kk·RN4 + j] = op(B)[k = kq·4 + kk][column quad j of this thread]
fn sliceB(s: u32, kq: u32, x: u32) -> array<vec4f, RN> {
  var b: array<vec4f, RN>;
  if (TRANS_B) {
    for (var j = 0u; j < RN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let v = Bs[s + ((j * WG + x) * 4u + c) * TK4 + kq];
        for (var kk = 0u; kk < 4u; kk++) { b[kk * RN4 + j][c] = v[kk]; }
      }
    }
  } else {
    for (var kk = 0u; kk < 4u; kk++) {
      for (var j = 0u; j < RN4; j++) { b[kk * RN4 + j] = Bs[s + (kq * 4u + kk) * TN4 + j * WG + x]; }
    }
  }
  return b;
}

// acc += this thread's part of As[slot] · Bs[slot] (TK terms, k in order).
fn multiplySlice(slot: u32, x: u32, y: u32, acc: ptr<function, array<vec4f, ACC>>) {
  let sa = slot * TK * TM4;
  let sb = slot * TK * TN4;
  for (var kq = 0u; kq < TK4; kq++) {
    let a = sliceA(sa, kq, y);
    let b = sliceB(sb, kq, x);
    for (var kk = 0u; kk < 4u; kk++) {
      for (var i = 0u; i < RM; i++) {
        let ai = vec4f(a[i][kk]);
        for (var j = 0u; j < RN4; j++) { (*acc)[i * RN4 + j] = fma(ai, b[kk * RN4 + j], (*acc)[i * RN4 + j]); }
      }
    }
  }
}

// The outputs of thread (x, y): acc[i·RN4 + j][c] at row ((i / 4)·WG + y)·4 + i % 4, column (j·WG + x)·4 + c.
fn storeTile(t: Tile, x: u32, y: u32, acc: ptr<function, array<vec4f, ACC>>) {
  for (var i = 0u; i < RM; i++) {
    let m = t.row0 + ((i / 4u) * WG + y) * 4u + i % 4u;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < RN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let n = t.col0 + (j * WG + x) * 4u + c;
        if (n >= p.N) { continue; }
        storeOut(t.baseC, m, n, (*acc)[i * RN4 + j][c]);
      }
    }
  }
}
