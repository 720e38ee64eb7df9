// Global gradient norm, stage 1 of 2: each workgroup writes the sum of squares of its 1024 gradients to one
// slot of the partials buffer. Slot of workgroup w of a chunk = partialBase + w, with partialBase = (chunk's
// first float) / 1024, so the partition (and thus every bit of the result) does not depend on the chunking. A slab
// split across buffers (shards) starts each shard at a new slot: its sum depends on the shard cuts, not the chunks.
// Within a workgroup the order is fixed: thread t sums elements t, t+256, t+512, t+768 in that order (fma),
// then workgroupSum's tree over the 256 threads (gradnorm_reduce.wgsl). A non-finite gradient or an overflowed sum
// makes the slot -1, a value no sum of squares can take.
// `Params { n, partialBase }` is prepended by the launcher (optim.ts).

@group(0) @binding(0) var<storage, read> G: array<f32>;              // (n) one chunk of the gradient slab
@group(0) @binding(1) var<storage, read_write> partials: array<f32>; // (ceil(P / 1024)) all chunks' slots
@group(0) @binding(2) var<uniform> p: Params;

const PER_THREAD: u32 = 4u;    // gradients per thread
const PER_GROUP: u32 = 1024u;  // WG * PER_THREAD gradients per workgroup (= per partial)

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
  let total = workgroupSum(t, acc, flag);
  if (t == 0u) { partials[p.partialBase + wid.x] = total; }
}
