enable subgroups;
// Matmul lab variant 'subgroup': tiled128 (128×128 tile, 8×8 outputs per thread, TK = 8) sharing A through
// subgroup shuffles instead of every thread re-reading it from workgroup memory. The WG threads of one tile row
// y all need the same RM·TK values of A per slice; thread (x, y) reads AF = RM·TK/WG of them once, and each
// other thread of the row gets them with subgroupShuffle — when the two share a subgroup. Which threads share
// a subgroup, its size (WebGPU allows 4..128) and the lane numbering are the device's choice, so the kernel
// assumes none of them: every thread publishes its lane (subgroup_invocation_id) and its subgroup's smallest
// local index (subgroupMin, the same value exactly for the members of one subgroup) in workgroup memory once;
// a thread then shuffles from the holder's lane when the holder is in its subgroup and reads workgroup memory
// otherwise. Both paths give the very same float, so the result is bit-identical to tiled128's for any
// subgroup layout (NVIDIA's 32-wide subgroups cover whole rows: no fallback reads; SwiftShader's 4-wide ones
// take both paths). subgroup_size itself is never needed. Shuffles run in uniform control flow; the fallback
// read comes after. The launcher hoists the `enable` line above Params and the constants TM, TN, TK, WG, RM,
// RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA, and refuses this variant on a device without 'subgroups'.

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (N), read only when HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

const THREADS: u32 = WG * WG;
const AF: u32 = RM * TK / WG; // A values each thread holds for its row per slice
const_assert RM * TK % WG == 0u && WG <= 32u && TM == WG * RM && TN == WG * RN;

var<workgroup> As: array<f32, TK * TM>; // [k][m]
var<workgroup> Bs: array<f32, TK * TN>; // [k][n]
var<workgroup> laneOf: array<u32, THREADS>;  // subgroup_invocation_id of thread tid
var<workgroup> groupOf: array<u32, THREADS>; // smallest local index in thread tid's subgroup

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
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let tid = lid.y * WG + lid.x;
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let baseA = wid.z * p.strideA;
  let baseB = wid.z * p.strideB;
  let baseC = wid.z * p.strideC;

  // Where the other threads of this tile row are: their lane, and whether they are in this subgroup (bit h).
  let group = subgroupMin(tid);
  laneOf[tid] = lane;
  groupOf[tid] = group;
  workgroupBarrier();
  var src: array<u32, WG>;
  var near = 0u;
  for (var h = 0u; h < WG; h++) {
    let q = lid.y * WG + h;
    src[h] = laneOf[q];
    if (groupOf[q] == group) { near |= 1u << h; }
  }

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
    // Value f = k·RM + i of the row's fragment is As[k][y + i·WG]; thread (x, y) holds f = x·AF .. x·AF + AF − 1.
    var held: array<f32, AF>;
    for (var u = 0u; u < AF; u++) {
      let f = lid.x * AF + u;
      held[u] = As[(f / RM) * TM + lid.y + (f % RM) * WG];
    }
    for (var k = 0u; k < TK; k++) {
      var a: array<f32, RM>;
      var b: array<f32, RN>;
      for (var i = 0u; i < RM; i++) {
        let f = k * RM + i;
        let h = f / AF;
        a[i] = subgroupShuffle(held[f % AF], src[h]);
        if ((near & (1u << h)) == 0u) { a[i] = As[k * TM + lid.y + i * WG]; }
      }
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
