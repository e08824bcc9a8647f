// embedding_forward: out[i, :] = table[ids[i], :] (a row gather). A row whose id lies outside
// [0, V) is written as zeros and nothing outside the table is read (check ids on the host with
// `checkIds` to catch them).
//
// Shapes: table (V, C) f32, ids (N) i32, out (N, C) f32.
// Thread mapping: one thread per output element e = i * C + c, 256 threads per workgroup.
// Grid: ceil(N * C / 256) workgroups, folded into (x, y) by the launcher when large:
//   e = (wid.x + wid.y * nwg.x) * 256 + lid.x, and threads with e >= N * C do nothing.

struct Params {
  n: u32, c: u32, v: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (e >= params.n * params.c) { return; }
  let i = e / params.c;
  let col = e - i * params.c;
  let id = ids[i];
  var val = 0.0;
  if (id >= 0 && u32(id) < params.v) {
    val = table[u32(id) * params.c + col];
  }
  out[e] = val;
}
