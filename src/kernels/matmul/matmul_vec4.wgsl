// Matmul lab variant 'vec4': the 128×128 tile, 8×8 outputs per thread, of tiled128, with vec4 global loads
// (where the layout is 16-byte aligned; scalar loads otherwise) and vec4 workgroup-memory reads: 4× fewer load
// instructions for the same bytes. One tile slot: load slice, barrier, multiply, barrier. Bindings, loads and the
// per-slice product live in matmul_common.wgsl and matmul_vec4_io.wgsl, which the launcher puts in front of this
// file.

const NBUF: u32 = 1u;

@compute @workgroup_size(WG, WG, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WG + lid.x;
  let t = tileOf(wid);
  var acc: array<vec4f, ACC>;

  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var q = tid; q < TK * TM4; q += THREADS) { As[q] = loadAQuad(t.baseA, t.row0, k0, q); }
    for (var q = tid; q < TK * TN4; q += THREADS) { Bs[q] = loadBQuad(t.baseB, t.col0, k0, q); }
    workgroupBarrier();
    multiplySlice(0u, lid.x, lid.y, &acc);
    workgroupBarrier();
  }
  storeTile(t, lid.x, lid.y, &acc);
}
