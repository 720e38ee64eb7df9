// Global gradient norm, stage 2 of 2: one workgroup sums all partial sums of squares and writes the 'stats'
// buffer [norm, clipScale, nonFinite, sumSq] that AdamW reads on the GPU (no readback).
// Fixed order: thread t sums the contiguous slots [t·per, (t+1)·per) in index order, then a tree over the
// 256 threads. A slot of -1 (stage 1's marker) or a non-finite total sets the flag; norm and sumSq are then
// +Inf (p.inf: a uniform, since WGSL has no Inf literal) and clipScale = maxNorm > 0 ? 0 : 1.
// `Params { nPartials, maxNorm, inf }` is prepended by the launcher (optim.ts).

@group(0) @binding(0) var<storage, read> partials: array<f32>;    // (nPartials)
@group(0) @binding(1) var<storage, read_write> stats: array<f32>; // (4) [norm, clipScale, nonFinite, sumSq]
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;
const EXP_MASK: u32 = 0x7f800000u;
const CLIP_EPS: f32 = 1e-6;

var<workgroup> sums: array<f32, 256>;
var<workgroup> bad: array<u32, 256>;

fn nonFinite(x: f32) -> bool { return (bitcast<u32>(x) & EXP_MASK) == EXP_MASK; }

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
  sums[t] = acc;
  bad[t] = flag;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) {
      sums[t] = sums[t] + sums[t + s];
      bad[t] = max(bad[t], bad[t + s]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let total = sums[0];
    if (bad[0] != 0u || nonFinite(total)) {
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
