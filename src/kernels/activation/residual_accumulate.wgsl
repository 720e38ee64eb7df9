// Residual accumulate: y += x, element-wise over N elements (gradients flowing into the residual stream).
// main() (activation_common.wgsl) calls op(i) for each i < N.
@group(0) @binding(0) var<storage, read> x: array<f32>;       // read: (N)
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // accumulated: (N)
@group(0) @binding(2) var<uniform> p: Params;

fn op(i: u32) {
  y[i] += x[i];
}
