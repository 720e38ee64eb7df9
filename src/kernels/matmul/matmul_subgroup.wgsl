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
// read comes after. Bindings, the slice loads and the epilogue live in matmul_common.wgsl and matmul_tile_io.wgsl,
// which the launcher puts in front of this file; it hoists the `enable` line above Params and the constants TM,
// TN, TK, WG, RM, RN, TRANS_A, TRANS_B, HAS_BIAS, USE_BETA, and refuses this variant on a device without
// 'subgroups'.

const AF: u32 = RM * TK / WG; // A values each thread holds for its row per slice
const_assert RM * TK % WG == 0u && WG <= 32u && TM == WG * RM && TN == WG * RN;

var<workgroup> laneOf: array<u32, THREADS>;  // subgroup_invocation_id of thread tid
var<workgroup> groupOf: array<u32, THREADS>; // smallest local index in thread tid's subgroup

@compute @workgroup_size(WG, WG, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
        @builtin(subgroup_invocation_id) lane: u32) {
  let tid = lid.y * WG + lid.x;
  let t = tileOf(wid);

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
    loadSlice(t, k0, tid);
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
  storeTile(t, lid.x, lid.y, &acc);
}
