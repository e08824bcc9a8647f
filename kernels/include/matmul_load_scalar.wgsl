// matmul_load_scalar: the k-tile loader of the matmul body for operands of any layout (any
// strides and offsets): one element per load. Needs `alias BElem = f32;` (or f16) in the kernel.
// Declares the bindings `a` (1, f32) and `b` (2, BElem) and `load_a`, `load_b`, `load_tile`.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<BElem>;

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
  if (CHECK && (row >= params.m || kk >= params.k)) { return 0.0; }
  if (TRANS_A) { return a[base + kk * params.lda + row]; }
  return a[base + row * params.lda + kk];
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
  if (CHECK && (kk >= params.k || col >= params.n)) { return 0.0; }
  if (TRANS_B) { return f32(b[base + col * params.ldb + kk]); }
  return f32(b[base + kk * params.ldb + col]);
}

// Fills buffer `buf` of As and Bs with the k-tile at k0. Neighbouring threads take neighbouring
// memory: along k for row-major A and transposed B, along rows (columns) otherwise.
fn load_tile(a_base: u32, b_base: u32, row0: u32, col0: u32, k0: u32, buf: u32, t: u32) {
  let ga = 2u * WG_Y;
  let gb = 2u * WG_X;
  let ast = ga + PAD;
  let bst = gb + PAD;
  for (var e = t; e < BK * ga; e += WG_X * WG_Y) {
    var ak = e % BK;
    var ag = e / BK;
    if (TRANS_A) { ag = e % ga; ak = e / ga; }
    let ar = row0 + 4u * ag;
    As[(buf * BK + ak) * ast + ag] = vec4<f32>(
      load_a(a_base, ar, k0 + ak), load_a(a_base, ar + 1u, k0 + ak),
      load_a(a_base, ar + 2u, k0 + ak), load_a(a_base, ar + 3u, k0 + ak));
  }
  for (var e = t; e < BK * gb; e += WG_X * WG_Y) {
    var bg = e % gb;
    var bk = e / gb;
    if (TRANS_B) { bk = e % BK; bg = e / BK; }
    let bc = col0 + 4u * bg;
    Bs[(buf * BK + bk) * bst + bg] = vec4<f32>(
      load_b(b_base, k0 + bk, bc), load_b(b_base, k0 + bk, bc + 1u),
      load_b(b_base, k0 + bk, bc + 2u), load_b(b_base, k0 + bk, bc + 3u));
  }
}
