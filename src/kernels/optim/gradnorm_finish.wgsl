// Global gradient norm, stage 2 of 2: one workgroup sums all partial sums of squares and writes the 'stats'
// buffer [norm, clipScale, nonFinite, sumSq] that AdamW reads on the GPU (no readback).
// Fixed order: thread t sums the contiguous slots [t·per, (t+1)·per) in index order, then workgroupSum's tree over
// the 256 threads (gradnorm_reduce.wgsl). A slot of -1 (stage 1's marker) or a non-finite total sets the flag; norm
// and sumSq are then +Inf (p.inf: a uniform, since WGSL has no Inf literal) and clipScale = maxNorm > 0 ? 0 : 1.
// `Params { nPartials, maxNorm, inf }` is prepended by the launcher (optim.ts).

@group(0) @binding(0) var<storage, read> partials: array<f32>;    // (nPartials)
@group(0) @binding(1) var<storage, read_write> stats: array<f32>; // (4) [norm, clipScale, nonFinite, sumSq]
@group(0) @binding(2) var<uniform> p: Params;

const CLIP_EPS: f32 = 1e-6;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) t: u32) {
  let per = (p.nPartials + WG - 1u) / WG;
  let lo = min(t * per, p.nPartials);
  let hi = min(lo + per, p.nPartials);
  var acc = 0.0;
  var flag = 0u;
  for (var i = lo; i < hi; i++) {
    let s = partials[i];
    if (s < 0.0 || nonFinite(s)) { flag = 1u; }
    acc = acc + s;
  }
  let total = workgroupSum(t, acc, flag);
  if (t == 0u) {
    if (total < 0.0) {
      stats[0] = p.inf;
      stats[1] = select(1.0, 0.0, p.maxNorm > 0.0);
      stats[2] = 1.0;
      stats[3] = p.inf;
    } else {
      let norm = sqrt(total);
      var scale = 1.0;
      if (p.maxNorm > 0.0) { scale = min(1.0, p.maxNorm / (norm + CLIP_EPS)); }
      stats[0] = norm;
      stats[1] = scale;
      stats[2] = 0.0;
      stats[3] = total;
    }
  }
}
