// sum_batch: out[i, c] = Σ_b x[b, row0 + i, c] for i < N, summed in batch order (deterministic):
// a soft prompt's gradient (row0 = 0, N = M) or a per-position offset's (row0 = M, N = S) from
// the gradient of the encoder input.
//
// Shapes: x (B, L, C) f32 with row0 + N <= L, out (N, C) f32.
// Thread mapping: one thread per output element e = i · C + c, 256 threads per workgroup; each
//   thread adds B values.
// Grid: ceil(N · C / 256) workgroups, folded into (x, y) by the launcher when large:
//   e = (wid.x + wid.y * nwg.x) * 256 + lid.x, and threads with e >= N · C do nothing.

struct Params {
  batch: u32, len: u32, row0: u32, n: u32, c: u32,
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
  let e = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (e >= params.n * params.c) { return; }
  let stride = params.len * params.c;
  let base = params.row0 * params.c + e;
  var acc = 0.0;
  for (var b = 0u; b < params.batch; b++) {
    acc = acc + x[b * stride + base];
  }
  out[e] = acc;
}
