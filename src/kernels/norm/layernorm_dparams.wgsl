// LayerNorm backward, parameter gradients (ACCUMULATED):
//   dweight[c] += Σ_n dy[n, c] · (x[n, c] − mean[n]) · rstd[n],   dbias[c] += Σ_n dy[n, c]
// Deterministic, no atomics: a workgroup owns COLS columns; its LANES row-lanes each sum rows
// n ≡ lane (mod LANES) in ascending order, then lane 0 adds the partials in lane order.
// `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> dy: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(2) var<storage, read> mean: array<f32>;            // read: (N)
@group(0) @binding(3) var<storage, read> rstd: array<f32>;            // read: (N)
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;   // accumulated: (C)
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;     // accumulated: (C)
@group(0) @binding(6) var<uniform> p: Params;

const COLS: u32 = 32u;
const LANES: u32 = 8u;
var<workgroup> part: array<vec2f, 256>; // [LANES][COLS] of (dweight, dbias) partials

@compute @workgroup_size(32, 8, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x * COLS + lid.x;
  var s = vec2f(0.0);
  if (c < p.C) {
    for (var n = lid.y; n < p.N; n += LANES) {
      let g = dy[n * p.C + c];
      s += vec2f(g * (x[n * p.C + c] - mean[n]) * rstd[n], g);
    }
  }
  part[lid.y * COLS + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < p.C) {
    var t = vec2f(0.0);
    for (var l = 0u; l < LANES; l++) { t += part[l * COLS + lid.x]; }
    dweight[c] += t.x;
    dbias[c] += t.y;
  }
}
