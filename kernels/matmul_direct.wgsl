// matmul_direct: kernels/matmul.wgsl without workgroup memory or barriers (for CPU adapters):
// C = alpha * op(A) · op(B) (+ bias[n]) (+ C when ACCUMULATE), then the optional ReLU and
// dropout, A and B f32, strided and batched, split-K chunks, vec4 loads (each operand's
// contiguous dimension, row stride, offset and batch strides multiples of 4).
// Shapes: op(A) (M, K), op(B) (K, N), C (M, N), bias (N), per batch entry.
// Thread mapping: each thread an 8x8 block of C read straight from A and B; a WG_Y x WG_X
//   workgroup an (8 WG_Y) x (8 WG_X) tile. Grid: (ceil(N / (8 WG_X)), ceil(M / (8 WG_Y)),
//   entries x splits). Details: kernels/include/matmul_direct_body.wgsl.

alias BVec = vec4<f32>;

//! include "matmul_params.wgsl"
//! include "matmul_direct_body.wgsl"
