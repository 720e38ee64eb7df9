// Naive f32 matmul, one thread per output element, with the same contract as matmul_tiled.wgsl:
//   C[b] (M, N) = alpha · op(A[b]) · op(B[b]) + beta · C[b] (+ bias (N))
// Kept as the fallback and as a second opinion next to the CPU reference. The launcher prepends `Params` and
// the constants TRANS_A, TRANS_B, HAS_BIAS, USE_BETA, B_FORMAT.

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<u32>;

// Element e of B as f32 (B_FORMAT as in matmul_common.wgsl: 0 f32; 1 bf16 and 2 f16, element e in half e & 1 of word
// e >> 1, low half first). Written differently from readB there on purpose, as a second opinion: shift the wanted
// half down, then widen it.
fn bAt(e: u32) -> f32 {
  if (B_FORMAT == 0u) { return bitcast<f32>(B[e]); }
  let h = (B[e / 2u] >> (16u * (e % 2u))) & 0xffffu;
  if (B_FORMAT == 1u) { return bitcast<f32>(h << 16u); }
  return unpack2x16float(h).x;
}
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  if (m >= p.M || n >= p.N) { return; }
  let baseA = gid.z * p.strideA;
  let baseB = gid.z * p.strideB;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    var a: f32; var b: f32;
    if (TRANS_A) { a = A[baseA + k * p.lda + m]; } else { a = A[baseA + m * p.lda + k]; }
    if (TRANS_B) { b = bAt(baseB + n * p.ldb + k); } else { b = bAt(baseB + k * p.ldb + n); }
    acc = fma(a, b, acc);
  }
  let at = gid.z * p.strideC + m * p.ldc + n;
  var v = p.alpha * acc;
  if (HAS_BIAS) { v += bias[n]; }
  if (USE_BETA) { v = fma(p.beta, C[at], v); }
  C[at] = v;
}
