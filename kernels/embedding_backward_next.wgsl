// embedding_backward_next: second pass of the deterministic embedding backward: turns the
// "previous token with the same id" links into "next token" links, links[prev(i)] = i. Each
// previous token has exactly one successor, so every element has at most one writer (no atomics).
//
// Shapes: links (2, N) i32 (see embedding_backward_links): reads links[N + i], writes links[j].
// Thread mapping: one thread per token i, 256 threads per workgroup.
// Grid: ceil(N / 256) workgroups, folded into (x, y) when large: i = (wid.x + wid.y * nwg.x) *
//   256 + lid.x, and threads with i >= N do nothing.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> links: array<i32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let prev = links[params.n + i];
  if (prev >= 0) {
    links[u32(prev)] = i32(i);
  }
}
