// RMSNorm forward (Llama): y = x / sqrt(mean(x²) + eps) · weight over the last dim C; rstd saved for backward.
// Σx² is reduced per row by rowSum (norm_rows.wgsl, whose main() calls row() once per row n).
// `Params { N, C, eps }` is prepended by the launcher (norm.ts).

@group(0) @binding(0) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(1) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;         // written: (N, C)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;      // written: (N)
@group(0) @binding(4) var<uniform> p: Params;

fn row(n: u32, base: u32, t: u32) {
  var s = 0.0;
  for (var c = t; c < p.C; c += WG) { let v = x[base + c]; s += v * v; }
  let r = 1.0 / sqrt(rowSum(t, s) / f32(p.C) + p.eps);
  if (t == 0u) { rstd[n] = r; }
  for (var c = t; c < p.C; c += WG) { y[base + c] = x[base + c] * r * weight[c]; }
}
