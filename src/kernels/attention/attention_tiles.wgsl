// Shared by the tiled attention kernels (attention_forward.wgsl, attention_backward_dq.wgsl and _dkdv.wgsl), put
// in front of each by attention.ts after `Params` and the constants D, BR, BC: a workgroup of BR×BC threads,
// blocks of query rows (BR) and of key rows (BC) staged in workgroup memory, and the row offsets of the tensors.
// Each kernel declares (or attention_backward_tiles.wgsl does) the bindings q, k, v (0, 1, 2) and the rest.

const THREADS: u32 = BR * BC;
var<workgroup> Qs: array<f32, BR * D>; // [r][d]
var<workgroup> Ks: array<f32, BC * D>; // [c][d]
var<workgroup> Vs: array<f32, BC * D>; // [c][d]

// Offset of (b, t, h, 0) in a (B, T, heads, D) tensor: q, o, dout (heads = H) or k, v (heads = Hkv).
fn rowAt(b: u32, t: u32, heads: u32, h: u32) -> u32 {
  return ((b * p.T + t) * heads + h) * D;
}

// Ks, Vs ← keys and values of rows t0 .. t0 + BC − 1 of kv head hk, batch b (zero past T); tid of THREADS.
fn loadKeyBlock(b: u32, hk: u32, t0: u32, tid: u32) {
  for (var idx = tid; idx < BC * D; idx += THREADS) {
    let t = t0 + idx / D;
    var kx = 0.0;
    var vx = 0.0;
    if (t < p.T) {
      let at = rowAt(b, t, p.Hkv, hk) + idx % D;
      kx = k[at];
      vx = v[at];
    }
    Ks[idx] = kx;
    Vs[idx] = vx;
  }
}
