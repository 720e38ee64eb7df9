// Shared by the backward's tiled kernels (attention_backward_dq.wgsl, attention_backward_dkdv.wgsl), after
// attention_tiles.wgsl: their inputs (the kernels declare their outputs from binding 6), the query block with its
// output gradient, and the two dot products of a (query, key) pair from which both recompute P and dS.

@group(0) @binding(0) var<storage, read> q: array<f32>;           // read: (B, T, H, D)
@group(0) @binding(1) var<storage, read> k: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(2) var<storage, read> v: array<f32>;           // read: (B, T, Hkv, D)
@group(0) @binding(3) var<storage, read> dout: array<f32>;        // read: (B, T, H, D)
@group(0) @binding(4) var<storage, read> lse: array<f32>;         // read: (B, H, T)
@group(0) @binding(5) var<storage, read> delta: array<f32>;       // read: (B, H, T)

var<workgroup> dOs: array<f32, BR * D>; // [r][d]

// Qs, dOs ← q and dout of query rows q0 .. q0 + BR − 1 of head h, batch b (zero past T); tid of THREADS.
fn loadQueryBlock(b: u32, h: u32, q0: u32, tid: u32) {
  for (var idx = tid; idx < BR * D; idx += THREADS) {
    let t = q0 + idx / D;
    if (t < p.T) {
      let at = rowAt(b, t, p.H, h) + idx % D;
      Qs[idx] = q[at];
      dOs[idx] = dout[at];
    } else {
      Qs[idx] = 0.0;
      dOs[idx] = 0.0;
    }
  }
}

// (q·k, dout·v) of query row r and key row c of the blocks, each summed over d in order with fma: the unscaled
// score S/scale and dP.
fn scoreDots(r: u32, c: u32) -> vec2f {
  var s = 0.0;
  var dp = 0.0;
  for (var d = 0u; d < D; d++) {
    s = fma(Qs[r * D + d], Ks[c * D + d], s);
    dp = fma(dOs[r * D + d], Vs[c * D + d], dp);
  }
  return vec2f(s, dp);
}
