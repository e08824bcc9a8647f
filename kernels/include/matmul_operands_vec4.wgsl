// matmul_operands_vec4: the operands of the matmul kernels with vec4 loads (the tiled loader
// matmul_load_vec4.wgsl and the direct body matmul_direct_body.wgsl). Each operand's contiguous
// dimension (K of row-major A, M of transposed A, N of row-major B, K of transposed B), row
// stride, offset and batch strides must be multiples of 4 (the launcher checks), so a vec4 lies
// wholly inside or outside the matrix. Needs `alias BVec = vec4<f32>;` (or vec4<f16>). Declares
// the bindings `a` (1, vec4<f32>) and `b` (2, BVec) and `load_a4`, `load_b4`.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<BVec>;

// Elements i .. i+3 of A (i a multiple of 4), or zeros when `inside` is false.
fn load_a4(i: u32, inside: bool) -> vec4<f32> {
  if (CHECK && !inside) { return vec4<f32>(0.0); }
  return a[i >> 2u];
}

fn load_b4(i: u32, inside: bool) -> vec4<f32> {
  if (CHECK && !inside) { return vec4<f32>(0.0); }
  return vec4<f32>(b[i >> 2u]);
}

