// LayerNorm backward, input gradient (llm.c form): with norm_i = (x_i − mean)·r and dnorm_i = dy_i·w_i,
//   dx_i = r · (dnorm_i − mean_j(dnorm_j) − norm_i · mean_j(dnorm_j·norm_j))      (assigned)
// Both sums are reduced together per row by rowSum2 (norm_rows.wgsl, whose main() calls row() once per row n).
// Parameter gradients are a separate kernel (layernorm_dparams.wgsl). `Params { N, C, eps }` from norm.ts.

@group(0) @binding(0) var<storage, read> dy: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> x: array<f32>;               // read: (N, C)
@group(0) @binding(2) var<storage, read> weight: array<f32>;          // read: (C)
@group(0) @binding(3) var<storage, read> mean: array<f32>;            // read: (N)
@group(0) @binding(4) var<storage, read> rstd: array<f32>;            // read: (N)
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;        // written: (N, C)
@group(0) @binding(6) var<uniform> p: Params;

fn row(n: u32, base: u32, t: u32) {
  let m = mean[n];
  let r = rstd[n];
  var s = vec2f(0.0);
  for (var c = t; c < p.C; c += WG) {
    let dnorm = dy[base + c] * weight[c];
    s += vec2f(dnorm, dnorm * (x[base + c] - m) * r);
  }
  let avg = rowSum2(t, s) / f32(p.C);
  for (var c = t; c < p.C; c += WG) {
    let norm = (x[base + c] - m) * r;
    dx[base + c] = r * (dy[base + c] * weight[c] - avg.x - norm * avg.y);
  }
}
