// Global gradient norm, stage 1 of 2: each workgroup writes the sum of squares of its 1024 gradients to one
// slot of the partials buffer. Slot of workgroup w of a chunk = partialBase + w, with partialBase = (chunk's
// first float) / 1024, so the partition (and thus every bit of the result) does not depend on the chunking.
// Within a workgroup the order is fixed: thread t sums elements t, t+256, t+512, t+768 in that order (fma),
// then a tree over the 256 threads. A non-finite gradient (NaN/±Inf, tested on the bits, since WGSL may assume
// finite math) or an overflowed sum makes the slot -1, a value no sum of squares can take.
// `Params { n, partialBase }` is prepended by the launcher (optim.ts).

@group(0) @binding(0) var<storage, read> G: array<f32>;              // (n) one chunk of the gradient slab
@group(0) @binding(1) var<storage, read_write> partials: array<f32>; // (ceil(P / 1024)) all chunks' slots
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;          // threads per workgroup
const PER_THREAD: u32 = 4u;    // gradients per thread
const PER_GROUP: u32 = 1024u;  // WG * PER_THREAD gradients per workgroup (= per partial)
const EXP_MASK: u32 = 0x7f800000u;

var<workgroup> sums: array<f32, 256>;
var<workgroup> bad: array<u32, 256>;

fn nonFinite(x: f32) -> bool { return (bitcast<u32>(x) & EXP_MASK) == EXP_MASK; }

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let base = wid.x * PER_GROUP;
  var acc = 0.0;
  var flag = 0u;
  for (var j = 0u; j < PER_THREAD; j++) {
    let i = base + j * WG + t;
    if (i < p.n) {
      let g = G[i];
      if (nonFinite(g)) { flag = 1u; }
      acc = fma(g, g, acc);
    }
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
    var total = sums[0];
    if (bad[0] != 0u || nonFinite(total)) { total = -1.0; }
    partials[p.partialBase + wid.x] = total;
  }
}
