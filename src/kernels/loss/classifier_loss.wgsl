// Fused classifier loss (llm.c's fused classifier, extended to distillation): per row n, KD between the teacher
// and softmax(z / τ), cross-entropy on softmax(z), and the gradient written IN PLACE over the student logits z,
// so no (N, V) probability tensor is ever stored. One workgroup of 256 threads per row, striding over V:
//   phase 0 (top-k teacher): keep z at the k ids in workgroup memory, mark those slots of z with SENTINEL, reduce
//            the teacher's log-sum-exps over its logprobs (at 1 for the mass m, at τ for the distribution);
//   phase 1: online (max, sum) of z/τ (rest and top-k apart), of z (CE) and of zt/τ (dense teacher), reduced;
//   phase 2: KD = Σ_b f(t_b, s_b) and S = Σ_b s_b g_b (g_b = ∂KD/∂s_b), reduced; thread 0 writes the losses;
//   phase 3: dz_j = lossScale·w·(kdWeight·(h_j − s_j·S)/τ + ceWeight·(softmax(z)_j − 1[j = y])), h_j = s_j·g_bin(j).
// The SENTINEL marks make "is token j in the top-k" a single load: non-top-k tokens are handled by the strided
// loops, the k ids by loops over the slots r (the kernel assumes the ids of a row are distinct: validateTopK).
// Everything is in log space (log s, log t finite) and every reduction is a fixed-order tree: deterministic.
// Vocabulary padding: only the first Vr ≤ V columns of a row are tokens; columns Vr..V (rows of the embedding
// padded to a multiple that suits the matmuls) are never read, take no part in any softmax or sum, and get dz = 0.
// Prepended by the launcher (loss.ts): `struct Params`, consts OBJECTIVE, TEACHER, POLICY, MIN_MISSING, and
// logsumexp.wgsl.

@group(0) @binding(0) var<storage, read_write> z: array<u32>;       // (N, V) student logits (f32 bits) → dz
@group(0) @binding(1) var<storage, read> labels: array<u32>;        // (N), NO_LABEL = none
@group(0) @binding(2) var<storage, read> weights: array<f32>;       // (N)
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;  // (N, 2) [w·KD, w·CE]
@group(0) @binding(4) var<storage, read> zt: array<f32>;            // (N, V) dense teacher logits
@group(0) @binding(5) var<storage, read> ids: array<u32>;           // (N, k) top-k token ids
@group(0) @binding(6) var<storage, read> lp: array<f32>;            // (N, k) top-k teacher logprobs
@group(0) @binding(7) var<uniform> p: Params;

const OBJ_NONE: u32 = 0u;
const OBJ_FKL: u32 = 1u;
const OBJ_RKL: u32 = 2u;
const OBJ_JSD: u32 = 3u;
const OBJ_TVD: u32 = 4u;
const OBJ_SKEW_FKL: u32 = 5u;
const OBJ_SKEW_RKL: u32 = 6u;
const TEACHER_NONE: u32 = 0u;
const TEACHER_DENSE: u32 = 1u;
const TEACHER_TOPK: u32 = 2u;
const POLICY_RENORMALIZE: u32 = 0u;
const POLICY_UNIFORM: u32 = 1u;
const POLICY_TAIL: u32 = 2u;

const WG: u32 = 256u;
const KMAX: u32 = 1024u;            // TOPK_MAX in loss.config.ts
const SENTINEL: u32 = 0xffffffffu;  // a NaN pattern: marks the top-k slots of z during the kernel
const NO_LABEL: u32 = 0xffffffffu;

var<workgroup> red: array<vec4f, 512>; // (WG, 2): four (max, sum) pairs or two sums per thread
var<workgroup> zk: array<f32, KMAX>;   // (k) student logits at the top-k ids
var<workgroup> w_sh: f32;

// (max, sum) pairs: ms_add, ms_merge, ms_lse and NEG_BIG from logsumexp.wgsl.
const MS_EMPTY = vec4f(NEG_BIG, 0.0, NEG_BIG, 0.0);

