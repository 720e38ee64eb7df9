// LayerNorm backward, input gradient (llm.c form): with norm_i = (x_i − mean)·r and dnorm_i = dy_i·w_i,
//   dx_i = r · (dnorm_i − mean_j(dnorm_j) − norm_i · mean_j(dnorm_j·norm_j))      (assigned)
// One workgroup of 256 threads per row; both sums reduced together by a fixed tree (deterministic).
// Parameter gradients are a separate kernel (layernorm_dparams.wgsl). `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> dy: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(2) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(3) var<storage, read> mean: array<f32>;            // read: (N)
@group(0) @binding(4) var<storage, read> rstd: array<f32>;            // read: (N)
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;        // written: (N, C)
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<vec2f, WG>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = wid.y * nwg.x + wid.x;
  if (n >= p.N) { return; } // uniform across the workgroup
  let base = n * p.C;
  let m = mean[n];
  let r = rstd[n];
  var s = vec2f(0.0);
  for (var c = lid.x; c < p.C; c += WG) {
    let dnorm = dy[base + c] * weight[c];
    s += vec2f(dnorm, dnorm * (x[base + c] - m) * r);
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { red[lid.x] += red[lid.x + stride]; }
    workgroupBarrier();
  }
  let avg = red[0] / f32(p.C);
  for (var c = lid.x; c < p.C; c += WG) {
    let norm = (x[base + c] - m) * r;
    dx[base + c] = r * (dy[base + c] * weight[c] - avg.x - norm * avg.y);
  }
}
