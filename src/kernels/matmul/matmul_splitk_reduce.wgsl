// Split-K reduction (matmul.ts planSplitK): C = Σ_s P[s] (+ bias on every row) (+ beta · C), where slot s of P
// (at s · slot floats) holds alpha · op(A)·op(B) over the s-th chunk of K. One thread per element of C (M·N,
// row-major, ldc = N), in rows of `width` threads when M·N needs more than one row of workgroups. The launcher
// prepends `ReduceParams` and the constants HAS_BIAS, USE_BETA.

@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>; // (N), read only when HAS_BIAS
@group(0) @binding(3) var<uniform> r: ReduceParams;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * r.width + gid.x;
  if (gid.x >= r.width || i >= r.count) { return; }
  var v = 0.0;
  for (var s = 0u; s < r.slots; s++) { v += P[s * r.slot + i]; }
  if (HAS_BIAS) { v += bias[i % r.N]; }
  if (USE_BETA) { v = fma(r.beta, C[i], v); }
  C[i] = v;
}
