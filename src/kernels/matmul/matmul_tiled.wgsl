// Tiled f32 matmul: C (M, N) = A (M, K) · B (K, N), all row-major.
// One workgroup of 16×16 threads computes a 64×64 tile of C; each thread a 4×4 block with a stride of 16
// (rows lid.y + 16i, columns lid.x + 16j), so loads from workgroup memory and stores to C are contiguous
// across a row of threads. K is walked in slices of 16 through workgroup memory. Every global load and store
// is bounds-checked, so any M, N, K works (not only tile multiples).
// `Params { M, N, K }` is prepended by the launcher (matmul.ts).

@group(0) @binding(0) var<storage, read> A: array<f32>;       // (M, K)
@group(0) @binding(1) var<storage, read> B: array<f32>;       // (K, N)
@group(0) @binding(2) var<storage, read_write> C: array<f32>; // (M, N)
@group(0) @binding(3) var<uniform> p: Params;

const TM: u32 = 64u;  // tile rows
const TN: u32 = 64u;  // tile columns
const TK: u32 = 16u;  // K slice
const WG: u32 = 16u;  // threads per side
const R: u32 = 4u;    // outputs per thread per side

var<workgroup> As: array<f32, 1024>; // [TK][TM], A slice stored transposed
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WG + lid.x;
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  var acc: array<f32, 16>;

  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // Each of the 256 threads loads 4 of the 1024 elements of each slice.
    for (var i = 0u; i < 4u; i++) {
      let idx = tid + i * 256u;
      // A: consecutive threads read consecutive k of one row.
      let am = idx / TK;
      let ak = idx % TK;
      var a = 0.0;
      if (row0 + am < p.M && k0 + ak < p.K) { a = A[(row0 + am) * p.K + k0 + ak]; }
      As[ak * TM + am] = a;
      // B: consecutive threads read consecutive n of one row.
      let bk = idx / TN;
      let bn = idx % TN;
      var b = 0.0;
      if (k0 + bk < p.K && col0 + bn < p.N) { b = B[(k0 + bk) * p.N + col0 + bn]; }
      Bs[bk * TN + bn] = b;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < R; i++) { a[i] = As[k * TM + lid.y + i * WG]; }
      for (var j = 0u; j < R; j++) { b[j] = Bs[k * TN + lid.x + j * WG]; }
      for (var i = 0u; i < R; i++) {
        for (var j = 0u; j < R; j++) { acc[i * R + j] = fma(a[i], b[j], acc[i * R + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < R; i++) {
    let m = row0 + lid.y + i * WG;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < R; j++) {
      let n = col0 + lid.x + j * WG;
      if (n < p.N) { C[m * p.N + n] = acc[i * R + j]; }
    }
  }
}
