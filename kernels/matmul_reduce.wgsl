// matmul_reduce: the second pass of a split-K matmul (kernels/include/matmul_body.wgsl):
//   C[z][row][col] = alpha * sum_s part[(z * splits + s) * M * N + row * N + col] (+ bias[col])
//   (+ C when ACCUMULATE), then the epilogue (kernels/include/matmul_epilogue.wgsl: ReLU,
//   dropout), the chunks s = 0 .. splits-1 added in that order: the same bits on every run (no
//   atomics).
// Shapes: part (entries * splits * M * N), bias (N), state (2) u32 (the dropout's; unused
//   without DROPOUT), C (M, N) per batch entry z, at
//   c_offset + (z / batch_inner) * c_outer + (z % batch_inner) * c_inner, rows ldc apart.
// Thread mapping: one thread per element of C (entries x M x N, row-major), 256 per workgroup.
// Grid: ceil(entries * M * N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past the end return.

override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

//! include "matmul_params.wgsl"

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<u32>;

//! include "matmul_epilogue.wgsl"

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let mn = params.m * params.n;
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.entries * mn) { return; }
  let z = i / mn;
  let e = i - z * mn;
  let row = e / params.n;
  let col = e - row * params.n;
  let base = z * params.splits * mn + e;
  var s = 0.0;
  for (var j = 0u; j < params.splits; j++) {
    s += part[base + j * mn];
  }
  var v = params.alpha * s;
  if (HAS_BIAS) { v += bias[col]; }
  let zo = z / params.batch_inner;
  let zi = z % params.batch_inner;
  let idx = params.c_offset + zo * params.c_outer + zi * params.c_inner + row * params.ldc + col;
  if (ACCUMULATE) { v += c[idx]; }
  c[idx] = epilogue(v, idx - params.c_offset);
}
