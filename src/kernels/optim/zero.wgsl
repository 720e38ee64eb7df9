// Sets one chunk of a buffer to 0: resets an accumulating gradient slab at the start of a step, inside the
// step's compute pass (encoder.clearBuffer would need its own pass).
// `Params { n }` is prepended by the launcher (optim.ts).

@group(0) @binding(0) var<storage, read_write> X: array<f32>; // (n)
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) { X[gid.x] = 0.0; }
}
