// Shared by the register-tiled matmul variants (tiled, tiled128x64, tiled128, subgroup through matmul_tile_io.wgsl;
// vec4 and dbuf through matmul_vec4_io.wgsl; not naive, the independent second opinion): the bindings, where a
// workgroup's output tile lies, B's decoding (readB) and the epilogue of one output. The launcher prepends Params and
// the constants TM, TN, TK, WG, RM, RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA, B_FORMAT.

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<u32>;        // words; readB decodes an element of any B_FORMAT
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (N), read only when HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

const THREADS: u32 = WG * WG;

// Element e of B (an index in elements, as ldb and strideB count them) as f32. B_FORMAT 0: f32, one element per
// word. 1 (bf16) and 2 (f16): two elements per word, element e in half (e & 1) of word e >> 1, low half first (the
// little-endian bytes of a 16-bit safetensors tensor), so a row may start in the middle of a word. A bf16 is the top
// half of an f32: moved up (low half) or masked (high half), it is that f32 exactly; unpack2x16float is core WGSL,
// so no 'shader-f16' feature is needed.
fn readB(e: u32) -> f32 {
  if (B_FORMAT == 0u) { return bitcast<f32>(B[e]); }
  let w = B[e >> 1u];
  if (B_FORMAT == 1u) { return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u)); }
  return unpack2x16float(w)[e & 1u];
}

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
