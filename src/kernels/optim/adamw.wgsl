// AdamW (torch.optim.AdamW semantics) over one chunk of one region of the parameter slab: one thread per float.
//   g = grad·clipScale; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²
//   p = p·(1 − lr·wd) − (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps)
// which is p − lr·(m̂/(sqrt(v̂) + eps) + wd·p) with the old p in the decay term. clipScale and the non-finite flag
// come from the stats buffer written by gradnorm_finish.wgsl: when the flag is set nothing is written at all.
// `Hyper { ... }` (per step, shared by all chunks) and `Region { n, weightDecay }` (per chunk) are prepended by
// the launcher (optim.ts); the bias corrections are computed there in f64.

@group(0) @binding(0) var<storage, read_write> P: array<f32>; // (n) parameters, updated
@group(0) @binding(1) var<storage, read> G: array<f32>;       // (n) gradients
@group(0) @binding(2) var<storage, read_write> M: array<f32>; // (n) first moment, updated
@group(0) @binding(3) var<storage, read_write> V: array<f32>; // (n) second moment, updated
@group(0) @binding(4) var<storage, read> stats: array<f32>;   // (4) [norm, clipScale, nonFinite, sumSq]
@group(0) @binding(5) var<uniform> hp: Hyper;
@group(0) @binding(6) var<uniform> r: Region;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= r.n || stats[2] != 0.0) { return; }
  let g = G[i] * stats[1];
  let m = hp.beta1 * M[i] + hp.oneMinusBeta1 * g;
  let v = hp.beta2 * V[i] + hp.oneMinusBeta2 * (g * g);
  M[i] = m;
  V[i] = v;
  let w = P[i];
  P[i] = w * (1.0 - hp.lr * r.weightDecay) - hp.stepSize * m / (sqrt(v) * hp.invSqrtBc2 + hp.eps);
}
