// matmul: C = alpha * op(A) · op(B) (+ bias[n]) (+ C when ACCUMULATE); strided and batched.
//
// Shapes (per batch entry z): op(A) (M, K), op(B) (K, N), C (M, N), bias (N).
//   A is stored (M, K) with row stride lda, or (K, M) when TRANS_A.
//   B is stored (K, N) with row stride ldb, or (N, K) when TRANS_B.
//   C is stored (M, N) with row stride ldc.
// Batch: z = z_offset + workgroup_id.z splits into (zo, zi) = (z / batch_inner, z % batch_inner);
//   each operand starts at offset + zo * outer + zi * inner (elements). Stride 0 broadcasts.
// Thread mapping: a 16x16 workgroup computes a 64x64 tile of C, each thread a 4x4 register
//   block (rows 4*ly.., columns 4*lx..). K advances 16 at a time through workgroup memory,
//   where A is stored k-major as vec4 of 4 rows and B as vec4 of 4 columns.
// Grid: (ceil(N / 64), ceil(M / 64), batch entries of this chunk).

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

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

var<workgroup> As: array<vec4<f32>, 256>; // As[k * 16 + g] = A[4g .. 4g+3][k]
var<workgroup> Bs: array<vec4<f32>, 256>; // Bs[k * 16 + g] = B[k][4g .. 4g+3]

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
  if (row >= params.m || kk >= params.k) { return 0.0; }
  if (TRANS_A) { return a[base + kk * params.lda + row]; }
  return a[base + row * params.lda + kk];
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
  if (kk >= params.k || col >= params.n) { return 0.0; }
  if (TRANS_B) { return b[base + col * params.ldb + kk]; }
  return b[base + kk * params.ldb + col];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = params.z_offset + wid.z;
  let zo = z / params.batch_inner;
  let zi = z % params.batch_inner;
  let a_base = params.a_offset + zo * params.a_outer + zi * params.a_inner;
  let b_base = params.b_offset + zo * params.b_outer + zi * params.b_inner;
  let c_base = params.c_offset + zo * params.c_outer + zi * params.c_inner;
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let t = lid.y * 16u + lid.x;
  // Loader roles: which k and which group of 4 rows (A) or columns (B) this thread fetches.
  // The fastest-varying index follows memory order so neighbouring threads read neighbours.
  var a_k = t % 16u;
  var a_g = t / 16u;
  if (TRANS_A) { a_k = t / 16u; a_g = t % 16u; }
  var b_k = t / 16u;
  var b_g = t % 16u;
  if (TRANS_B) { b_k = t % 16u; b_g = t / 16u; }
  let ar = row0 + a_g * 4u;
  let bc = col0 + b_g * 4u;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < params.k; k0 += 16u) {
    let ka = k0 + a_k;
    As[a_k * 16u + a_g] = vec4<f32>(
      load_a(a_base, ar, ka), load_a(a_base, ar + 1u, ka),
      load_a(a_base, ar + 2u, ka), load_a(a_base, ar + 3u, ka));
    let kb = k0 + b_k;
    Bs[b_k * 16u + b_g] = vec4<f32>(
      load_b(b_base, kb, bc), load_b(b_base, kb, bc + 1u),
      load_b(b_base, kb, bc + 2u), load_b(b_base, kb, bc + 3u));
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let av = As[kk * 16u + lid.y];
      let bv = Bs[kk * 16u + lid.x];
      acc0 += av.x * bv;
      acc1 += av.y * bv;
      acc2 += av.z * bv;
      acc3 += av.w * bv;
    }
    workgroupBarrier();
  }

  let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + lid.y * 4u + i;
    if (row >= params.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + lid.x * 4u + j;
      if (col >= params.n) { break; }
      var v = params.alpha * acc[i][j];
      if (HAS_BIAS) { v += bias[col]; }
      let idx = c_base + row * params.ldc + col;
      if (ACCUMULATE) { v += c[idx]; }
      c[idx] = v;
    }
  }
}
