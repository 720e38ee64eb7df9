// Naive f32 matmul: one thread per output element, C (M, N) = A (M, K) · B (K, N), row-major.
// Kept as the fallback and as a second opinion next to the CPU reference.
// `Params { M, N, K }` is prepended by the launcher (matmul.ts).

@group(0) @binding(0) var<storage, read> A: array<f32>;       // (M, K)
@group(0) @binding(1) var<storage, read> B: array<f32>;       // (K, N)
@group(0) @binding(2) var<storage, read_write> C: array<f32>; // (M, N)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  if (m >= p.M || n >= p.N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc = fma(A[m * p.K + k], B[k * p.N + n], acc); }
  C[m * p.N + n] = acc;
}
