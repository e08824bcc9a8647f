// rms_norm_dweight_reduce: second pass of the weight gradient of rms_norm, deterministic:
//   dweight[c] = sum over chunks j (in order) of partial[j, c], or dweight[c] += ... when
//   ACCUMULATE.
//
// Shapes: partial (J, C) from rms_norm_dweight, dweight (C).
// Thread mapping: one thread per column; a workgroup of 256 threads covers 256 columns.
// Grid: ceil(C / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past C return.

override ACCUMULATE: bool = false;

struct Params {
  c: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let col = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (col >= params.c) { return; }
  var acc = 0.0;
  for (var j = 0u; j < params.chunks; j++) {
    acc += partial[j * params.c + col];
  }
  if (ACCUMULATE) { acc += dweight[col]; }
  dweight[col] = acc;
}
