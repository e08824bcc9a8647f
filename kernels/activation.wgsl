// activation: out = act(x), or out = act(x) * up when GATED (T5 v1.1 gated FFN: gelu(wi_0 x) *
// wi_1 x), elementwise over N elements.
//
// ACT selects the function: 0 = ReLU, max(x, 0); 1 = GELU, tanh form ("gelu_new"):
//   0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). It is evaluated as the identical
//   x * sigmoid(2u) with sigmoid(z) from e = exp(-|z|) <= 1 (no overflow, no inf/inf), and x is
//   clamped to +-100 inside the cubic (the sigmoid saturates in f32 long before), so large |x|
//   gives x or -0 instead of NaN on drivers whose tanh/exp overflow.
// With DROPOUT the result goes through a counter-based dropout (kernels/dropout.wgsl: the mask
//   bit of element i under `stream`), the feed-forward's dropout fused into its activation.
// Shapes: x (N) (the gate when GATED), up (N) (bound to x and unused without GATED), state (2)
//   u32 (unused without DROPOUT), out (N).
// Thread mapping: one thread per element; a workgroup of 256 threads covers 256 consecutive
//   elements. Grid: ceil(N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past N return.

override ACT: u32 = 0u;
override GATED: bool = false;
override DROPOUT: bool = false;

struct Params {
  n: u32, stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//! include "gelu_tanh.wgsl"
//! include "dropout_hash.wgsl"

fn act(v: f32) -> f32 {
  if (ACT == 0u) { return max(v, 0.0); }
  let c = clamp(v, -100.0, 100.0);
  let s = sigmoid_pair(2.0 * SQRT_2_OVER_PI * (c + GELU_C * c * c * c));
  return v * s.x;
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  var v = act(x[i]);
  if (GATED) { v = v * up[i]; }
  if (DROPOUT) {
    let keep = dropout_keep(state[0], state[1], params.stream, i, params.threshold,
      params.keep_none);
    v = select(0.0, v * params.drop_scale, keep);
  }
  out[i] = v;
}
