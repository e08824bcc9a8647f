// matmul_scalar: C = alpha * op(A) · op(B) (+ bias[n]) (+ C when ACCUMULATE), then an optional
// ReLU and dropout (the epilogue), A and B f32, for operands of any layout (any strides and
// offsets; one element per load). The vec4 kernel kernels/matmul.wgsl is used where the layout
// allows. Shapes, batch, split-K, epilogue and thread mapping: kernels/include/matmul_body.wgsl.
// Shapes: op(A) (M, K), op(B) (K, N), C (M, N), bias (N), per batch entry.
// Thread mapping: a WG_Y x WG_X workgroup computes an (8 WG_Y) x (8 WG_X) tile of C, each thread
//   an 8x8 register block. Grid: (ceil(N / (8 WG_X)), ceil(M / (8 WG_Y)), entries x splits).

alias BElem = f32;

//! include "matmul_params.wgsl"
//! include "matmul_body.wgsl"
//! include "matmul_load_scalar.wgsl"
