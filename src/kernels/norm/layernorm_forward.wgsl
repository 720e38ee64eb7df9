// LayerNorm forward: y = (x − mean)·rstd·weight + bias over the last dim C, rstd = 1/sqrt(var + eps)
// (biased variance, two passes: mean first, then Σ(x − mean)²); mean and rstd saved for backward.
// One workgroup of 256 threads per row; fixed-tree reductions (deterministic). `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(1) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(2) var<storage, read> bias: array<f32>;            // read: (C)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;         // written: (N, C)
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;      // written: (N)
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;      // written: (N)
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

// Sum of every thread's `v` (all 256 threads must call it); the result is read by all after the last barrier.
fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { red[lid] += red[lid + stride]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next reduction
  return total;
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = wid.y * nwg.x + wid.x;
  if (n >= p.N) { return; } // uniform across the workgroup
  let base = n * p.C;
  var s = 0.0;
  for (var c = lid.x; c < p.C; c += WG) { s += x[base + c]; }
  let m = reduceSum(lid.x, s) / f32(p.C);
  var q = 0.0;
  for (var c = lid.x; c < p.C; c += WG) { let d = x[base + c] - m; q += d * d; }
  let r = 1.0 / sqrt(reduceSum(lid.x, q) / f32(p.C) + p.eps);
  if (lid.x == 0u) { mean[n] = m; rstd[n] = r; }
  for (var c = lid.x; c < p.C; c += WG) { y[base + c] = (x[base + c] - m) * r * weight[c] + bias[c]; }
}
