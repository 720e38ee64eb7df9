// Activation backward, dx = dy·f'(x) element-wise over N elements (assigned), for f = SiLU or GELU: the launcher
// replaces ACT_ by `silu_` or `gelu_` (the functions of activation_common.wgsl, whose main() calls op(i)).
@group(0) @binding(0) var<storage, read> x: array<f32>;        // read: (N)
@group(0) @binding(1) var<storage, read> dy: array<f32>;       // read: (N)
@group(0) @binding(2) var<storage, read_write> dx: array<f32>; // written: (N)
@group(0) @binding(3) var<uniform> p: Params;

fn op(i: u32) {
  dx[i] = ACT_backward(x[i], dy[i]);
}
