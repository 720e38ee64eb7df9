// SwiGLU forward (Llama MLP): h = silu(gate) ⊙ up, element-wise over N·F elements (p.N is that count).
// main() (activation_common.wgsl) calls op(i) for each i < p.N.
@group(0) @binding(0) var<storage, read> gate: array<f32>;       // read: (N, F)
@group(0) @binding(1) var<storage, read> up: array<f32>;         // read: (N, F)
@group(0) @binding(2) var<storage, read_write> h: array<f32>;    // written: (N, F)
@group(0) @binding(3) var<uniform> p: Params;

fn op(i: u32) {
  h[i] = silu_forward(gate[i]) * up[i];
}
