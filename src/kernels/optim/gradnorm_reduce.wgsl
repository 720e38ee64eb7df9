// Shared by both stages of the global gradient norm (gradnorm_partial.wgsl, gradnorm_finish.wgsl), prepended by
// optim.ts after the stage's `Params`: the non-finite test and the workgroup's fixed-order sum.

const WG: u32 = 256u; // threads per workgroup
const EXP_MASK: u32 = 0x7f800000u;

var<workgroup> sums: array<f32, 256>;
var<workgroup> bad: array<u32, 256>;

// NaN or ±Inf, tested on the bits (WGSL may assume finite math).
fn nonFinite(x: f32) -> bool { return (bitcast<u32>(x) & EXP_MASK) == EXP_MASK; }

// The sum of every thread's `acc` by a fixed tree over the 256 threads (all must call it, t = their index), or -1
// (a value no sum of squares can take) if some thread's `flag` is set or the sum overflowed.
fn workgroupSum(t: u32, acc: f32, flag: u32) -> f32 {
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
  if (bad[0] != 0u || nonFinite(sums[0])) { return -1.0; }
  return sums[0];
}
