// Token embedding forward (Llama: no position embedding), one vocab chunk: x[n, :] = wte[ids[n], :] for the
// rows whose id lies in this chunk's range [v0, v1); other rows are left to the other chunks' dispatches.
// `wte` is bound to the chunk only (rows v0..v1−1), so its binding stays under maxStorageBufferBindingSize.
// One thread per element of x. `Params { N, C, v0, v1 }` is prepended by the launcher (embedding.ts).

@group(0) @binding(0) var<storage, read> ids: array<u32>;       // read: (N) = (B, T) token ids
@group(0) @binding(1) var<storage, read> wte: array<f32>;       // read: (v1 − v0, C), rows v0.. of (V, C)
@group(0) @binding(2) var<storage, read_write> x: array<f32>;   // written: (N, C)
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i - n * p.C;
  let id = ids[n];
  if (id >= p.v0 && id < p.v1) { x[i] = wte[(id - p.v0) * p.C + c]; }
}
