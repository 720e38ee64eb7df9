// KV-cache decode attention for generation: two entry points sharing one Params struct.
//   kv_append: copies the new tokens' k and v (B, S, Hkv, D) into the layer's caches (B, Tmax, Hkv, D) at
//              positions pos .. pos + S − 1. One thread per element of k; past the per-dimension workgroup
//              limit, elements spill into workgroup_id.y (rows of num_workgroups.x workgroups).
//   main:      o[b, s, h] = softmax_j(scale · q[b, s, h]·kcache[b, j, hk]) · vcache[b, j, hk] over cache positions
//              j = 0 .. pos + s (causal within the new tokens), hk = h / (H / Hkv). One workgroup of WG threads per
//              (s, h, b) query row: workgroup (x, y, z) = (s, h, b). The keys are walked in blocks of WG; thread
//              tid scores key k0 + tid, a tree reduction in workgroup memory gives the block max, and the running
//              max m and sum rescale as in online softmax. For P·V the threads are split as (group g, dim d),
//              G = WG / D groups: group g sums keys g, g + G, ... of each block for dim d; the G partial sums of
//              every dim (and of l) are added in order g = 0, 1, ... at the end. Every reduction has a fixed
//              order: no atomics, bit-identical across runs.
// The launcher (decode.ts) prepends `Params` and the constants D, WG, G; the launch helper (src/gpu/launch.ts)
// compiles a read_write-everywhere copy when x2 shares a buffer with another tensor. The caches must hold
// positions < pos already.

@group(0) @binding(0) var<storage, read_write> kcache: array<f32>; // (B, Tmax, Hkv, D): written by kv_append, read by main
@group(0) @binding(1) var<storage, read_write> vcache: array<f32>; // (B, Tmax, Hkv, D): written by kv_append, read by main
// Bindings 2 and 3 play a different tensor in each entry point (one declaration per binding keeps the module
// valid for every WGSL compiler): kv_append reads k from x2 and v from x3; main reads q from x2, writes o to x3.
@group(0) @binding(2) var<storage, read> x2: array<f32>;            // kv_append: k (B, S, Hkv, D); main: q (B, S, H, D)
@group(0) @binding(3) var<storage, read_write> x3: array<f32>;      // kv_append: v (B, S, Hkv, D), read; main: o (B, S, H, D), written
@group(0) @binding(4) var<uniform> p: Params;

const APPEND_WG: u32 = 256u;

@compute @workgroup_size(APPEND_WG)
fn kv_append(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = (wid.y * nwg.x + wid.x) * APPEND_WG + lid; // element of (B, S, Hkv, D)
  if (idx >= p.B * p.S * p.Hkv * D) { return; }
  let d = idx % D;
  let hk = (idx / D) % p.Hkv;
  let s = (idx / (D * p.Hkv)) % p.S;
  let b = idx / (D * p.Hkv * p.S);
  let t = p.pos + s;
  if (t >= p.Tmax) { return; } // the launcher rejects pos + S > Tmax; never write outside the cache
  let at = ((b * p.Tmax + t) * p.Hkv + hk) * D + d;
  kcache[at] = x2[idx]; // k
  vcache[at] = x3[idx]; // v
}

const NEG: f32 = -3.0e38; // "minus infinity" for maxima; masked scores never reach exp
var<workgroup> Qs: array<f32, D>;    // the query row
var<workgroup> Red: array<f32, WG>;  // block-max tree, then the per-group partial sums [g][d]
var<workgroup> Ps: array<f32, WG>;   // exp(S − m) of the block's keys
var<workgroup> Ls: array<f32, G>;    // per-group partial Σ exp

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3u) {
  let s = wid.x;
  let h = wid.y;
  let b = wid.z;
  let hk = h / (p.H / p.Hkv);
  let n = p.pos + s + 1u;           // keys 0 .. pos + s
  let row = ((b * p.S + s) * p.H + h) * D;
  let kvRow = p.Hkv * D;            // floats between consecutive positions of one cache
  let kvBase = b * p.Tmax * kvRow + hk * D;
  let g = tid / D;                  // P·V: key group
  let d = tid % D;                  // P·V: dim

  if (tid < D) { Qs[tid] = x2[row + tid]; } // q

  var m = NEG;  // running max (identical in every thread)
  var acc = 0.0; // Σ exp(S − m)·v[d] over this group's keys
  var l = 0.0;   // Σ exp(S − m) over this group's keys
  for (var k0 = 0u; k0 < n; k0 += WG) {
    workgroupBarrier(); // Qs written (first block); Red and Ps of the previous block no longer read
    let j = k0 + tid;
    let valid = j < n;
    var sc = NEG;
    if (valid) {
      let at = kvBase + j * kvRow;
      var dot = 0.0;
      for (var e = 0u; e < D; e++) { dot = fma(Qs[e], kcache[at + e], dot); }
      sc = dot * p.scale;
    }
    Red[tid] = sc;
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
      workgroupBarrier();
      if (tid < stride) { Red[tid] = max(Red[tid], Red[tid + stride]); }
    }
    workgroupBarrier();
    let mNew = max(m, Red[0]);
    Ps[tid] = select(0.0, exp(sc - mNew), valid);
    workgroupBarrier();

    let alpha = exp(m - mNew); // rescales what was summed against the old max (0 on the first block)
    acc *= alpha;
    l *= alpha;
    let kEnd = min(WG, n - k0);
    for (var jj = g; jj < kEnd; jj += G) {
      let pj = Ps[jj];
      l += pj;
      acc = fma(pj, vcache[kvBase + (k0 + jj) * kvRow + d], acc);
    }
    m = mNew;
  }

  workgroupBarrier(); // Red's last max read is done
  Red[tid] = acc;     // [g][d]
  if (d == 0u) { Ls[g] = l; }
  workgroupBarrier();
  if (tid < D) {
    var num = 0.0;
    var den = 0.0;
    for (var gg = 0u; gg < G; gg++) {
      num += Red[gg * D + tid];
      den += Ls[gg];
    }
    x3[row + tid] = num / den; // o
  }
}
