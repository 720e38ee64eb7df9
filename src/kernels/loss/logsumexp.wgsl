// Online log-sum-exp as (max, sum) pairs, shared by the loss kernels (classifier_loss.wgsl, uld_loss.wgsl; their
// launchers prepend it): log-sum-exp = max + log(sum), never exp of a positive number.
const NEG_BIG: f32 = -3.0e38; // "−∞" of an empty (max, sum)

fn ms_add(ms: vec2f, x: f32) -> vec2f {
  if (x > ms.x) { return vec2f(x, ms.y * exp(ms.x - x) + 1.0); }
  return vec2f(ms.x, ms.y + exp(x - ms.x));
}
fn ms_merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
fn ms_lse(a: vec2f) -> f32 { return a.x + log(a.y); }
