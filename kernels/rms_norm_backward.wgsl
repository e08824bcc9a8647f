// rms_norm_backward: gradient of out = weight * x * rstd with respect to x, per row of C:
//   dx = rstd * (weight * dout - x * rstd^2 * dot / C),  dot = sum_c dout * weight * x,
// or dx += ... when ACCUMULATE. rstd is the one saved by rms_norm.
//
// Shapes: dout (N, C), x (N, C), weight (C), rstd (N), dx (N, C). Without ACCUMULATE, dx may
//   alias dout (every read of a row happens before the barriers that precede its writes).
// Thread mapping: one workgroup of 64 threads per row; thread t handles columns t, t + 64, ...;
//   workgroup_sum64 (kernels/include/reduce64.wgsl: deterministic, two barriers) gives dot.
// Grid: N workgroups, folded into (x, y) by the runtime beyond 65535; row = wid.x + wid.y *
//   nwg.x, and workgroups past N return (uniformly, before any barrier).

override ACCUMULATE: bool = false;

struct Params {
  rows: u32,
  c: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

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
  var p = 0.0;
  for (var k = t; k < params.c; k += 64u) {
    p += dout[base + k] * weight[k] * x[base + k];
  }
  let dot = workgroup_sum64(t, p);
  let r = rstd[row];
  let coef = r * r * dot / f32(params.c);
  for (var k = t; k < params.c; k += 64u) {
    let i = base + k;
    var g = r * (weight[k] * dout[i] - x[i] * coef);
    if (ACCUMULATE) { g += dx[i]; }
    dx[i] = g;
  }
}
