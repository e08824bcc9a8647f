// softmax_backward: gradient of y = softmax(scale * x + bias + mask) with respect to the
// pre-scale scores x, per row:
//   dx = scale * y * (dout - dot),  dot = sum_k dout * y,
// or dx += ... when ACCUMULATE. (Divided by scale, it is the gradient with respect to the logits,
// and so with respect to the bias; see softmax_bias_backward.)
//
// Shapes: dout (B, H, Sq, Sk), y (B, H, Sq, Sk) (the forward output), dx (B, H, Sq, Sk).
//   Without ACCUMULATE, dx may alias dout (a row is read before the barrier preceding writes).
// Thread mapping: one workgroup of 64 threads per row (b, h, q); thread t handles keys
//   t, t + 64, ...; workgroup_sum64 (kernels/include/reduce64.wgsl: deterministic; a
//   two-barrier tree, or subgroup reductions where the device has them) gives dot.
// Grid: B * H * Sq workgroups, folded into (x, y) by the runtime beyond 65535; row = wid.x +
//   wid.y * nwg.x, and workgroups past the last row return (uniformly, before any barrier).

override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  sk: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

//! include "reduce64.wgsl"

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let t = ids.t;
  let base = row * params.sk;
  var p = 0.0;
  for (var k = t; k < params.sk; k += 64u) {
    p += dout[base + k] * y[base + k];
  }
  let dot = workgroup_sum64(ids, p);
  for (var k = t; k < params.sk; k += 64u) {
    let i = base + k;
    var g = params.scale * y[i] * (dout[i] - dot);
    if (ACCUMULATE) { g += dx[i]; }
    dx[i] = g;
  }
}