// Tree reduction of four (max, sum) pairs per thread (a.xy, a.zw, b.xy, b.zw) in a fixed order.
fn reduce_ms(tid: u32, a: vec4f, b: vec4f) -> array<vec4f, 2> {
  red[2u * tid] = a;
  red[2u * tid + 1u] = b;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) {
      for (var h = 0u; h < 2u; h++) {
        let x = red[2u * tid + h];
        let y = red[2u * (tid + s) + h];
        red[2u * tid + h] = vec4f(ms_merge(x.xy, y.xy), ms_merge(x.zw, y.zw));
      }
    }
    workgroupBarrier();
  }
  let r = array<vec4f, 2>(red[0], red[1]);
  workgroupBarrier();
  return r;
}

// Tree reduction of two sums per thread in a fixed order.
fn reduce_sum(tid: u32, v: vec2f) -> vec2f {
  red[tid] = vec4f(v, 0.0, 0.0);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0].xy;
  workgroupBarrier();
  return r;
}

// ---- the divergences, per bin, from ls = log s_b and lt = log t_b (tz: t_b = 0 exactly) ----
// log(a·e^lx + (1 − a)·e^ly) for 0 < a < 1; lx unused when xz (e^lx = 0).
fn log_mix(a: f32, lx: f32, ly: f32, xz: bool) -> f32 {
  let v = log(1.0 - a) + ly;
  if (xz) { return v; }
  let u = log(a) + lx;
  return max(u, v) + log(1.0 + exp(-abs(u - v)));
}

// log M of skew reverse KL, M = λ s + (1 − λ) t.
fn log_mix_rkl(ls: f32, lt: f32, tz: bool) -> f32 {
  if (tz) { return log(p.lambda) + ls; }
  return log_mix(p.lambda, ls, lt, false);
}

// f(t_b, s_b): the bin's term of KD.
fn kd_f(ls: f32, lt: f32, tz: bool) -> f32 {
  let s = exp(ls);
  let t = select(exp(lt), 0.0, tz);
  if (OBJECTIVE == OBJ_FKL) { return select(t * (lt - ls), 0.0, tz); }
  if (OBJECTIVE == OBJ_RKL) { return s * (ls - lt); }
  if (OBJECTIVE == OBJ_JSD) {
    let lm = log_mix(p.beta, lt, ls, tz);
    return (1.0 - p.beta) * s * (ls - lm) + select(p.beta * t * (lt - lm), 0.0, tz);
  }
  if (OBJECTIVE == OBJ_TVD) { return 0.5 * abs(t - s); }
  if (OBJECTIVE == OBJ_SKEW_FKL) {
    if (tz) { return 0.0; }
    return t * (lt - log_mix(p.lambda, lt, ls, false));
  }
  if (OBJECTIVE == OBJ_SKEW_RKL) { return s * (ls - log_mix_rkl(ls, lt, tz)); }
  return 0.0;
}

