// SiLU forward: y = x·σ(x), element-wise over N elements.
@group(0) @binding(0) var<storage, read> x: array<f32>;       // read: (N)
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // written: (N)
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  y[i] = x[i] * sigmoidPair(x[i]).x;
}
