// SwiGLU backward: dgate = dh·up·silu'(gate), dup = dh·silu(gate)   (both assigned).
@group(0) @binding(0) var<storage, read> gate: array<f32>;        // read: (N, F)
@group(0) @binding(1) var<storage, read> up: array<f32>;          // read: (N, F)
@group(0) @binding(2) var<storage, read> dh: array<f32>;          // read: (N, F)
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>; // written: (N, F)
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;   // written: (N, F)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  let g = gate[i];
  let s = sigmoidPair(g);
  let d = dh[i];
  dgate[i] = d * up[i] * s.x * (1.0 + g * s.y);
  dup[i] = d * g * s.x;
}
