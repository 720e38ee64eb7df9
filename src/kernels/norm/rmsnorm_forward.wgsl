// RMSNorm forward (Llama): y = x / sqrt(mean(x²) + eps) · weight over the last dim C; rstd saved for backward.
// One workgroup of 256 threads per row n (rows spread over a 2-D grid when N exceeds the per-dimension limit);
// Σx² is reduced in workgroup memory by a fixed tree, so results are deterministic.
// `Params { N, C, eps }` is prepended by the launcher (norm.ts).

@group(0) @binding(0) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(1) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;         // written: (N, C)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;      // written: (N)
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = wid.y * nwg.x + wid.x;
  if (n >= p.N) { return; } // uniform across the workgroup
  let base = n * p.C;
  var s = 0.0;
  for (var c = lid.x; c < p.C; c += WG) { let v = x[base + c]; s += v * v; }
  red[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
    workgroupBarrier();
  }
  let r = 1.0 / sqrt(red[0] / f32(p.C) + p.eps);
  if (lid.x == 0u) { rstd[n] = r; }
  for (var c = lid.x; c < p.C; c += WG) { y[base + c] = x[base + c] * r * weight[c]; }
}
