// fill: out[i] = value for i in [0, n).
//
// Shapes: out (n) f32.
// Thread mapping: one thread per element; WG threads per workgroup. The grid is 1-D, folded
//   into (x, y) by the launcher when it exceeds 65535 workgroups: the linear workgroup index is
//   wid.x + wid.y * nwg.x.

override WG: u32 = 256;

struct Params {
  n: u32,
  value: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < params.n) {
    out[i] = params.value;
  }
}
