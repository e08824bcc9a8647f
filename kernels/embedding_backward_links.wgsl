// embedding_backward_links: first pass of the deterministic embedding backward. For every token
// i it finds the previous token with the same id, and resets i's forward link (which
// embedding_backward_next fills in), so that embedding_backward can sum each id's rows in token
// order without atomics.
//
// Shapes: ids (N) i32; links (2, N) i32, written here:
//   links[i]     = -1 (the "next token with the same id" link, set by embedding_backward_next);
//   links[N + i] = the largest j < i with ids[j] == ids[i], or -1 when i is the id's first token.
// Thread mapping: a workgroup of 256 threads owns tokens [256 w, 256 w + 256). It walks tiles of
//   256 ids from token 0 up to its own tile through workgroup memory; every thread compares its
//   id with each id of the tile before it and keeps the last match. O(N²/2) integer comparisons
//   in total, all in workgroup memory; no thread leaves the tile loop early (uniform barriers).
// Grid: ceil(N / 256) workgroups, folded into (x, y) when large: w = wid.x + wid.y * nwg.x, and
//   workgroups with 256 w >= N do nothing.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> links: array<i32>;

var<workgroup> tile: array<i32, 256>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let n = params.n;
  let i0 = (wid.x + wid.y * nwg.x) * 256u;
  if (i0 >= n) { return; } // uniform across the workgroup
  let i = i0 + lid.x;
  var id = 0;
  if (i < n) { id = ids[i]; }
  var prev = -1;
  for (var t0 = 0u; t0 <= i0; t0 += 256u) {
    let j = t0 + lid.x;
    var tid = -1;
    if (j < n) { tid = ids[j]; }
    tile[lid.x] = tid;
    workgroupBarrier();
    // Only the own tile (t0 == i0) can hold j >= i; earlier tiles lie wholly before i.
    let kmax = min(256u, i - t0);
    for (var k = 0u; k < kmax; k++) {
      if (tile[k] == id) { prev = i32(t0 + k); }
    }
    workgroupBarrier();
  }
  if (i < n) {
    links[i] = -1;
    links[n + i] = prev;
  }
}
