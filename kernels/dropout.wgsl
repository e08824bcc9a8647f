// dropout: out[i] (+)= keep(i) ? x[i] * scale : 0, with a counter-based mask: keep(i) is a pure
// function of (seed, step, stream, i), so the backward pass (the same kernel applied to dout)
// regenerates the forward's mask and every adapter computes the same mask.
//   h = MurmurHash3_x86_32 (hash seed 0) of the 16-byte message [seed, step, stream, i] (u32
//   words, little-endian): integer operations only, replicated exactly by `dropoutHash` on the
//   host. keep(i) = keep_none == 0 && h >= threshold, where threshold = ceil(p · 2^32), i.e.
//   uniform(h) = h / 2^32 >= p; keep_none = 1 when p is so close to 1 that no h can pass.
//   Dropped elements are written as exact zeros (even where x is not finite).
//
// Shapes: state (2) u32 = (seed, step), rewritten by the host each step; x (N) f32; out (N) f32.
// Thread mapping: one thread per element, 256 threads per workgroup.
// Grid: ceil(N / 256) workgroups, folded into (x, y) when N > 65535 · 256: i = (wid.x + wid.y *
//   nwg.x) * 256 + lid.x, and threads with i >= N do nothing.

// Add into out instead of overwriting it.
override ACCUMULATE: bool = false;

struct Params {
  n: u32, stream: u32, threshold: u32, keep_none: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

//! include "dropout_hash.wgsl"

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let keep = dropout_keep(state[0], state[1], params.stream, i, params.threshold, params.keep_none);
  var val = select(0.0, x[i] * params.scale, keep);
  if (ACCUMULATE) { val = out[i] + val; }
  out[i] = val;
}
