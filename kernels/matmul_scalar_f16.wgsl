// matmul_scalar_f16: kernels/matmul_scalar.wgsl with B stored in f16, widened to f32 as it is
// loaded (f32 products and sums), for operands of any layout. Needs the device feature
// shader-f16.
// Shapes: op(A) (M, K) f32, op(B) (K, N) f16, C (M, N) f32, bias (N) f32, per batch entry.
// Thread mapping: a WG_Y x WG_X workgroup computes an (8 WG_Y) x (8 WG_X) tile of C, each thread
//   an 8x8 register block. Grid: (ceil(N / (8 WG_X)), ceil(M / (8 WG_Y)), entries x splits).
//   Details: kernels/include/matmul_body.wgsl.

enable f16;

alias BElem = f16;

//! include "matmul_params.wgsl"
//! include "matmul_body.wgsl"
//! include "matmul_load_scalar.wgsl"
