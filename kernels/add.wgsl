// add: out = a + b, elementwise over N elements (any shape, flattened).
//
// Shapes: a (N), b (N), out (N). out may alias a or b (the runtime then binds all read_write).
// Thread mapping: one thread per element; a workgroup of 256 threads covers 256 consecutive
//   elements. Grid: ceil(N / 256) workgroups, folded into (x, y) by the runtime beyond 65535;
//   workgroup w = wid.x + wid.y * nwg.x, and threads past N return.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  out[i] = a[i] + b[i];
}