// h_j = s_j · g_b for a token j (log s_j = lsj) in bin b (log s_b = ls, log t_b = lt); lsj = ls for token bins.
fn kd_h(lsj: f32, ls: f32, lt: f32, tz: bool) -> f32 {
  if (OBJECTIVE == OBJ_FKL) { return select(-exp(lt + lsj - ls), 0.0, tz); }                     // g = −t/s
  if (OBJECTIVE == OBJ_SKEW_FKL) {                                                                // g = −(1−λ)t/M
    if (tz) { return 0.0; }
    return -(1.0 - p.lambda) * exp(lt + lsj - log_mix(p.lambda, lt, ls, false));
  }
  var g = 0.0;
  if (OBJECTIVE == OBJ_RKL) { g = ls - lt + 1.0; }
  if (OBJECTIVE == OBJ_JSD) { g = (1.0 - p.beta) * (ls - log_mix(p.beta, lt, ls, tz)); }
  if (OBJECTIVE == OBJ_TVD) { g = 0.5 * sign(exp(ls) - select(exp(lt), 0.0, tz)); }
  if (OBJECTIVE == OBJ_SKEW_RKL) {
    let lm = log_mix_rkl(ls, lt, tz);
    g = ls - lm + 1.0 - p.lambda * exp(ls - lm);
  }
  return exp(lsj) * g;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.x;
  let n = wid.x;
  if (n >= p.N) { return; }
  let V = p.V;
  let VR = p.Vr; // real tokens; columns VR..V are padding
  let K = p.k;
  let row = n * V;
  let invT = 1.0 / p.temperature;

  if (tid == 0u) { w_sh = weights[n]; }
  let w = workgroupUniformLoad(&w_sh);
  if (w == 0.0) { // masked row: nothing else is read
    for (var i = tid; i < V; i += WG) { z[row + i] = 0u; }
    if (tid == 0u) { losses[2u * n] = 0.0; losses[2u * n + 1u] = 0.0; }
    return;
  }
  var y = NO_LABEL;
  if (p.hasLabels != 0u) { y = labels[n]; }
  if (y >= VR) { y = NO_LABEL; }
  var zy = 0.0; // z at the label, for thread 0's CE (read before the top-k slots are marked)
  if (tid == 0u && y != NO_LABEL) { zy = bitcast<f32>(z[row + y]); }

  // Phase 0: top-k teacher.
  var lse_lp = 0.0;  // log m
  var lse_lpT = 0.0; // log Σ exp(lp / τ)
  if (TEACHER == TEACHER_TOPK) {
    var a = MS_EMPTY;
    for (var r = tid; r < K; r += WG) {
      let id = ids[n * K + r];
      var v = 0.0;
      if (id < VR) { v = bitcast<f32>(z[row + id]); }
      zk[r] = v;
      let l = lp[n * K + r];
      a = vec4f(ms_add(a.xy, l), ms_add(a.zw, l * invT));
    }
    let t = reduce_ms(tid, a, MS_EMPTY);
    lse_lp = ms_lse(t[0].xy);
    lse_lpT = ms_lse(t[0].zw);
    storageBarrier(); // every read of z above happens before any mark
    for (var r = tid; r < K; r += WG) {
      let id = ids[n * K + r];
      if (id < VR) { z[row + id] = SENTINEL; }
    }
    storageBarrier();
  }

  // Phase 1: log-sum-exps of the student (at τ: rest and top-k apart; at 1 for CE) and of a dense teacher.
  var s_rest = vec2f(NEG_BIG, 0.0);
  var s_topk = vec2f(NEG_BIG, 0.0);
  var ce = vec2f(NEG_BIG, 0.0);
  var tt = vec2f(NEG_BIG, 0.0);
  for (var i = tid; i < VR; i += WG) {
    let bits = z[row + i];
    if (TEACHER == TEACHER_TOPK && bits == SENTINEL) { continue; }
    let x = bitcast<f32>(bits);
    s_rest = ms_add(s_rest, x * invT);
    ce = ms_add(ce, x);
    if (TEACHER == TEACHER_DENSE) { tt = ms_add(tt, zt[row + i] * invT); }
  }
  if (TEACHER == TEACHER_TOPK) {
    for (var r = tid; r < K; r += WG) {
      s_topk = ms_add(s_topk, zk[r] * invT);
      ce = ms_add(ce, zk[r]);
    }
  }
  let st = reduce_ms(tid, vec4f(s_rest, s_topk), vec4f(ce, tt));
  let has_rest = st[0].y > 0.0;
  let lse_s = ms_lse(ms_merge(st[0].xy, st[0].zw));
  let lse_z = ms_lse(st[1].xy);
  let lse_t = select(0.0, ms_lse(st[1].zw), TEACHER == TEACHER_DENSE);

  // Teacher outside the top-k: log t of each 'uniform' token / of the 'tail-bucket' bin; log s of that bin.
  let missing = max(1.0 - exp(lse_lp), MIN_MISSING);
  let lt_uni = log(missing / f32(max(VR - min(K, VR), 1u)));
  let lt_rest = log(missing);
  let ls_rest = select(0.0, ms_lse(st[0].xy) - lse_s, has_rest);
  let lm_topk = select(lse_lp, 0.0, POLICY == POLICY_RENORMALIZE); // log of the top-k's total teacher mass

  // Phase 2: KD and S = Σ_b s_b g_b.
  var kd = 0.0;
  var S = 0.0;
  if (TEACHER != TEACHER_NONE && OBJECTIVE != OBJ_NONE) {
    for (var i = tid; i < VR && !(TEACHER == TEACHER_TOPK && POLICY == POLICY_TAIL); i += WG) {
      let bits = z[row + i];
      if (TEACHER == TEACHER_TOPK && bits == SENTINEL) { continue; }
      let ls = bitcast<f32>(bits) * invT - lse_s;
      var lt = lt_uni;
      if (TEACHER == TEACHER_DENSE) { lt = zt[row + i] * invT - lse_t; }
      let tz = TEACHER == TEACHER_TOPK && POLICY == POLICY_RENORMALIZE;
      kd += kd_f(ls, lt, tz);
      S += kd_h(ls, ls, lt, tz);
    }
    if (TEACHER == TEACHER_TOPK) {
      for (var r = tid; r < K; r += WG) {
        let ls = zk[r] * invT - lse_s;
        let lt = lm_topk + lp[n * K + r] * invT - lse_lpT;
        kd += kd_f(ls, lt, false);
        S += kd_h(ls, ls, lt, false);
      }
      if (POLICY == POLICY_TAIL && tid == 0u && has_rest) {
        kd += kd_f(ls_rest, lt_rest, false);
        S += kd_h(ls_rest, ls_rest, lt_rest, false);
      }
    }
  }
  let sums = reduce_sum(tid, vec2f(kd, S));
  S = sums.y;
  if (tid == 0u) {
    losses[2u * n] = w * sums.x;
    losses[2u * n + 1u] = select(w * (lse_z - zy), 0.0, y == NO_LABEL);
  }

  // Phase 3: dz, first the non-top-k tokens, then (after a barrier, as the marks are read) the top-k ids; 0 on
  // the padding columns.
  let ckd = p.lossScale * w * p.kdWeight * invT;
  let cce = select(p.lossScale * w * p.ceWeight, 0.0, y == NO_LABEL);
  for (var i = VR + tid; i < V; i += WG) { z[row + i] = 0u; }
  for (var i = tid; i < VR; i += WG) {
    let bits = z[row + i];
    if (TEACHER == TEACHER_TOPK && bits == SENTINEL) { continue; }
    let x = bitcast<f32>(bits);
    var d = cce * (exp(x - lse_z) - select(0.0, 1.0, i == y));
    if (TEACHER != TEACHER_NONE && OBJECTIVE != OBJ_NONE) {
      let ls = x * invT - lse_s;
      var h: f32;
      if (TEACHER == TEACHER_DENSE) {
        h = kd_h(ls, ls, zt[row + i] * invT - lse_t, false);
      } else if (POLICY == POLICY_TAIL) {
        h = kd_h(ls, ls_rest, lt_rest, false);
      } else {
        h = kd_h(ls, ls, lt_uni, POLICY == POLICY_RENORMALIZE);
      }
      d += ckd * (h - exp(ls) * S);
    }
    z[row + i] = bitcast<u32>(d);
  }
  if (TEACHER == TEACHER_TOPK) {
    storageBarrier();
    for (var r = tid; r < K; r += WG) {
      let id = ids[n * K + r];
      if (id >= VR) { continue; }
      let x = zk[r];
      var d = cce * (exp(x - lse_z) - select(0.0, 1.0, id == y));
      if (OBJECTIVE != OBJ_NONE) {
        let ls = x * invT - lse_s;
        let lt = lm_topk + lp[n * K + r] * invT - lse_lpT;
        d += ckd * (kd_h(ls, ls, lt, false) - exp(ls) * S);
      }
      z[row + id] = bitcast<u32>(d);
    }
  }
}
