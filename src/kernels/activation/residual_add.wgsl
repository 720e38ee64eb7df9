// Residual add: out = a + b, element-wise over N elements.
@group(0) @binding(0) var<storage, read> a: array<f32>;         // read: (N)
@group(0) @binding(1) var<storage, read> b: array<f32>;         // read: (N)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // written: (N)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = elementIndex(lid, wid, nwg);
  if (i >= p.N) { return; }
  out[i] = a[i] + b[i];
}
