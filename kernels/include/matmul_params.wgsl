// matmul_params: the uniform block of the matmul kernels (include/matmul_body.wgsl) and of
// their split-K reduction (matmul_reduce.wgsl), one struct so that an op's uniforms can be
// rewritten by field name across both dispatches. Declares `Params` and the k-tile depth `BK`.
//   m, n, k: sizes of C (M, N) and of the contracted dimension.
//   lda, ldb, ldc: row strides (elements); batch_inner, z_offset: the batch split and the first
//   entry of this dispatch; {a,b,c}_offset / _outer / _inner: element offsets and batch strides.
//   alpha: scale of the product. splits, k_chunk: split-K chunks and their length (a multiple
//   of BK); entries: batch entries of the whole product (the reduction's extent). stream,
//   threshold, keep_none, drop_scale: the epilogue's dropout (matmul_epilogue.wgsl).

const BK = 16u;

struct Params {
  m: u32, n: u32, k: u32,
  lda: u32, ldb: u32, ldc: u32,
  batch_inner: u32, z_offset: u32,
  a_offset: u32, a_outer: u32, a_inner: u32,
  b_offset: u32, b_outer: u32, b_inner: u32,
  c_offset: u32, c_outer: u32, c_inner: u32,
  alpha: f32,
  splits: u32, k_chunk: u32, entries: u32,
  stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}
