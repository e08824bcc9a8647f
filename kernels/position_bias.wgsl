// position_bias: T5's relative position bias, out[h, i, j] = weight[bucket(j - (i + q_offset)), h].
//
// Shapes: weight (NB, H) f32 (the relative_attention_bias embedding), buckets (2R + 1) i32 mapping
//   a relative position r in [-R, R] to its bucket (index r + R), out (H, Sq, Sk) f32.
//   Relative positions beyond +-R are clamped to +-R (their bucket is the last one anyway once
//   R >= max_distance).
// Thread mapping: one thread per output element; 256 threads per workgroup; 1-D grid folded into
//   (x, y) beyond 65535 workgroups (linear workgroup index wid.x + wid.y * nwg.x).

struct Params {
  heads: u32,
  sq: u32,
  sk: u32,
  q_offset: u32,
  radius: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> buckets: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
  let total = params.heads * params.sq * params.sk;
  if (idx >= total) { return; }
  let j = idx % params.sk;
  let i = (idx / params.sk) % params.sq;
  let h = idx / (params.sk * params.sq);
  let r = clamp(i32(j) - i32(i + params.q_offset), -i32(params.radius), i32(params.radius));
  let bucket = u32(buckets[u32(r + i32(params.radius))]);
  out[idx] = weight[bucket * params.heads + h];
}
