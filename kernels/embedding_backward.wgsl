// embedding_backward: dtable[v, :] (+)= Σ_{i: ids[i] = v} dout[i, :], deterministic and without
// atomics: the thread of (first token of id v, channel c) walks v's chain of tokens (built by
// embedding_backward_links and embedding_backward_next) in increasing token order and is the
// only writer of dtable[v, c].
// Tokens whose id lies outside [0, V) contribute nothing. Rows of ids that do not occur are left
// untouched (so without ACCUMULATE the caller zeroes dtable first).
//
// Shapes: dout (N, C) f32, ids (N) i32, links (2, N) i32: links[i] the next token with the same
//   id or -1 (embedding_backward_next), links[N + i] the previous one or -1
//   (embedding_backward_links); dtable (V, C) f32.
// Thread mapping: one thread per (token i, channel c), e = i * C + c, 256 per workgroup; only
//   threads of first-occurrence tokens work.
// Grid: ceil(N * C / 256) workgroups, folded into (x, y) when large: e = (wid.x + wid.y * nwg.x)
//   * 256 + lid.x, and threads with e >= N * C do nothing.

// Add the sums to dtable instead of overwriting the rows of ids that occur.
override ACCUMULATE: bool = true;

struct Params {
  n: u32, c: u32, v: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> links: array<i32>;
@group(0) @binding(4) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  let c = params.c;
  if (e >= params.n * c) { return; }
  let i = e / c;
  let col = e - i * c;
  if (links[params.n + i] >= 0) { return; } // not the first token of its id
  let id = ids[i];
  if (id < 0 || u32(id) >= params.v) { return; }
  var acc = 0.0;
  var j = i32(i);
  loop {
    acc += dout[u32(j) * c + col];
    j = links[u32(j)];
    if (j < 0) { break; }
  }
  let idx = u32(id) * c + col;
  if (ACCUMULATE) { acc = dtable[idx] + acc; }
  dtable[idx] = acc;
}
