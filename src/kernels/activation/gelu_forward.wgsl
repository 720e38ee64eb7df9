// GELU forward (tanh approximation, GPT-2): y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = x·σ(2u).
@group(0) @binding(0) var<storage, read> x: array<f32>;       // read: (N)
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // written: (N)
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  let v = x[i];
  y[i] = v * sigmoidPair(geluArg(v).x).x;
}
