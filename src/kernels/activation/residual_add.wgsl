// Residual add: out = a + b, element-wise over N elements. main() (activation_common.wgsl) calls op(i) for each i < N.
@group(0) @binding(0) var<storage, read> a: array<f32>;         // read: (N)
@group(0) @binding(1) var<storage, read> b: array<f32>;         // read: (N)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // written: (N)
@group(0) @binding(3) var<uniform> p: Params;

fn op(i: u32) {
  out[i] = a[i] + b[i];
}
