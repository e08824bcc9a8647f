// matmul_body: C = epilogue(alpha * op(A) · op(B) (+ bias[n]) (+ C when ACCUMULATE)); strided and
// batched; the epilogue (matmul_epilogue.wgsl) is an optional ReLU then dropout.
// The body of the matmul kernels (kernels/matmul*.wgsl): each declares the element types of A
// and B, includes matmul_params.wgsl, this body, then one loader snippet (matmul_load_vec4.wgsl
// or matmul_load_scalar.wgsl: the bindings `a` (1) and `b` (2) and `load_tile`), in that order:
// naga 29 (Deno 2.9) panics when a function is declared before the override-sized workgroup
// arrays it uses. A is f32;
// B is f32 or f16 (frozen weights), converted to f32 as it is loaded: products accumulate in
// f32. Includes matmul_common.wgsl (`params`, `bias`, `c`, `state`, `store_row`, `entry_of`,
// the epilogue); declares the workgroup arrays `As`, `Bs` and `main`.
//
// Shapes (per batch entry z): op(A) (M, K), op(B) (K, N), C (M, N), bias (N).
//   A is stored (M, K) with row stride lda, or (K, M) when TRANS_A.
//   B is stored (K, N) with row stride ldb, or (N, K) when TRANS_B.
//   C is stored (M, N) with row stride ldc.
// Batch: entry z = z_offset + workgroup_id.z splits into (zo, zi) = (z / batch_inner,
//   z % batch_inner); each operand starts at offset + zo * outer + zi * inner (elements).
//   Stride 0 broadcasts.
// Split-K (SPLIT): workgroup z covers entry z / splits and the k-range of chunk z % splits
//   ([s * k_chunk, min(K, (s + 1) * k_chunk)), k_chunk a multiple of 16); it writes its raw
//   partial sums to c = scratch (splits x entries x M x N, entry z's chunk s at
//   (z * splits + s) * M * N, rows N apart), and kernels/matmul_reduce.wgsl adds the chunks in
//   order and applies alpha, bias, ACCUMULATE and the epilogue. No atomics: the same bits on
//   every run.
// Thread mapping: a WG_Y x WG_X workgroup computes a (8 WG_Y) x (8 WG_X) tile of C, each
//   thread an 8x8 register block (rows 8*ly.., columns 8*lx..). K advances 16 at a time through
//   workgroup memory, where A is kept k-major as vec4 of 4 rows and B as vec4 of 4 columns,
//   each k-row of PAD extra vec4 (against bank conflicts of the transposing stores). NBUF = 2
//   double-buffers the k-tiles: the next tile is loaded while the current one is multiplied,
//   one barrier per tile instead of two.
// Grid: (ceil(N / (8 WG_X)), ceil(M / (8 WG_Y)), entries (x splits) of this chunk).

override PAD: u32 = 0u;
override NBUF: u32 = 1u;

//! include "matmul_common.wgsl"

// NBUF buffers of BK k-rows of 2 WG_Y (A) or 2 WG_X (B) vec4 groups plus PAD.
var<workgroup> As: array<vec4<f32>, NBUF * BK * (2u * WG_Y + PAD)>; // [k][g] = A[4g .. 4g+3][k]
var<workgroup> Bs: array<vec4<f32>, NBUF * BK * (2u * WG_X + PAD)>; // [k][g] = B[k][4g .. 4g+3]

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let ent = entry_of(params.z_offset + wid.z);
  let a_base = ent.a;
  let b_base = ent.b;
  let c_base = ent.c;
  let ldc = ent.ldc;
  let k_begin = ent.k0;
  let k_end = ent.k1;
  let row0 = wid.y * 8u * WG_Y;
  let col0 = wid.x * 8u * WG_X;
  let t = lid.y * WG_X + lid.x;
  let ast = 2u * WG_Y + PAD;
  let bst = 2u * WG_X + PAD;

  // c{i}{h} = C[row 8ly+i][columns 8lx+4h .. +3]. Named registers rather than an array: a
  // dynamically indexed array would live in memory on some compilers (llvmpipe: 1.5x slower).
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0); var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0); var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);

  let tiles = (k_end - k_begin + BK - 1u) / BK;
  if (NBUF == 2u && tiles > 0u) {
    load_tile(a_base, b_base, row0, col0, k_begin, 0u, t);
    workgroupBarrier();
  }
  for (var it = 0u; it < tiles; it++) {
    var buf = 0u;
    if (NBUF == 2u) {
      // Fill the other buffer (read before the previous barrier) while this one is used.
      buf = it & 1u;
      if (it + 1u < tiles) {
        load_tile(a_base, b_base, row0, col0, k_begin + (it + 1u) * BK, buf ^ 1u, t);
      }
    } else {
      load_tile(a_base, b_base, row0, col0, k_begin + it * BK, 0u, t);
      workgroupBarrier();
    }
    let ab = buf * BK * ast + 2u * lid.y;
    let bb = buf * BK * bst + 2u * lid.x;
    for (var kk = 0u; kk < BK; kk++) {
      let a0 = As[ab + kk * ast];
      let a1 = As[ab + kk * ast + 1u];
      let b0 = Bs[bb + kk * bst];
      let b1 = Bs[bb + kk * bst + 1u];
      c00 += a0.x * b0; c01 += a0.x * b1;
      c10 += a0.y * b0; c11 += a0.y * b1;
      c20 += a0.z * b0; c21 += a0.z * b1;
      c30 += a0.w * b0; c31 += a0.w * b1;
      c40 += a1.x * b0; c41 += a1.x * b1;
      c50 += a1.y * b0; c51 += a1.y * b1;
      c60 += a1.z * b0; c61 += a1.z * b1;
      c70 += a1.w * b0; c71 += a1.w * b1;
    }
    workgroupBarrier();
  }

  let r = row0 + 8u * lid.y;
  let col = col0 + 8u * lid.x;
  store_row(c_base, ldc, r, col, c00, c01);
  store_row(c_base, ldc, r + 1u, col, c10, c11);
  store_row(c_base, ldc, r + 2u, col, c20, c21);
  store_row(c_base, ldc, r + 3u, col, c30, c31);
  store_row(c_base, ldc, r + 4u, col, c40, c41);
  store_row(c_base, ldc, r + 5u, col, c50, c51);
  store_row(c_base, ldc, r + 6u, col, c60, c61);
  store_row(c_base, ldc, r + 7u, col, c70, c71);
}
