// Shared code of the element-wise kernels, prepended by activation.ts after `Params { N }`.
// One thread per element on a 1-D (or, past the per-dimension limit, 2-D) grid of 256-thread workgroups: main()
// calls the kernel's `fn op(i: u32)` for each element index i < N; the kernel's file declares its bindings and op().
// Stable for every finite x: exp only ever sees −|·| (no overflow, no inf/inf), and GELU's cubic is clamped.

const WG: u32 = 256u;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.N) { return; }
  op(i);
}

// (σ(x), σ(−x)) = (σ(x), 1 − σ(x)), both without cancellation or overflow.
fn sigmoidPair(x: f32) -> vec2f {
  let e = exp(-abs(x));
  let a = 1.0 / (1.0 + e);
  let b = e / (1.0 + e);
  return select(vec2f(b, a), vec2f(a, b), x >= 0.0);
}

// GPT-2's tanh GELU, 0.5·x·(1 + tanh(u)) = x·σ(2u) with u = √(2/π)·(x + 0.044715·x³); returns (2u, d(2u)/dx).
// |x| is clamped to 50 inside u: beyond it σ(±2u) is 0 or 1 in f32 anyway, and x³ cannot overflow.
fn geluArg(x: f32) -> vec2f {
  let xc = clamp(x, -50.0, 50.0);
  let x2 = xc * xc;
  return vec2f(2.0 * SQRT_2_OVER_PI * (xc + GELU_C * x2 * xc), 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x2));
}

// The activations, each a forward y = f(x) and a backward dx = dy·f'(x) (activation_forward/backward.wgsl call
// the one their launcher names; swiglu_*.wgsl call SiLU's).

// SiLU: y = x·σ(x).
fn silu_forward(x: f32) -> f32 {
  return x * sigmoidPair(x).x;
}

// SiLU: dx = dy·σ(x)·(1 + x·(1 − σ(x))).
fn silu_backward(x: f32, dy: f32) -> f32 {
  let s = sigmoidPair(x);
  return dy * s.x * (1.0 + x * s.y);
}

// GELU (tanh approximation, GPT-2): y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = x·σ(2u).
fn gelu_forward(x: f32) -> f32 {
  return x * sigmoidPair(geluArg(x).x).x;
}

// GELU: with z = 2u, dx = dy·(σ(z) + x·σ(z)·σ(−z)·dz/dx).
fn gelu_backward(x: f32, dy: f32) -> f32 {
  let z = geluArg(x);
  let s = sigmoidPair(z.x);
  return dy * (s.x + x * s.x * s.y * z.y);
}
