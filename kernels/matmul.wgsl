// matmul: C = alpha * op(A) · op(B) (+ bias[n]) (+ C when ACCUMULATE); strided and batched.
//
// Shapes (per batch entry z): op(A) (M, K), op(B) (K, N), C (M, N), bias (N).
//   A is stored (M, K) with row stride lda, or (K, M) when TRANS_A.
//   B is stored (K, N) with row stride ldb, or (N, K) when TRANS_B.
//   C is stored (M, N) with row stride ldc.
// Batch: z = z_offset + workgroup_id.z splits into (zo, zi) = (z / batch_inner, z % batch_inner);
//   each operand starts at offset + zo * outer + zi * inner (elements). Stride 0 broadcasts.
// Thread mapping: a WG x WG workgroup computes a TILE x TILE tile of C (TILE = 8 * WG), each
//   thread an 8x8 register block (rows 8*ly.., columns 8*lx..). K advances 16 at a time through
//   workgroup memory, where A is kept k-major as vec4 of 4 rows and B as vec4 of 4 columns.
// Grid: (ceil(N / TILE), ceil(M / TILE), batch entries of this chunk).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
// False when M and N are multiples of TILE and K of 16: loads skip their bounds checks.
override CHECK: bool = true;
// Threads per side of the workgroup: 8 (64x64 tiles) or 16 (128x128 tiles).
override WG: u32 = 16;

const BK = 16u;

struct Params {
  m: u32, n: u32, k: u32,
  lda: u32, ldb: u32, ldc: u32,
  batch_inner: u32, z_offset: u32,
  a_offset: u32, a_outer: u32, a_inner: u32,
  b_offset: u32, b_outer: u32, b_inner: u32,
  c_offset: u32, c_outer: u32, c_inner: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// 2 * WG groups of 4 rows (A) or 4 columns (B) per k, for BK values of k.
var<workgroup> As: array<vec4<f32>, BK * 2u * WG>; // As[k * 2WG + g] = A[4g .. 4g+3][k]
var<workgroup> Bs: array<vec4<f32>, BK * 2u * WG>; // Bs[k * 2WG + g] = B[k][4g .. 4g+3]

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
  if (CHECK && (row >= params.m || kk >= params.k)) { return 0.0; }
  if (TRANS_A) { return a[base + kk * params.lda + row]; }
  return a[base + row * params.lda + kk];
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
  if (CHECK && (kk >= params.k || col >= params.n)) { return 0.0; }
  if (TRANS_B) { return b[base + col * params.ldb + kk]; }
  return b[base + kk * params.ldb + col];
}

// Writes C[row][col .. col+7] = alpha * (lo, hi) (+ bias) (+ C), within bounds.
fn store_row(base: u32, row: u32, col: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (row >= params.m) { return; }
  for (var j = 0u; j < 8u; j++) {
    let cc = col + j;
    if (cc >= params.n) { return; }
    var v = params.alpha * select(hi[j & 3u], lo[j & 3u], j < 4u);
    if (HAS_BIAS) { v += bias[cc]; }
    let idx = base + row * params.ldc + cc;
    if (ACCUMULATE) { v += c[idx]; }
    c[idx] = v;
  }
}

@compute @workgroup_size(WG, WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = params.z_offset + wid.z;
  let zo = z / params.batch_inner;
  let zi = z % params.batch_inner;
  let a_base = params.a_offset + zo * params.a_outer + zi * params.a_inner;
  let b_base = params.b_offset + zo * params.b_outer + zi * params.b_inner;
  let c_base = params.c_offset + zo * params.c_outer + zi * params.c_inner;
  let groups = 2u * WG;
  let tile = 8u * WG;
  let row0 = wid.y * tile;
  let col0 = wid.x * tile;
  let t = lid.y * WG + lid.x;

  // c{i}{h} = C[row 8ly+i][columns 8lx+4h .. +3]. Named registers rather than an array: a
  // dynamically indexed array would live in memory on some compilers (llvmpipe: 1.5x slower).
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0); var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0); var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);

  for (var k0 = 0u; k0 < params.k; k0 += BK) {
    // Each thread fills BK * 2WG / WG² = 32 / WG vec4 slots of As and of Bs. Neighbouring
    // threads take neighbouring memory: along k for row-major A, along rows for transposed A.
    for (var q = 0u; q < 32u / WG; q++) {
      let e = q * WG * WG + t;
      var ak = e % BK;
      var ag = e / BK;
      if (TRANS_A) { ag = e % groups; ak = e / groups; }
      let ar = row0 + 4u * ag;
      As[ak * groups + ag] = vec4<f32>(
        load_a(a_base, ar, k0 + ak), load_a(a_base, ar + 1u, k0 + ak),
        load_a(a_base, ar + 2u, k0 + ak), load_a(a_base, ar + 3u, k0 + ak));
      var bg = e % groups;
      var bk = e / groups;
      if (TRANS_B) { bk = e % BK; bg = e / BK; }
      let bc = col0 + 4u * bg;
      Bs[bk * groups + bg] = vec4<f32>(
        load_b(b_base, k0 + bk, bc), load_b(b_base, k0 + bk, bc + 1u),
        load_b(b_base, k0 + bk, bc + 2u), load_b(b_base, k0 + bk, bc + 3u));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a0 = As[kk * groups + 2u * lid.y];
      let a1 = As[kk * groups + 2u * lid.y + 1u];
      let b0 = Bs[kk * groups + 2u * lid.x];
      let b1 = Bs[kk * groups + 2u * lid.x + 1u];
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
  store_row(c_base, r, col, c00, c01);
  store_row(c_base, r + 1u, col, c10, c11);
  store_row(c_base, r + 2u, col, c20, c21);
  store_row(c_base, r + 3u, col, c30, c31);
  store_row(c_base, r + 4u, col, c40, c41);
  store_row(c_base, r + 5u, col, c50, c51);
  store_row(c_base, r + 6u, col, c60, c61);
  store_row(c_base, r + 7u, col, c70, c71);
}
