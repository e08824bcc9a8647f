// gated_activation_backward: for out = act(gate) * up, dgate = dout * up * act'(gate) and
// dup = dout * act(gate), or both += ... when ACCUMULATE; elementwise over N.
//
// ACT as in activation.wgsl (0 = ReLU, 1 = GELU tanh form, evaluated through a stable sigmoid
//   with the gate clamped to +-100 inside the cubic, so no overflow or NaN for large |gate|).
// With DROPOUT, dout first goes through the backward of the dropout fused into the forward
//   activation (element i under `stream`).
// Shapes: dout (N), gate (N), up (N) (the forward inputs), state (2) u32 (unused without
//   DROPOUT), dgate (N), dup (N).
// Thread mapping: one thread per element; a workgroup of 256 threads covers 256 consecutive
//   elements. Grid: ceil(N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past N return.

override ACT: u32 = 1u;
override ACCUMULATE: bool = false;
override DROPOUT: bool = false;

struct Params {
  n: u32, stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dup: array<f32>;

//! include "gelu_tanh.wgsl"
//! include "dropout_hash.wgsl"

// (act(v), act'(v)).
fn act_and_grad(v: f32) -> vec2<f32> {
  if (ACT == 0u) { return vec2<f32>(max(v, 0.0), select(0.0, 1.0, v > 0.0)); }
  let c = clamp(v, -100.0, 100.0);
  let c2 = c * c;
  let s = sigmoid_pair(2.0 * SQRT_2_OVER_PI * (c + GELU_C * c * c2));
  let grad = s.x + c * s.x * s.y * (2.0 * SQRT_2_OVER_PI) * (1.0 + 3.0 * GELU_C * c2);
  return vec2<f32>(v * s.x, grad);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  var d = dout[i];
  if (DROPOUT) {
    let keep = dropout_keep(state[0], state[1], params.stream, i, params.threshold,
      params.keep_none);
    d = select(0.0, d * params.drop_scale, keep);
  }
  let a = act_and_grad(gate[i]);
  var dg = d * up[i] * a.y;
  var du = d * a.x;
  if (ACCUMULATE) {
    dg += dgate[i];
    du += dup[i];
  }
  dgate[i] = dg;
  dup[i] = du;
}
