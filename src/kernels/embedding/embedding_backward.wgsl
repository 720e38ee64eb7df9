// Token embedding backward, one vocab chunk, deterministic without atomics:
//   dwte[v, :] += Σ_{n: ids[n] = v} dx[n, :]    (ACCUMULATED), summed in ascending n.
// The CPU groups positions by token (buildEmbeddingBuckets): unique tokens ascending, offsets (U + 1) and the
// positions of each token, ascending. One workgroup per unique token of this chunk (indices u0..u1−1 of
// `unique`); its threads stride over C. Workgroups past u1 exit. `Params { C, v0, u0, u1 }` from embedding.ts.

@group(0) @binding(0) var<storage, read> dx: array<f32>;              // read: (N, C)
@group(0) @binding(1) var<storage, read> unique: array<u32>;          // read: (U) distinct ids, ascending
@group(0) @binding(2) var<storage, read> offsets: array<u32>;         // read: (U + 1) into positions
@group(0) @binding(3) var<storage, read> positions: array<u32>;       // read: (N) positions grouped by token
@group(0) @binding(4) var<storage, read_write> dwte: array<f32>;      // accumulated: (v1 − v0, C), rows v0..
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 128u;

@compute @workgroup_size(128, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let u = p.u0 + wid.y * nwg.x + wid.x;
  if (u >= p.u1) { return; }
  let row = (unique[u] - p.v0) * p.C;
  let k0 = offsets[u];
  let k1 = offsets[u + 1u];
  for (var c = lid.x; c < p.C; c += WG) {
    var acc = 0.0;
    for (var k = k0; k < k1; k++) { acc += dx[positions[k] * p.C + c]; }
    dwte[row + c] += acc;
  }
}
