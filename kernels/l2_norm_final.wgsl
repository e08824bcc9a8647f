// l2_norm_final: out[0] = sqrt(Σ_s partials[s]) over the slots written by sum_squares for every
// tensor, added in a fixed order (deterministic).
//
// Shapes: partials (slots) f32, out (1) f32.
// Thread mapping: one workgroup of 256 threads. Thread t sums slots t, t + 256, ... in order,
//   then workgroup_sum256 (kernels/include/reduce256.wgsl: a tree in a fixed order, or subgroup
//   reductions where the device has them; deterministic) adds the 256 sums.
// Grid: 1 workgroup.

struct Params {
  slots: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

//! include "reduce256.wgsl"

@compute @workgroup_size(256)
fn main(ids: ReduceIds) {
  let t = ids.t;
  var s = 0.0;
  for (var i = t; i < params.slots; i += 256u) {
    s += partials[i];
  }
  let total = workgroup_sum256(ids, s);
  if (t == 0u) {
    out[0] = sqrt(total);
  }
}
