// RMSNorm backward, input gradient: with r = rstd[n] and s = (1/C)·Σ_i dy_i·w_i·x_i,
//   dx_j = r · (dy_j·w_j − x_j · r² · s)      (assigned, not accumulated)
// The dot product is reduced per row by rowSum (norm_rows.wgsl, whose main() calls row() once per row n).
// The weight gradient is a separate kernel (rmsnorm_dweight.wgsl). `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> dy: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(2) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(3) var<storage, read> rstd: array<f32>;            // read: (N)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;        // written: (N, C)
@group(0) @binding(5) var<uniform> p: Params;

fn row(n: u32, base: u32, t: u32) {
  var s = 0.0;
  for (var c = t; c < p.C; c += WG) { s += dy[base + c] * weight[c] * x[base + c]; }
  let r = rstd[n];
  let k = r * r * rowSum(t, s) / f32(p.C);
  for (var c = t; c < p.C; c += WG) {
    dx[base + c] = r * (dy[base + c] * weight[c] - x[base + c] * k);
  }
}
