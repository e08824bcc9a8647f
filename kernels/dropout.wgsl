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

fn rotl(v: u32, r: u32) -> u32 {
  return (v << r) | (v >> (32u - r));
}

// One 4-byte block of MurmurHash3_x86_32.
fn murmur_block(h: u32, k: u32) -> u32 {
  var k1 = k * 0xcc9e2d51u;
  k1 = rotl(k1, 15u);
  k1 = k1 * 0x1b873593u;
  let h1 = rotl(h ^ k1, 13u);
  return h1 * 5u + 0xe6546b64u;
}

// The MurmurHash3 finalizer (fmix32).
fn fmix32(h: u32) -> u32 {
  var f = h;
  f ^= f >> 16u;
  f *= 0x85ebca6bu;
  f ^= f >> 13u;
  f *= 0xc2b2ae35u;
  f ^= f >> 16u;
  return f;
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  var h = murmur_block(0u, state[0]);
  h = murmur_block(h, state[1]);
  h = murmur_block(h, params.stream);
  h = murmur_block(h, i);
  h = fmix32(h ^ 16u);
  let keep = params.keep_none == 0u && h >= params.threshold;
  var val = select(0.0, x[i] * params.scale, keep);
  if (ACCUMULATE) { val = out[i] + val; }
  out[i] = val;
}
