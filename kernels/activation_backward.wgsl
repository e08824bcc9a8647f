// activation_backward: dx = dout * act'(x), or dx += ... when ACCUMULATE; elementwise over N.
//
// ACT as in activation.wgsl: 0 = ReLU (derivative 1 where x > 0, else 0, as PyTorch);
//   1 = GELU tanh form: d/dx [x sigmoid(z)] = s + x s (1 - s) z', z = 2 sqrt(2/pi) (x + 0.044715
//   x^3), z' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2), with s and 1 - s from exp(-|z|) <= 1 and x
//   clamped to +-100 in the second term (which is 0 in f32 beyond), so no overflow or NaN.
// With DROPOUT, dout first goes through the backward of the dropout fused into the forward
//   (the same mask: element i under `stream`).
// Shapes: dout (N), x (N) (the forward input), state (2) u32 (unused without DROPOUT), dx (N).
//   Without ACCUMULATE, dx may alias dout.
// Thread mapping: one thread per element; a workgroup of 256 threads covers 256 consecutive
//   elements. Grid: ceil(N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past N return.

override ACT: u32 = 0u;
override ACCUMULATE: bool = false;
override DROPOUT: bool = false;

struct Params {
  n: u32, stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

//! include "gelu_tanh.wgsl"
//! include "dropout_hash.wgsl"

// dout after the backward of the fused dropout.
fn grad_at(i: u32) -> f32 {
  if (!DROPOUT) { return dout[i]; }
  let keep = dropout_keep(state[0], state[1], params.stream, i, params.threshold,
    params.keep_none);
  return select(0.0, dout[i] * params.drop_scale, keep);
}

fn act_grad(v: f32) -> f32 {
  if (ACT == 0u) { return select(0.0, 1.0, v > 0.0); }
  let c = clamp(v, -100.0, 100.0);
  let c2 = c * c;
  let s = sigmoid_pair(2.0 * SQRT_2_OVER_PI * (c + GELU_C * c * c2));
  return s.x + c * s.x * s.y * (2.0 * SQRT_2_OVER_PI) * (1.0 + 3.0 * GELU_C * c2);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  var g = grad_at(i) * act_grad(x[i]);
  if (ACCUMULATE) { g += dx[i]; }
  dx[i] = g;
}
