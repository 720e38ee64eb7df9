// Hidden-state similarity loss, one workgroup per row n (forward and gradient in one pass, like the classifier
// loss): p (N, C) projected student hidden, h (N, C) teacher hidden, w (N) row weights, C = the compared width.
//   KIND == 0 (mse):    loss_n = (1/C)·Σ_c (p − h)²                ∂loss_n/∂p_c = 2(p_c − h_c)/C
//   KIND == 1 (cosine): loss_n = 1 − p·h / ((|p| + ε)(|h| + ε))    ε = EPS (1e-8): a zero row gives cos = 0
//       ∂loss_n/∂p_c = −h_c/(np·nh) + (p·h)·p_c / (np²·nh·|p|), np = |p| + ε, nh = |h| + ε; the second term is
//       taken as 0 when |p| = 0 (then p·h = 0 too: the one-sided limit along any direction is bounded).
// Writes losses[n] = w·loss_n and dp[n, c] = lossScale·w·∂loss_n/∂p_c. Rows with w = 0 write exactly 0 (their p/h
// are never read: masked rows may hold garbage). Reductions in a fixed order: thread t sums c = t, t+WG, … in
// order (fma), then a tree over the WG threads. Row index = wid.y·ROWS_X + wid.x (N may exceed 65535).
// `Params { N, C, lossScale, rowsX }` is prepended by the launcher (hidden.ts), with `const KIND` and `const EPS`.

@group(0) @binding(0) var<storage, read> P: array<f32>;        // (N, C) projected student hidden
@group(0) @binding(1) var<storage, read> Hh: array<f32>;       // (N, C) teacher hidden
@group(0) @binding(2) var<storage, read> W: array<f32>;        // (N) row weights
@group(0) @binding(3) var<storage, read_write> losses: array<f32>; // (N) w·loss_n
@group(0) @binding(4) var<storage, read_write> dP: array<f32>; // (N, C) lossScale·w·∂loss_n/∂p
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> s0: array<f32, 256>; // mse: Σ(p−h)²; cosine: Σp·h
var<workgroup> s1: array<f32, 256>; // cosine: Σp²
var<workgroup> s2: array<f32, 256>; // cosine: Σh²

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let n = wid.y * p.rowsX + wid.x;
  // n depends on the workgroup id only: uniform, so the barriers below stay in uniform control flow.
  if (n >= p.N) { return; }
  let w = W[n];
  let base = n * p.C;
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0;
  for (var c = t; c < p.C; c += WG) {
    let x = P[base + c];
    let y = Hh[base + c];
    if (KIND == 0u) {
      let d = x - y;
      a0 = fma(d, d, a0);
    } else {
      a0 = fma(x, y, a0);
      a1 = fma(x, x, a1);
      a2 = fma(y, y, a2);
    }
  }
  s0[t] = a0; s1[t] = a1; s2[t] = a2;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      s0[t] += s0[t + s];
      s1[t] += s1[t + s];
      s2[t] += s2[t + s];
    }
    workgroupBarrier();
  }
  // Past the last barrier: a masked row (w = 0, maybe NaN sums from garbage) writes exact zeros.
  if (w == 0.0) {
    for (var c = t; c < p.C; c += WG) { dP[base + c] = 0.0; }
    if (t == 0u) { losses[n] = 0.0; }
    return;
  }
  let Cf = f32(p.C);
  let g = p.lossScale * w;
  if (KIND == 0u) {
    let k = g * 2.0 / Cf;
    for (var c = t; c < p.C; c += WG) { dP[base + c] = k * (P[base + c] - Hh[base + c]); }
    if (t == 0u) { losses[n] = w * s0[0] / Cf; }
  } else {
    let ph = s0[0];
    let rp = sqrt(s1[0]);
    let np = rp + EPS;
    let nh = sqrt(s2[0]) + EPS;
    let k1 = g / (np * nh);
    var k2 = 0.0;
    if (rp > 0.0) { k2 = g * ph / (np * np * nh * rp); }
    for (var c = t; c < p.C; c += WG) { dP[base + c] = k2 * P[base + c] - k1 * Hh[base + c]; }
    if (t == 0u) { losses[n] = w * (1.0 - ph / (np * nh)); }
  }
}
