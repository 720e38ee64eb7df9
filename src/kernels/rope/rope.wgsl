// Rotary position embedding, in place, exactly as Hugging Face Llama (`rotate_half`): for head dim D, pairs
// (j, j + D/2) with j < D/2 rotate by angle = pos · inv_freq_j, inv_freq_j = θ^(−2j/D), pos = t + posOffset:
//   x'_j = x_j·cos − x_{j+D/2}·sin,   x'_{j+D/2} = x_{j+D/2}·cos + x_j·sin.
// p.sign = +1 is the forward; −1 rotates by −angle, the inverse (= transpose), which is the backward dx from dy.
// One thread per (n, h, j), n = b·T + t; row n of the tensor starts at n·rowStride (H·D when packed).
//
// Angles: instead of the f32 product pos·inv_freq (error ≈ ulp(pos·inv_freq), ~1e-4 rad at pos 4000) the angle is
// taken modulo one turn in 64-bit fixed point: turns_j = inv_freq_j/2π is given as a 64-bit fraction (hi, lo)
// computed in f64 on the CPU (rope.ts), pos·turns mod 1 is formed exactly in u32 arithmetic, and its top 32 bits
// give the quadrant (top 2 bits, rounded) and a remainder in [−π/4, π/4) for short Taylor series of sin and cos:
// no reliance on the precision of WGSL's sin/cos (only 2^-11 absolute is guaranteed; SwiftShader's is ~2e-4).
// Angle error ≈ 5e-8 rad and sin/cos error ≈ 1e-7 for any pos < 2^32.
// `Params` is prepended by the launcher.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;  // (B, T, H, D) with row stride rowStride, rotated in place
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<uniform> turns: array<vec4u, 64>;    // turns_j as (hi, lo) u32 pairs: j/2 → .xy or .zw

const WG: u32 = 256u;
const TWO_PI_OVER_2_32: f32 = 1.4629180792671596e-9; // 2π / 2^32

// High 32 bits of the 64-bit product a·b.
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

// (cos, sin) of 2π·frac/2^32: quadrant q = round(frac / 2^30), remainder r ∈ [−π/4, π/4).
fn cosSinOfTurns(frac: u32) -> vec2f {
  let q = ((frac + 0x20000000u) >> 30u) & 3u;
  let r = f32(bitcast<i32>(frac - (q << 30u))) * TWO_PI_OVER_2_32;
  let r2 = r * r;
  // Taylor series to r^9 / r^10: truncation below 2e-9 / 1e-10 for |r| ≤ π/4
  let sr = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let cr = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  switch q {
    case 0u: { return vec2f(cr, sr); }
    case 1u: { return vec2f(-sr, cr); }
    case 2u: { return vec2f(-cr, -sr); }
    default: { return vec2f(sr, -cr); }
  }
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let half = p.D / 2u;
  if (idx >= p.N * p.H * half) { return; }
  let j = idx % half;
  let h = (idx / half) % p.H;
  let n = idx / (half * p.H);
  let pos = n % p.T + p.posOffset;
  let f = turns[j / 2u];
  let hl = select(f.xy, f.zw, (j & 1u) == 1u);
  // top 32 bits of pos·(hi·2^32 + lo) mod 2^64: a fraction of a turn
  let frac = pos * hl.x + mulhi(pos, hl.y);
  let cs = cosSinOfTurns(frac);
  let c = cs.x;
  let s = cs.y * p.sign;
  let i0 = n * p.rowStride + h * p.D + j;
  let a = x[i0];
  let b = x[i0 + half];
  x[i0] = a * c - b * s;
  x[i0 + half] = b * c + a * s;
}
