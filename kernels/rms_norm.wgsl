// rms_norm: T5's LayerNorm (scale only: no mean subtraction, no bias), per row of C:
//   rstd = 1 / sqrt(mean(x^2) + eps),  out = weight * (x * rstd),  saved rstd for the backward.
//
// Shapes: x (N, C), weight (C), out (N, C), rstd (N). N rows = B * S (or B * T). out may alias x.
// Thread mapping: one workgroup of 64 threads per row; thread t handles columns t, t + 64, ...
//   (any C) and sums their squares in f32; workgroup_sum64 (kernels/include/reduce64.wgsl:
//   deterministic, two barriers) gives the row sum.
// Grid: N workgroups, folded into (x, y) by the runtime beyond 65535; row = wid.x + wid.y *
//   nwg.x, and workgroups past N return (uniformly, before any barrier).

struct Params {
  rows: u32,
  c: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

//! include "reduce64.wgsl"

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let t = lid.x;
  let base = row * params.c;
  var ss = 0.0;
  for (var k = t; k < params.c; k += 64u) {
    let v = x[base + k];
    ss += v * v;
  }
  let total = workgroup_sum64(t, ss);
  let r = inverseSqrt(total / f32(params.c) + params.eps);
  for (var k = t; k < params.c; k += 64u) {
    out[base + k] = weight[k] * (x[base + k] * r);
  }
  if (t == 0u) { rstd[row] = r; }
}
