// rms_norm_body: the body of the RMS-norm kernels (rms_norm with scalar loads, rms_norm_vec4 with
// vec4 loads: the including kernel includes row_f32.wgsl or row_vec4.wgsl first, the row type V;
// C and the params' c count V, a multiple of 4 floats for vec4). T5's LayerNorm (scale only: no mean subtraction, no bias), per row of C, optionally
// fused with the residual add and the dropouts around it (where a T5 sublayer ends and the next
// one's norm begins):
//   s = x (+ dropout(y) when HAS_Y)        the residual stream (written to `sum` when WRITE_SUM)
//   rstd = 1 / sqrt(mean(s^2) + eps),  out = weight * (s * rstd)  (then dropout when DROP_OUT)
// The dropouts use the counter-based masks of kernels/dropout.wgsl (the mask bit of element
// row · C + c under `stream_y` or `stream_out`), so the results equal the unfused ops'.
//
// Shapes: x (N, C) (unread without HAS_X: s = dropout(y)), y (N, C), weight (C), sum (N, C),
//   out (N, C), rstd (N), state (2) u32 = (seed, step). N rows = B * S (or B * T). Unused
//   inputs are bound to a placeholder.
// Thread mapping: one workgroup of 64 threads per row; thread t handles columns t, t + 64, ...
//   (any C) and sums their squares in f32; workgroup_sum64 (kernels/include/reduce64.wgsl:
//   deterministic; a two-barrier tree, or subgroup reductions where the device has them) gives
//   the row sum. With ROW_PER_THREAD, one thread per row instead (64 rows per workgroup), adding
//   the squares in column order, with no barrier: for CPU adapters, where a barrier switches
//   between all the workgroup's invocations.
// Grid: N workgroups (ceil(N / 64) with ROW_PER_THREAD), folded into (x, y) by the runtime
//   beyond 65535; row = wid.x + wid.y * nwg.x, and workgroups past N return (uniformly, before
//   any barrier).

override ROW_PER_THREAD: bool = false;

override HAS_X: bool = true;
override HAS_Y: bool = false;
override DROP_Y: bool = false;
override DROP_OUT: bool = false;
override WRITE_SUM: bool = false;

struct Params {
  rows: u32,
  c: u32,
  eps: f32,
  stream_y: u32,
  stream_out: u32,
  threshold: u32,
  keep_none: u32,
  drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> y: array<V>;
@group(0) @binding(3) var<storage, read> weight: array<V>;
@group(0) @binding(4) var<storage, read> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> sum: array<V>;
@group(0) @binding(6) var<storage, read_write> out: array<V>;
@group(0) @binding(7) var<storage, read_write> rstd: array<f32>;

//! include "reduce64.wgsl"
//! include "row_dropout.wgsl"

// The residual stream's V-element i.
fn stream_at(i: u32) -> V {
  var v = V(0.0);
  if (HAS_X) { v = x[i]; }
  if (HAS_Y) {
    var w = y[i];
    if (DROP_Y) { w = drop_v(w, i, params.stream_y); }
    v += w;
  }
  return v;
}

// The sum of the squares of row `row`'s columns t, t + stride, ... (writing `sum`).
fn square_sum(row: u32, t: u32, stride: u32) -> f32 {
  let base = row * params.c;
  var ss = 0.0;
  for (var k = t; k < params.c; k += stride) {
    let v = stream_at(base + k);
    if (WRITE_SUM) { sum[base + k] = v; }
    ss += hsum(v * v);
  }
  return ss;
}

// Writes the normalised columns t, t + stride, ... of row `row` for the row sum of squares.
fn normalise(row: u32, t: u32, stride: u32, total: f32) -> f32 {
  let base = row * params.c;
  let r = inverseSqrt(total / f32(params.c * VW) + params.eps);
  for (var k = t; k < params.c; k += stride) {
    let i = base + k;
    var v: V;
    if (WRITE_SUM) { v = sum[i]; } else { v = stream_at(i); }
    var n = weight[k] * (v * r);
    if (DROP_OUT) { n = drop_v(n, i, params.stream_out); }
    out[i] = n;
  }
  return r;
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
    if (row < params.rows) { rstd[row] = normalise(row, 0u, 1u, square_sum(row, 0u, 1u)); }
    return;
  }
  let row = wg;
  if (row >= params.rows) { return; }
  let total = workgroup_sum64(ids, square_sum(row, t, 64u));
  let r = normalise(row, t, 64u, total);
  if (t == 0u) { rstd[row] = r; }
}
