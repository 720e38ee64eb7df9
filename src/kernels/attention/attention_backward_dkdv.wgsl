// Causal attention backward, step 3 of 3: dk = scale · dSᵀ · q and dv = Pᵀ · dout, summed over every query
// head of the kv head's group, with P = exp(S − lse) and dS = P ⊙ (dout·vᵀ − delta) recomputed (FlashAttention-2).
// dk and dv are assigned; each is written by exactly one thread, after summing in a fixed order (query heads of
// the group in increasing order, then query rows in increasing order): deterministic, no atomics.
// A workgroup of BR×BC threads owns keys k0 .. k0+BC-1 of one (b, kv head). For each query head of the group it
// walks the query blocks from the one holding the diagonal to the end: thread (r, c) forms P and dS of query r
// and key c in workgroup memory; then thread tid accumulates key row tid / BR, dims tid % BR + BR·i.
// The launcher (attention.ts) prepends `Params`, the constants D, BR, BC, attention_tiles.wgsl and
// attention_backward_tiles.wgsl (the blocks in workgroup memory, their loads, the dot products). Workgroup
// (x, y, z) = (key block, kv head, b).
// Inputs are `read`; the launch helper (src/gpu/launch.ts) compiles a read_write copy when a buffer is bound both
// as an input and as an output (tensors that are ranges of one slab).

// Inputs q, k, v, dout, lse, delta: bindings 0 .. 5, in attention_backward_tiles.wgsl.
@group(0) @binding(6) var<storage, read_write> dk: array<f32>;    // written: (B, T, Hkv, D)
@group(0) @binding(7) var<storage, read_write> dv: array<f32>;    // written: (B, T, Hkv, D)
@group(0) @binding(8) var<uniform> p: Params;

const DPT: u32 = (D + BR - 1u) / BR;  // dk, dv dims per thread
var<workgroup> Ps: array<f32, THREADS>; // [r][c]
var<workgroup> dSs: array<f32, THREADS>; // [r][c]
var<workgroup> Ls: array<f32, BR>;
var<workgroup> deltas: array<f32, BR>;

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let r = tid / BC;  // score phase: query r, key c
  let c = tid % BC;
  let kc = tid / BR; // accumulation phase: key row kc, dims dl + BR·i
  let dl = tid % BR;
  let b = wid.z;
  let hk = wid.y;
  let group = p.H / p.Hkv;
  let k0 = wid.x * BC;
  let kj = k0 + c;

  loadKeyBlock(b, hk, k0, tid);

  var dkAcc: array<f32, DPT>;
  var dvAcc: array<f32, DPT>;
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    for (var q0 = (k0 / BR) * BR; q0 < p.T; q0 += BR) { // queries before k0 see none of these keys
      workgroupBarrier(); // the previous block's Qs, dOs, Ps, dSs are no longer read (first time: Ks, Vs written)
      loadQueryBlock(b, h, q0, tid);
      if (tid < BR) {
        let t = q0 + tid;
        var lx = 0.0;
        var dx = 0.0;
        if (t < p.T) {
          lx = lse[(b * p.H + h) * p.T + t];
          dx = delta[(b * p.H + h) * p.T + t];
        }
        Ls[tid] = lx;
        deltas[tid] = dx;
      }
      workgroupBarrier();

      let qi = q0 + r;
      var pr = 0.0;
      var ds = 0.0;
      if (qi < p.T && kj <= qi) {
        let sd = scoreDots(r, c);
        pr = exp(sd.x * p.scale - Ls[r]);
        ds = pr * (sd.y - deltas[r]);
      }
      Ps[tid] = pr;
      dSs[tid] = ds;
      workgroupBarrier();

      for (var j = 0u; j < BR; j++) {
        let pj = Ps[j * BC + kc];
        let dsj = dSs[j * BC + kc];
        for (var i = 0u; i < DPT; i++) {
          let d = dl + i * BR;
          if (d < D) {
            dvAcc[i] = fma(pj, dOs[j * D + d], dvAcc[i]);
            dkAcc[i] = fma(dsj, Qs[j * D + d], dkAcc[i]);
          }
        }
      }
    }
  }

  let t = k0 + kc;
  if (t < p.T) {
    for (var i = 0u; i < DPT; i++) {
      let d = dl + i * BR;
      if (d < D) {
        let at = rowAt(b, t, p.Hkv, hk) + d;
        dk[at] = p.scale * dkAcc[i];
        dv[at] = dvAcc[i];
      }
    }
  }
}
