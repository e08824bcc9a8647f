// matmul_load_vec4: the k-tile loader of the matmul body with vec4 global loads (the operands'
// layout: matmul_operands_vec4.wgsl, included here). Needs `alias BVec = vec4<f32>;` (or
// vec4<f16>). Declares `load_tile` (and what matmul_operands_vec4.wgsl declares).

//! include "matmul_operands_vec4.wgsl"

// Fills buffer `buf` of As and Bs with the k-tile at k0. Operands stored k-major (transposed A,
// row-major B) go straight to workgroup memory; the others are read as 4x4 blocks (4 rows of 4
// k) and transposed in registers.
fn load_tile(a_base: u32, b_base: u32, row0: u32, col0: u32, k0: u32, buf: u32, t: u32) {
  let ga = 2u * WG_Y;
  let gb = 2u * WG_X;
  let ast = ga + PAD;
  let bst = gb + PAD;
  let lda = params.lda;
  let ldb = params.ldb;
  if (TRANS_A) {
    for (var e = t; e < BK * ga; e += WG_X * WG_Y) {
      let g = e % ga;
      let kk = e / ga;
      let row = row0 + 4u * g;
      let kr = k0 + kk;
      As[(buf * BK + kk) * ast + g] =
        load_a4(a_base + kr * lda + row, kr < params.k && row < params.m);
    }
  } else {
    for (var e = t; e < (BK / 4u) * ga; e += WG_X * WG_Y) {
      let q = e % (BK / 4u);
      let g = e / (BK / 4u);
      let row = row0 + 4u * g;
      let kr = k0 + 4u * q;
      let p = a_base + row * lda + kr;
      let kin = kr < params.k;
      let r0 = load_a4(p, kin && row < params.m);
      let r1 = load_a4(p + lda, kin && row + 1u < params.m);
      let r2 = load_a4(p + 2u * lda, kin && row + 2u < params.m);
      let r3 = load_a4(p + 3u * lda, kin && row + 3u < params.m);
      let s = (buf * BK + 4u * q) * ast + g;
      As[s] = vec4<f32>(r0.x, r1.x, r2.x, r3.x);
      As[s + ast] = vec4<f32>(r0.y, r1.y, r2.y, r3.y);
      As[s + 2u * ast] = vec4<f32>(r0.z, r1.z, r2.z, r3.z);
      As[s + 3u * ast] = vec4<f32>(r0.w, r1.w, r2.w, r3.w);
    }
  }
  if (!TRANS_B) {
    for (var e = t; e < BK * gb; e += WG_X * WG_Y) {
      let g = e % gb;
      let kk = e / gb;
      let col = col0 + 4u * g;
      let kr = k0 + kk;
      Bs[(buf * BK + kk) * bst + g] =
        load_b4(b_base + kr * ldb + col, kr < params.k && col < params.n);
    }
  } else {
    for (var e = t; e < (BK / 4u) * gb; e += WG_X * WG_Y) {
      let q = e % (BK / 4u);
      let g = e / (BK / 4u);
      let col = col0 + 4u * g;
      let kr = k0 + 4u * q;
      let p = b_base + col * ldb + kr;
      let kin = kr < params.k;
      let r0 = load_b4(p, kin && col < params.n);
      let r1 = load_b4(p + ldb, kin && col + 1u < params.n);
      let r2 = load_b4(p + 2u * ldb, kin && col + 2u < params.n);
      let r3 = load_b4(p + 3u * ldb, kin && col + 3u < params.n);
      let s = (buf * BK + 4u * q) * bst + g;
      Bs[s] = vec4<f32>(r0.x, r1.x, r2.x, r3.x);
      Bs[s + bst] = vec4<f32>(r0.y, r1.y, r2.y, r3.y);
      Bs[s + 2u * bst] = vec4<f32>(r0.z, r1.z, r2.z, r3.z);
      Bs[s + 3u * bst] = vec4<f32>(r0.w, r1.w, r2.w, r3.w);
    }
  }
}
