// ULD loss (Universal Logit Distillation, cross-tokenizer KD; reference: uld.ref.ts): per row n, the L1 distance
// between the student's sorted softmax(z / τ) and the teacher's sorted probabilities q (K of them, zero-padded),
// and its gradient ASSIGNED to g (z is read-only). One workgroup of 256 threads per row, striding over Vr:
//   phase 1: log-sum-exp of z/τ by (max, sum) pairs, tree-reduced;
//   phase 2: the student's top-K in K rounds: each thread takes, over its strided columns, the largest (z, −index)
//            strictly below the previous round's pick in the order (z desc, index asc); a fixed-order tree picks
//            the round's winner, kept in workgroup memory (sel_z, sel_i). The top-K is then exactly the set of
//            columns at or above the last pick (zK, iK) in that order: a test on one column, no lookup;
//   phase 3: per pick r: p_r, s_r = sign(p_r − q_r), L1 = Σ_r |p_r − q_r| and D = Σ_r p_r·(1 − s_r) = 1 − G
//            (G = Σ_m p_m g_m, g = s on the picks and 1 elsewhere: D needs no 1 − Σ cancellation), reduced;
//   phase 4: every other real column j: g_j = c·p_j·D and tail += p_j (reduced: the loss's Σ_{i≥K} p_(i), summed
//            directly); each pick: g = c·p_r·(s_r − 1 + D); padding: 0. The two write sets are disjoint, so no
//            barrier orders them. c = scale·w/τ. Thread 0 writes losses[n] = w·(L1 + tail).
// Masked rows (w = 0) read nothing and get g = 0, loss 0. Every reduction is a fixed-order tree: deterministic.
// Vocabulary padding: columns Vr..V are never read (NaN there is harmless) and get g = 0.
// Prepended by the launcher (uld.ts): `struct Params`.

@group(0) @binding(0) var<storage, read> z: array<f32>;             // (N, V) student logits
@group(0) @binding(1) var<storage, read> q: array<f32>;             // (N, K) teacher, sorted descending
@group(0) @binding(2) var<storage, read> weights: array<f32>;       // (N)
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;  // (N) w·ULD
@group(0) @binding(4) var<storage, read_write> g: array<f32>;       // (N, V) scale·w·∂ULD/∂z
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 256u;
const KMAX: u32 = 256u;          // ULD_KMAX in uld.ref.ts
const NONE: u32 = 0xffffffffu;   // no candidate

var<workgroup> red: array<vec2f, WG>;
var<workgroup> red_z: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> sel_z: array<f32, KMAX>; // (K) the picks' logits, in pick order
var<workgroup> sel_i: array<u32, KMAX>; // (K) the picks' columns
var<workgroup> w_sh: f32;

// (max, sum) pairs: ms_add, ms_merge, ms_lse and NEG_BIG from logsumexp.wgsl (prepended by uld.ts).

fn reduce_ms(tid: u32, a: vec2f) -> vec2f {
  red[tid] = a;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = ms_merge(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(tid: u32, v: vec2f) -> vec2f {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// (az, ai) before (bz, bi) in the order (z desc, index asc); NONE is after everything.
fn before(az: f32, ai: u32, bz: f32, bi: u32) -> bool {
  if (ai == NONE) { return false; }
  if (bi == NONE) { return true; }
  return az > bz || (az == bz && ai < bi);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.x;
  let n = wid.x;
  if (n >= p.N) { return; }
  let V = p.V;
  let VR = p.Vr;
  let K = p.K;
  let row = n * V;
  let invT = 1.0 / p.tau;

  if (tid == 0u) { w_sh = weights[n]; }
  let w = workgroupUniformLoad(&w_sh);
  if (w == 0.0) { // no ULD term: nothing else is read
    for (var i = tid; i < V; i += WG) { g[row + i] = 0.0; }
    if (tid == 0u) { losses[n] = 0.0; }
    return;
  }

  // Phase 1: log-sum-exp of z/τ over the real columns.
  var ms = vec2f(NEG_BIG, 0.0);
  for (var i = tid; i < VR; i += WG) { ms = ms_add(ms, z[row + i] * invT); }
  let t = reduce_ms(tid, ms);
  let lse = ms_lse(t);

  // Phase 2: the top-K in K rounds, each strictly below the previous pick (pz, pi).
  var pz = 0.0;
  var pi = NONE;
  for (var r = 0u; r < K; r++) {
    var bz = 0.0;
    var bi = NONE;
    for (var i = tid; i < VR; i += WG) { // increasing i: a tie keeps the lower column
      let x = z[row + i];
      let below = pi == NONE || x < pz || (x == pz && i > pi);
      if (below && (bi == NONE || x > bz)) { bz = x; bi = i; }
    }
    red_z[tid] = bz;
    red_i[tid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (tid < s && before(red_z[tid + s], red_i[tid + s], red_z[tid], red_i[tid])) {
        red_z[tid] = red_z[tid + s];
        red_i[tid] = red_i[tid + s];
      }
      workgroupBarrier();
    }
    pz = red_z[0];
    pi = red_i[0];
    if (tid == 0u) { sel_z[r] = pz; sel_i[r] = pi; }
    workgroupBarrier();
  }
  // (pz, pi) is now the K-th pick: column j is in the top-K iff (z_j, j) is at or above it.

  // Phase 3: L1 over the picks and D = Σ_r p_r (1 − s_r).
  var acc = vec2f(0.0);
  for (var r = tid; r < K; r += WG) {
    let pr = exp(sel_z[r] * invT - lse);
    let d = pr - q[n * K + r];
    acc += vec2f(abs(d), pr * (1.0 - sign(d)));
  }
  let sums = reduce_sum(tid, acc);
  let D = sums.y;

  // Phase 4: the gradient (every other real column, then the picks, then the padding) and the tail mass.
  let c = p.scale * w * invT;
  var tail = 0.0;
  for (var i = tid; i < VR; i += WG) {
    let x = z[row + i];
    if (x > pz || (x == pz && i <= pi)) { continue; } // a pick: written below
    let pj = exp(x * invT - lse);
    tail += pj;
    g[row + i] = c * pj * D;
  }
  for (var r = tid; r < K; r += WG) {
    let pr = exp(sel_z[r] * invT - lse);
    g[row + sel_i[r]] = c * pr * (sign(pr - q[n * K + r]) - 1.0 + D);
  }
  for (var i = VR + tid; i < V; i += WG) { g[row + i] = 0.0; }
  let tails = reduce_sum(tid, vec2f(tail, 0.0));
  if (tid == 0u) { losses[n] = w * (sums.x + tails.x); }
}
