// rms_norm_backward_body: the body of the RMS-norm backward kernels (rms_norm_backward with scalar
// loads, rms_norm_backward_vec4 with vec4 loads: the including kernel includes row_f32.wgsl or
// row_vec4.wgsl first, the row type V; C and the params' c count V). The gradient of out = weight * x * rstd with respect to x, per row of C:
//   dx = rstd * (weight * g - x * rstd^2 * dot / C),  dot = sum_c g * weight * x,
// or dx += ... when ACCUMULATE, where g = dout, or dropout'(dout) when DROP_DOUT (the backward of
// a dropout after the norm: a stack's final dropout). With BRANCH it also writes
//   dbranch = dropout'(dx)   (the final dx, accumulation included)
// the gradient of the dropped residual branch that fed x: the backward of rms_norm's fused
// residual (HAS_Y, DROP_Y), which saves the dropout dispatch at the start of the sublayer's
// backward. Masks as in kernels/dropout.wgsl (element row · C + c, streams `stream_dout` and
// `stream_branch`). rstd is the one saved by rms_norm.
//
// Shapes: dout (N, C), x (N, C), weight (C), rstd (N), state (2) u32, dx (N, C), dbranch (N, C)
//   (a placeholder without BRANCH). Without ACCUMULATE, dx may alias dout (every read of a row
//   happens before the barriers that precede its writes; with ROW_PER_THREAD one thread reads
//   its whole row for the dot, then each element before it overwrites it).
// Thread mapping: one workgroup of 64 threads per row; thread t handles columns t, t + 64, ...;
//   workgroup_sum64 (kernels/include/reduce64.wgsl: deterministic; a two-barrier tree, or
//   subgroup reductions where the device has them) gives dot. With ROW_PER_THREAD, one thread
//   per row (64 rows per workgroup, ceil(N / 64) workgroups), adding in column order, with no
//   barrier (for CPU adapters, as in rms_norm).
// Grid: N workgroups (ceil(N / 64) with ROW_PER_THREAD), folded into (x, y) by the runtime
//   beyond 65535; row = wid.x + wid.y * nwg.x, and workgroups past N return (uniformly, before
//   any barrier).

override ACCUMULATE: bool = false;
override DROP_DOUT: bool = false;
override BRANCH: bool = false;
override ROW_PER_THREAD: bool = false;

struct Params {
  rows: u32,
  c: u32,
  stream_dout: u32,
  stream_branch: u32,
  threshold: u32,
  keep_none: u32,
  drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<V>;
@group(0) @binding(2) var<storage, read> x: array<V>;
@group(0) @binding(3) var<storage, read> weight: array<V>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> dx: array<V>;
@group(0) @binding(7) var<storage, read_write> dbranch: array<V>;

//! include "reduce64.wgsl"
//! include "row_dropout.wgsl"

fn grad_at(i: u32) -> V {
  if (DROP_DOUT) { return drop_v(dout[i], i, params.stream_dout); }
  return dout[i];
}

// Σ grad · weight · x over row `row`'s columns t, t + stride, ...
fn row_dot(row: u32, t: u32, stride: u32) -> f32 {
  let base = row * params.c;
  var p = 0.0;
  for (var k = t; k < params.c; k += stride) {
    p += hsum(grad_at(base + k) * weight[k] * x[base + k]);
  }
  return p;
}

// Writes dx (and dbranch) at row `row`'s columns t, t + stride, ... for the row's dot.
fn write_dx(row: u32, t: u32, stride: u32, dot: f32) {
  let base = row * params.c;
  let r = rstd[row];
  let coef = r * r * dot / f32(params.c * VW);
  for (var k = t; k < params.c; k += stride) {
    let i = base + k;
    var g = r * (weight[k] * grad_at(i) - x[i] * coef);
    if (ACCUMULATE) { g += dx[i]; }
    dx[i] = g;
    if (BRANCH) { dbranch[i] = drop_v(g, i, params.stream_branch); }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let wg = wid.x + wid.y * nwg.x;
  let t = ids.t;
  if (ROW_PER_THREAD) {
    let row = wg * 64u + t;
    if (row < params.rows) { write_dx(row, 0u, 1u, row_dot(row, 0u, 1u)); }
    return;
  }
  let row = wg;
  if (row >= params.rows) { return; }
  write_dx(row, t, 64u, workgroup_sum64(ids, row_dot(row, t, 64u)));
}
