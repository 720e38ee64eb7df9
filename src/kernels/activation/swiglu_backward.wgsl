// SwiGLU backward: dgate = dh·up·silu'(gate), dup = dh·silu(gate)   (both assigned; dup multiplies dh·gate first).
// main() (activation_common.wgsl) calls op(i) for each i < p.N.
@group(0) @binding(0) var<storage, read> gate: array<f32>;        // read: (N, F)
@group(0) @binding(1) var<storage, read> up: array<f32>;          // read: (N, F)
@group(0) @binding(2) var<storage, read> dh: array<f32>;          // read: (N, F)
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>; // written: (N, F)
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;   // written: (N, F)
@group(0) @binding(5) var<uniform> p: Params;

fn op(i: u32) {
  let g = gate[i];
  let d = dh[i];
  dgate[i] = silu_backward(g, d * up[i]);
  dup[i] = d * g * sigmoidPair(g).x;
}
