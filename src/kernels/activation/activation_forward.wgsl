// Activation forward, y = f(x) element-wise over N elements, for f = SiLU or GELU: the launcher replaces ACT_ by
// `silu_` or `gelu_` (the functions of activation_common.wgsl, whose main() calls op(i) for each i < N).
@group(0) @binding(0) var<storage, read> x: array<f32>;       // read: (N)
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // written: (N)
@group(0) @binding(2) var<uniform> p: Params;

fn op(i: u32) {
  y[i] = ACT_forward(x[i]);
}
