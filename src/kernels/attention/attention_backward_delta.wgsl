// Causal attention backward, step 1 of 3 (FlashAttention-2 preprocessing): delta = Σ_d dout·o per row,
// which equals Σ_j P·dP of that row. One thread per (b, t, h) row, in order of the (B, T, H) rows of o.
// The launcher (attention.ts) prepends `Params` and the constant D. Row = workgroup_id.x·64 + local index
// + workgroup_id.y·(64·num_workgroups.x), so more than 65535 workgroups' worth of rows fit.
// Inputs are `read`; the launch helper (src/gpu/launch.ts) compiles a read_write copy when a buffer is bound both
// as an input and as an output (tensors that are ranges of one slab).

@group(0) @binding(0) var<storage, read> o: array<f32>;           // read: (B, T, H, D)
@group(0) @binding(1) var<storage, read> dout: array<f32>;        // read: (B, T, H, D)
@group(0) @binding(2) var<storage, read_write> delta: array<f32>; // written: (B, H, T)
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = (wid.y * nwg.x + wid.x) * WG + lid; // (b, t, h) flattened
  if (row >= p.B * p.T * p.H) { return; }
  let h = row % p.H;
  let t = (row / p.H) % p.T;
  let b = row / (p.H * p.T);
  var sum = 0.0;
  for (var d = 0u; d < D; d++) { sum = fma(dout[row * D + d], o[row * D + d], sum); }
  delta[(b * p.H + h) * p.T + t] = sum;
}
