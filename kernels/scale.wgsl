// scale: out = alpha * x, or out += alpha * x when ACCUMULATE; elementwise over N elements.
//
// Also the backward of scale (dx (+)= alpha * dout) and of add (da (+)= dout, alpha = 1).
// Shapes: x (N), out (N). Without ACCUMULATE, out may alias x.
// Thread mapping: one thread per element; a workgroup of 256 threads covers 256 consecutive
//   elements. Grid: ceil(N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past N return.

override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  var v = params.alpha * x[i];
  if (ACCUMULATE) { v += out[i]; }
  out[i] = v;
}
