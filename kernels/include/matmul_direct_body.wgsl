// matmul_direct_body: the matmul without workgroup memory (kernels/matmul_direct.wgsl): each
// thread reads its 8 rows of op(A) and 8 columns of op(B) straight from the operands with vec4
// loads, 4 k at a time, and keeps its 8x8 block of C in registers: no barrier. For CPU adapters
// (lavapipe), where a barrier turns the shader into a coroutine whose live registers are saved
// and restored around it, and workgroup memory costs as much per load as the operands: there it
// runs the tiny T5 step's products about 1.5x as fast as the tiled body. Same products, layouts,
// batches, split-K chunks and epilogue as matmul_body.wgsl; the sums run over k in the same
// order. Needs matmul_params.wgsl, then `alias BVec`, then this body (which includes
// matmul_common.wgsl and matmul_operands_vec4.wgsl).
//
// Thread mapping: a WG_Y x WG_X workgroup covers an (8 WG_Y) x (8 WG_X) tile of C, as the tiled
//   body's, each thread the 8x8 block at rows 8 (wid.y WG_Y + ly) .., columns 8 (wid.x WG_X +
//   lx) ... Grid: (ceil(N / (8 WG_X)), ceil(M / (8 WG_Y)), entries (x splits) of this chunk).

//! include "matmul_common.wgsl"
//! include "matmul_operands_vec4.wgsl"

// Rows i .. of a thread's block of op(A) at k .. k+3, as 8 vec4 of 4 k each (component kk is k
// + kk); `k1` ends the entry's k-range.
struct ABlock { r: array<vec4<f32>, 8> }

fn a_block(base: u32, row0: u32, k: u32, k1: u32) -> ABlock {
  var out: ABlock;
  let lda = params.lda;
  if (!TRANS_A) {
    // (M, K) rows: K is a multiple of 4 (vec4 layout), so k .. k+3 lie inside together
    for (var i = 0u; i < 8u; i++) {
      out.r[i] = load_a4(base + (row0 + i) * lda + k, row0 + i < params.m);
    }
    return out;
  }
  // (K, M): rows k+kk, 8 columns from row0 (M a multiple of 4), transposed in registers
  var lo: array<vec4<f32>, 4>;
  var hi: array<vec4<f32>, 4>;
  for (var kk = 0u; kk < 4u; kk++) {
    let kin = k + kk < k1;
    lo[kk] = load_a4(base + (k + kk) * lda + row0, kin && row0 < params.m);
    hi[kk] = load_a4(base + (k + kk) * lda + row0 + 4u, kin && row0 + 4u < params.m);
  }
  for (var i = 0u; i < 4u; i++) {
    out.r[i] = vec4<f32>(lo[0][i], lo[1][i], lo[2][i], lo[3][i]);
    out.r[i + 4u] = vec4<f32>(hi[0][i], hi[1][i], hi[2][i], hi[3][i]);
  }
  return out;
}

// Columns col0 .. col0+7 of op(B) at k+kk for kk = 0..3: lo[kk] the first 4, hi[kk] the next.
struct BBlock { lo: array<vec4<f32>, 4>, hi: array<vec4<f32>, 4> }

fn b_block(base: u32, col0: u32, k: u32, k1: u32) -> BBlock {
  var out: BBlock;
  let ldb = params.ldb;
  if (!TRANS_B) {
    // (K, N): rows k+kk, 8 columns from col0 (N a multiple of 4)
    for (var kk = 0u; kk < 4u; kk++) {
      let kin = k + kk < k1;
      out.lo[kk] = load_b4(base + (k + kk) * ldb + col0, kin && col0 < params.n);
      out.hi[kk] = load_b4(base + (k + kk) * ldb + col0 + 4u, kin && col0 + 4u < params.n);
    }
    return out;
  }
  // (N, K) rows: column j's k .. k+3 in one vec4 (K a multiple of 4), transposed in registers
  var col: array<vec4<f32>, 8>;
  for (var j = 0u; j < 8u; j++) {
    col[j] = load_b4(base + (col0 + j) * ldb + k, col0 + j < params.n);
  }
  for (var kk = 0u; kk < 4u; kk++) {
    out.lo[kk] = vec4<f32>(col[0][kk], col[1][kk], col[2][kk], col[3][kk]);
    out.hi[kk] = vec4<f32>(col[4][kk], col[5][kk], col[6][kk], col[7][kk]);
  }
  return out;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let ent = entry_of(params.z_offset + wid.z);
  let row0 = (wid.y * WG_Y + lid.y) * 8u;
  let col0 = (wid.x * WG_X + lid.x) * 8u;

  // c{i}{h} = C[row0 + i][columns col0 + 4h .. +3], named registers as in matmul_body.wgsl.
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0); var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0); var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);

  for (var k = ent.k0; k < ent.k1; k += 4u) {
    let ab = a_block(ent.a, row0, k, ent.k1);
    let bb = b_block(ent.b, col0, k, ent.k1);
    for (var kk = 0u; kk < 4u; kk++) {
      let b0 = bb.lo[kk];
      let b1 = bb.hi[kk];
      c00 += ab.r[0][kk] * b0; c01 += ab.r[0][kk] * b1;
      c10 += ab.r[1][kk] * b0; c11 += ab.r[1][kk] * b1;
      c20 += ab.r[2][kk] * b0; c21 += ab.r[2][kk] * b1;
      c30 += ab.r[3][kk] * b0; c31 += ab.r[3][kk] * b1;
      c40 += ab.r[4][kk] * b0; c41 += ab.r[4][kk] * b1;
      c50 += ab.r[5][kk] * b0; c51 += ab.r[5][kk] * b1;
      c60 += ab.r[6][kk] * b0; c61 += ab.r[6][kk] * b1;
      c70 += ab.r[7][kk] * b0; c71 += ab.r[7][kk] * b1;
    }
  }

  store_row(ent.c, ent.ldc, row0, col0, c00, c01);
  store_row(ent.c, ent.ldc, row0 + 1u, col0, c10, c11);
  store_row(ent.c, ent.ldc, row0 + 2u, col0, c20, c21);
  store_row(ent.c, ent.ldc, row0 + 3u, col0, c30, c31);
  store_row(ent.c, ent.ldc, row0 + 4u, col0, c40, c41);
  store_row(ent.c, ent.ldc, row0 + 5u, col0, c50, c51);
  store_row(ent.c, ent.ldc, row0 + 6u, col0, c60, c61);
  store_row(ent.c, ent.ldc, row0 + 7u, col0, c70, c71);
}
