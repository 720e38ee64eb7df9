// Shared by the register-tiled matmul variants (tiled, tiled128x64, tiled128, subgroup through matmul_tile_io.wgsl;
// vec4 and dbuf through matmul_vec4_io.wgsl; not naive, the independent second opinion): the bindings, where a
// workgroup's output tile lies, and the epilogue of one output. The launcher prepends Params and the constants
// TM, TN, TK, WG, RM, RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA.

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (N), read only when HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

const THREADS: u32 = WG * WG;

// Workgroup wid computes C[b][row0 .. row0 + TM)[col0 .. col0 + TN) of batch b = wid.z, whose matrices start at
// baseA, baseB and baseC (batch strides in elements; 0 broadcasts one matrix).
struct Tile { row0: u32, col0: u32, baseA: u32, baseB: u32, baseC: u32 }

fn tileOf(wid: vec3u) -> Tile {
  return Tile(wid.y * TM, wid.x * TN, wid.z * p.strideA, wid.z * p.strideB, wid.z * p.strideC);
}

// C[m, n] of the batch at baseC = alpha · sum (+ bias[n]) (+ beta · C[m, n]); the caller checks m < M and n < N.
fn storeOut(baseC: u32, m: u32, n: u32, sum: f32) {
  let at = baseC + m * p.ldc + n;
  var v = p.alpha * sum;
  if (HAS_BIAS) { v += bias[n]; }
  if (USE_BETA) { v = fma(p.beta, C[at], v); }
  C[at] = v;
}
