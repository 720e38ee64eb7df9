// Matmul lab variant 'dbuf': 'vec4' (128×128 tile, 8×8 per thread, vec4 loads) with double-buffered workgroup
// tiles. Two slots; while slice s is multiplied from slot s % 2, slice s + 1 is fetched from global memory into
// registers (issued before the multiply, so its latency hides behind the math) and stored into the other slot
// after it. One barrier per slice: the barrier ending step s both publishes slot (s + 1) % 2 for step s + 1 and
// separates step s's reads of slot s % 2 from step s + 1's writes to it. 2 × 8 KiB of tiles = 16 KiB.
// Bindings, loads and the per-slice product live in matmul_common.wgsl and matmul_vec4_io.wgsl, put in front of
// this file.

const NBUF: u32 = 2u;
const QA: u32 = TK * TM4 / THREADS; // A quads each thread fetches per slice
const QB: u32 = TK * TN4 / THREADS;
const_assert TK * TM4 % THREADS == 0u && TK * TN4 % THREADS == 0u;

@compute @workgroup_size(WG, WG, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WG + lid.x;
  let t = tileOf(wid);
  var acc: array<vec4f, ACC>;
  let slices = (p.K + TK - 1u) / TK;

  for (var i = 0u; i < QA; i++) { As[tid + i * THREADS] = loadAQuad(t.baseA, t.row0, 0u, tid + i * THREADS); }
  for (var i = 0u; i < QB; i++) { Bs[tid + i * THREADS] = loadBQuad(t.baseB, t.col0, 0u, tid + i * THREADS); }
  workgroupBarrier();

  for (var s = 0u; s < slices; s++) {
    let cur = s % 2u;
    let next = 1u - cur;
    let more = s + 1u < slices;
    var ra: array<vec4f, QA>;
    var rb: array<vec4f, QB>;
    if (more) {
      for (var i = 0u; i < QA; i++) { ra[i] = loadAQuad(t.baseA, t.row0, (s + 1u) * TK, tid + i * THREADS); }
      for (var i = 0u; i < QB; i++) { rb[i] = loadBQuad(t.baseB, t.col0, (s + 1u) * TK, tid + i * THREADS); }
    }
    multiplySlice(cur, lid.x, lid.y, &acc);
    if (more) {
      for (var i = 0u; i < QA; i++) { As[next * TK * TM4 + tid + i * THREADS] = ra[i]; }
      for (var i = 0u; i < QB; i++) { Bs[next * TK * TN4 + tid + i * THREADS] = rb[i]; }
    }
    workgroupBarrier();
  }
  storeTile(t, lid.x, lid.y, &acc);
}
