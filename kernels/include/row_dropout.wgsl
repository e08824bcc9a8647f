// row_dropout: the counter-based dropout of the RMS-norm kernels' fused dropouts, per float and
// per V (row_f32.wgsl or row_vec4.wgsl, included before): `drop(v, i, stream)` for float i and
// `drop_v(v, i, stream)` for V-element i (floats i·VW ..), masks as kernels/dropout.wgsl draws
// them. Needs the `state` binding (2) u32 = (seed, step) and `params.threshold`, `keep_none`
// and `drop_scale`; includes dropout_hash.wgsl.

//! include "dropout_hash.wgsl"

fn drop(v: f32, i: u32, stream: u32) -> f32 {
  let keep = dropout_keep(state[0], state[1], stream, i, params.threshold, params.keep_none);
  return select(0.0, v * params.drop_scale, keep);
}

fn drop_v(v: V, i: u32, stream: u32) -> V {
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < VW; c++) { r[c] = drop(lane(v, c), i * VW + c, stream); }
  return from_lanes(r);
}
