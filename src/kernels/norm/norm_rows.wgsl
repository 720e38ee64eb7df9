// Shared code of the row kernels (RMSNorm and LayerNorm forward, and their input gradients), prepended by norm.ts
// after `Params { N, C, eps }`: one workgroup of WG threads per row n (rows spread over a 2-D grid when N exceeds the
// per-dimension limit); main() calls the kernel's `fn row(n: u32, base: u32, t: u32)` with base = n·C, the row's
// first element, and t the thread's index, which strides the row's C columns by WG.
// Sums over the row are reduced in workgroup memory by a fixed tree, so results are deterministic.

const WG: u32 = 256u;
var<workgroup> red: array<vec2f, WG>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = wid.y * nwg.x + wid.x;
  if (n >= p.N) { return; } // uniform across the workgroup
  row(n, n * p.C, lid.x);
}

// Sum of every thread's `v` over the workgroup, two sums at once (all WG threads must call it, t = their index);
// the same tree for each component, so a sum does not depend on what the other one holds.
fn rowSum2(t: u32, v: vec2f) -> vec2f {
  red[t] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (t < stride) { red[t] += red[t + stride]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next reduction
  return total;
}

fn rowSum(t: u32, v: f32) -> f32 {
  return rowSum2(t, vec2f(v, 0.0)).x;
}
