// matmul_epilogue: what the matmul kernels apply to each finished element of C (after alpha,
// bias and ACCUMULATE): an activation (ACT 0: none, 1: ReLU max(v, 0)), then a counter-based
// dropout (DROPOUT: kept with probability 1 - p and scaled by 1 / (1 - p); the mask bit of
// element i under `params.stream`, as kernels/dropout.wgsl draws it), so that a feed-forward's
// wi -> ReLU -> dropout is one kernel. i is the element's index from C's offset (row * ldc +
// col, plus the batch strides): the flat index of a contiguous C. Include after the `state`
// binding (the (2) u32 dropout state) and the params snippet. Declares `epilogue` and the
// dropout_hash.wgsl functions.

override ACT: u32 = 0u;
override DROPOUT: bool = false;

//! include "dropout_hash.wgsl"

fn epilogue(v: f32, i: u32) -> f32 {
  var r = v;
  if (ACT == 1u) { r = max(r, 0.0); }
  if (DROPOUT) {
    let keep = dropout_keep(state[0], state[1], params.stream, i, params.threshold,
      params.keep_none);
    r = select(0.0, r * params.drop_scale, keep);
  }
  return r;
}
