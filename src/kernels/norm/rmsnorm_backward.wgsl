// RMSNorm backward, input gradient: with r = rstd[n] and s = (1/C)·Σ_i dy_i·w_i·x_i,
//   dx_j = r · (dy_j·w_j − x_j · r² · s)      (assigned, not accumulated)
// One workgroup of 256 threads per row; the dot product is reduced by a fixed tree (deterministic).
// The weight gradient is a separate kernel (rmsnorm_dweight.wgsl). `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> dy: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(2) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(3) var<storage, read> rstd: array<f32>;            // read: (N)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;        // written: (N, C)
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = wid.y * nwg.x + wid.x;
  if (n >= p.N) { return; } // uniform across the workgroup
  let base = n * p.C;
  var s = 0.0;
  for (var c = lid.x; c < p.C; c += WG) { s += dy[base + c] * weight[c] * x[base + c]; }
  red[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
    workgroupBarrier();
  }
  let r = rstd[n];
  let k = r * r * red[0] / f32(p.C);
  for (var c = lid.x; c < p.C; c += WG) {
    dx[base + c] = r * (dy[base + c] * weight[c] - x[base + c] * k);
  }
}
