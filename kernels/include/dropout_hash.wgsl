// dropout_hash: the keep bit of a counter-based dropout mask (see kernels/dropout.wgsl):
//   h = MurmurHash3_x86_32 (hash seed 0) of the 16-byte message [seed, step, stream, i] (u32
//   words, little-endian); keep = keep_none == 0 && h >= threshold, threshold = ceil(p · 2^32).
// Integer operations only: every adapter and the host (`dropoutHash`) compute the same bits.

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

// Whether element i of the mask keyed by (seed, step, stream) is kept.
fn dropout_keep(seed: u32, step: u32, stream: u32, i: u32, threshold: u32, keep_none: u32) -> bool {
  var h = murmur_block(0u, seed);
  h = murmur_block(h, step);
  h = murmur_block(h, stream);
  h = murmur_block(h, i);
  h = fmix32(h ^ 16u);
  return keep_none == 0u && h >= threshold;
}
