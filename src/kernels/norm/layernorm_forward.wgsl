// LayerNorm forward: y = (x − mean)·rstd·weight + bias over the last dim C, rstd = 1/sqrt(var + eps)
// (biased variance, two passes: mean first, then Σ(x − mean)²); mean and rstd saved for backward.
// Both sums are reduced per row by rowSum (norm_rows.wgsl, whose main() calls row() once per row n).
// `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(1) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(2) var<storage, read> bias: array<f32>;            // read: (C)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;         // written: (N, C)
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;      // written: (N)
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;      // written: (N)
@group(0) @binding(6) var<uniform> p: Params;

fn row(n: u32, base: u32, t: u32) {
  var s = 0.0;
  for (var c = t; c < p.C; c += WG) { s += x[base + c]; }
  let m = rowSum(t, s) / f32(p.C);
  var q = 0.0;
  for (var c = t; c < p.C; c += WG) { let d = x[base + c] - m; q += d * d; }
  let r = 1.0 / sqrt(rowSum(t, q) / f32(p.C) + p.eps);
  if (t == 0u) { mean[n] = m; rstd[n] = r; }
  for (var c = t; c < p.C; c += WG) { y[base + c] = (x[base + c] - m) * r * weight[c] + bias[c]; }
}
