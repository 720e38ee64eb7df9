// Causal grouped-query attention, forward, flash style: o = softmax(scale·q·kᵀ, causal) · v and the row
// log-sum-exp lse, without ever forming the (T, T) score matrix in global memory.
// A workgroup of BR×BC threads owns query rows q0 .. q0+BR-1 of one (b, h) and walks the key blocks
// k0 = 0, BC, ... up to the diagonal. Per key block: thread (r, c) forms the score of query r and key c in
// workgroup memory; every thread of row r then reads that row's BC scores to update the running max m and sum l
// (all threads of a row do the same operations in the same order, so they hold identical m and l) and adds
// P·V to its output accumulator, which holds dims c, c+BC, ... of row r. Masked entries get probability 0.
// The launcher (attention.ts) prepends `Params`, the constants D, BR, BC and attention_tiles.wgsl (the blocks in
// workgroup memory, their loads). Workgroup (x, y, z) = (query block, h, b). Query head h reads kv head
// h / (H / Hkv).
// Inputs are `read`; the launch helper (src/gpu/launch.ts) compiles a read_write copy when a buffer is bound both
// as an input and as an output (tensors that are ranges of one slab).

@group(0) @binding(0) var<storage, read> q: array<f32>;           // read: (B, T, H, D)
@group(0) @binding(1) var<storage, read> k: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(2) var<storage, read> v: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(3) var<storage, read_write> o: array<f32>;     // written: (B, T, H, D)
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;   // written: (B, H, T)
@group(0) @binding(5) var<uniform> p: Params;

const DPT: u32 = (D + BC - 1u) / BC;  // output dims per thread
const NEG: f32 = -3.0e38;             // "minus infinity" for the running max; masked scores never reach exp
var<workgroup> Ss: array<f32, THREADS>; // scores [r][c]
var<workgroup> Ps: array<f32, THREADS>; // probabilities exp(S − m) [r][c]

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let r = tid / BC;
  let c = tid % BC;
  let b = wid.z;
  let h = wid.y;
  let hk = h / (p.H / p.Hkv);
  let q0 = wid.x * BR;
  let qi = q0 + r; // this thread's query row

  for (var idx = tid; idx < BR * D; idx += THREADS) {
    let t = q0 + idx / D;
    var x = 0.0;
    if (t < p.T) { x = q[rowAt(b, t, p.H, h) + idx % D]; }
    Qs[idx] = x;
  }

  var m = NEG;   // running max of row qi
  var l = 0.0;   // running Σ exp(S − m) of row qi
  var acc: array<f32, DPT>; // Σ exp(S − m)·v, dims c + BC·i of row qi
  let kEnd = min(p.T, q0 + BR); // keys past the block's last query are all masked
  for (var k0 = 0u; k0 < kEnd; k0 += BC) {
    workgroupBarrier(); // the previous block's Ks, Vs, Ps are no longer read (first time: Qs is written)
    loadKeyBlock(b, hk, k0, tid);
    workgroupBarrier();

    let valid = qi < p.T && k0 + c <= qi; // causal mask (k0 + c ≤ qi < T also bounds the key)
    var s = NEG;
    if (valid) {
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot = fma(Qs[r * D + d], Ks[c * D + d], dot); }
      s = dot * p.scale;
    }
    Ss[tid] = s;
    workgroupBarrier();

    var mNew = m;
    for (var j = 0u; j < BC; j++) { mNew = max(mNew, Ss[r * BC + j]); }
    Ps[tid] = select(0.0, exp(s - mNew), valid);
    workgroupBarrier();

    let alpha = exp(m - mNew); // rescales what was summed against the old max
    var rowSum = 0.0;
    for (var i = 0u; i < DPT; i++) { acc[i] *= alpha; }
    for (var j = 0u; j < BC; j++) {
      let pj = Ps[r * BC + j];
      rowSum += pj;
      for (var i = 0u; i < DPT; i++) {
        let d = c + i * BC;
        if (d < D) { acc[i] = fma(pj, Vs[j * D + d], acc[i]); }
      }
    }
    l = l * alpha + rowSum;
    m = mNew;
  }

  if (qi < p.T) {
    for (var i = 0u; i < DPT; i++) {
      let d = c + i * BC;
      if (d < D) { o[rowAt(b, qi, p.H, h) + d] = acc[i] / l; }
    }
    if (c == 0u) { lse[(b * p.H + h) * p.T + qi] = m + log(l); }
  }
}
