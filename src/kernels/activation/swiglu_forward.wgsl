// SwiGLU forward (Llama MLP): h = silu(gate) ⊙ up, element-wise over N·F elements (p.N is that count).
@group(0) @binding(0) var<storage, read> gate: array<f32>;       // read: (N, F)
@group(0) @binding(1) var<storage, read> up: array<f32>;         // read: (N, F)
@group(0) @binding(2) var<storage, read_write> h: array<f32>;    // written: (N, F)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  let g = gate[i];
  h[i] = g * sigmoidPair(g).x * up[i];
}
