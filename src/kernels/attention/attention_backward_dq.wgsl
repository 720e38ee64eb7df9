// Causal attention backward, step 2 of 3: dq = scale · dS · k, with P = exp(S − lse) recomputed block by block
// (FlashAttention-2), dP = dout·vᵀ and dS = P ⊙ (dP − delta). dq is assigned.
// A workgroup of BR×BC threads owns query rows q0 .. q0+BR-1 of one (b, h) and walks the key blocks up to the
// diagonal: thread (r, c) forms dS of query r and key c in workgroup memory, then accumulates dS·k into dims
// c, c+BC, ... of row r, summing keys in increasing order (deterministic, no atomics).
// The launcher (attention.ts) prepends `Params`, the constants D, BR, BC, attention_tiles.wgsl and
// attention_backward_tiles.wgsl (the blocks in workgroup memory, their loads, the dot products). Workgroup
// (x, y, z) = (query block, h, b).
// Inputs are `read`; the launch helper (src/gpu/launch.ts) compiles a read_write copy when a buffer is bound both
// as an input and as an output (tensors that are ranges of one slab).

// Inputs q, k, v, dout, lse, delta: bindings 0 .. 5, in attention_backward_tiles.wgsl.
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;    // written: (B, T, H, D)
@group(0) @binding(7) var<uniform> p: Params;

const DPT: u32 = (D + BC - 1u) / BC;  // dq dims per thread
var<workgroup> dSs: array<f32, THREADS>; // [r][c]

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let r = tid / BC;
  let c = tid % BC;
  let b = wid.z;
  let h = wid.y;
  let hk = h / (p.H / p.Hkv);
  let q0 = wid.x * BR;
  let qi = q0 + r;

  loadQueryBlock(b, h, q0, tid);
  var L = 0.0;
  var delt = 0.0;
  if (qi < p.T) {
    L = lse[(b * p.H + h) * p.T + qi];
    delt = delta[(b * p.H + h) * p.T + qi];
  }

  var acc: array<f32, DPT>; // Σ_j dS·k, dims c + BC·i of row qi
  let kEnd = min(p.T, q0 + BR);
  for (var k0 = 0u; k0 < kEnd; k0 += BC) {
    workgroupBarrier(); // the previous block's Ks, dSs are no longer read (first time: Qs, dOs are written)
    loadKeyBlock(b, hk, k0, tid);
    workgroupBarrier();

    var ds = 0.0;
    if (qi < p.T && k0 + c <= qi) {
      let sd = scoreDots(r, c);
      ds = exp(sd.x * p.scale - L) * (sd.y - delt);
    }
    dSs[tid] = ds;
    workgroupBarrier();

    for (var j = 0u; j < BC; j++) {
      let dsj = dSs[r * BC + j];
      for (var i = 0u; i < DPT; i++) {
        let d = c + i * BC;
        if (d < D) { acc[i] = fma(dsj, Ks[j * D + d], acc[i]); }
      }
    }
  }

  if (qi < p.T) {
    for (var i = 0u; i < DPT; i++) {
      let d = c + i * BC;
      if (d < D) { dq[rowAt(b, qi, p.H, h) + d] = p.scale * acc[i]; }
    }
  }
}
