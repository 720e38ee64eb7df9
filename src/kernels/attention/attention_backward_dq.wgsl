// Causal attention backward, step 2 of 3: dq = scale · dS · k, with P = exp(S − lse) recomputed block by block
// (FlashAttention-2), dP = dout·vᵀ and dS = P ⊙ (dP − delta). dq is assigned.
// A workgroup of BR×BC threads owns query rows q0 .. q0+BR-1 of one (b, h) and walks the key blocks up to the
// diagonal: thread (r, c) forms dS of query r and key c in workgroup memory, then accumulates dS·k into dims
// c, c+BC, ... of row r, summing keys in increasing order (deterministic, no atomics).
// The launcher (attention.ts) prepends `Params` and the constants D, BR, BC. Workgroup (x, y, z) = (query
// block, h, b).
// Inputs are `read`; the launch helper (src/gpu/launch.ts) compiles a read_write copy when a buffer is bound both
// as an input and as an output (tensors that are ranges of one slab).

@group(0) @binding(0) var<storage, read> q: array<f32>;           // read: (B, T, H, D)
@group(0) @binding(1) var<storage, read> k: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(2) var<storage, read> v: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(3) var<storage, read> dout: array<f32>;        // read: (B, T, H, D)
@group(0) @binding(4) var<storage, read> lse: array<f32>;         // read: (B, H, T)
@group(0) @binding(5) var<storage, read> delta: array<f32>;       // read: (B, H, T)
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;    // written: (B, T, H, D)
@group(0) @binding(7) var<uniform> p: Params;

const THREADS: u32 = BR * BC;
const DPT: u32 = (D + BC - 1u) / BC;  // dq dims per thread
var<workgroup> Qs: array<f32, BR * D>;  // [r][d]
var<workgroup> dOs: array<f32, BR * D>; // [r][d]
var<workgroup> Ks: array<f32, BC * D>;  // [c][d]
var<workgroup> Vs: array<f32, BC * D>;  // [c][d]
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

  for (var idx = tid; idx < BR * D; idx += THREADS) {
    let t = q0 + idx / D;
    var qx = 0.0;
    var gx = 0.0;
    if (t < p.T) {
      let at = ((b * p.T + t) * p.H + h) * D + idx % D;
      qx = q[at];
      gx = dout[at];
    }
    Qs[idx] = qx;
    dOs[idx] = gx;
  }
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
    for (var idx = tid; idx < BC * D; idx += THREADS) {
      let t = k0 + idx / D;
      var kx = 0.0;
      var vx = 0.0;
      if (t < p.T) {
        let at = ((b * p.T + t) * p.Hkv + hk) * D + idx % D;
        kx = k[at];
        vx = v[at];
      }
      Ks[idx] = kx;
      Vs[idx] = vx;
    }
    workgroupBarrier();

    var ds = 0.0;
    if (qi < p.T && k0 + c <= qi) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        s = fma(Qs[r * D + d], Ks[c * D + d], s);
        dp = fma(dOs[r * D + d], Vs[c * D + d], dp);
      }
      ds = exp(s * p.scale - L) * (dp - delt);
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
      if (d < D) { dq[((b * p.T + qi) * p.H + h) * D + d] = p.scale * acc[i]; }
    }
  }
}
