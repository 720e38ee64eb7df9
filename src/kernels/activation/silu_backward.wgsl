// SiLU backward: dx = dy·σ(x)·(1 + x·(1 − σ(x)))   (assigned).
@group(0) @binding(0) var<storage, read> x: array<f32>;        // read: (N)
@group(0) @binding(1) var<storage, read> dy: array<f32>;       // read: (N)
@group(0) @binding(2) var<storage, read_write> dx: array<f32>; // written: (N)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  let v = x[i];
  let s = sigmoidPair(v);
  dx[i] = dy[i] * s.x * (1.0 + v * s.y);
}
