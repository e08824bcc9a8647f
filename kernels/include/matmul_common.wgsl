// matmul_common: what the matmul kernels share (kernels/include/matmul_body.wgsl, the tiled
// product, and kernels/include/matmul_direct_body.wgsl, the one without workgroup memory): the
// layout and epilogue overrides, the bindings `params` (0), `bias` (3), `c` (4) and `state` (5),
// `store_row` (alpha, bias, ACCUMULATE and the epilogue on a finished 8-column row of a
// thread's block, or raw partial sums under SPLIT) and `entry_of` (a workgroup's batch entry:
// the operands' bases and its k-range). Include after matmul_params.wgsl.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
// False when M, N are multiples of the tile and K of 16: loads skip their bounds checks.
override CHECK: bool = true;
// Threads per workgroup along N (x) and M (y): tiles of 128x128 (16, 16), 64x64 (8, 8),
// 32x32 (4, 4), 16x128 (x 16, y 2) or 128x16 (x 2, y 16); each thread an 8x8 block.
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
override SPLIT: bool = false;
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<u32>;

//! include "matmul_epilogue.wgsl"

// Writes C[row][col .. col+7] = epilogue(alpha * (lo, hi) (+ bias) (+ C)), within bounds; raw
// partial sums under SPLIT.
fn store_row(base: u32, ld: u32, row: u32, col: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (row >= params.m) { return; }
  for (var j = 0u; j < 8u; j++) {
    let cc = col + j;
    if (cc >= params.n) { return; }
    var v = select(hi[j & 3u], lo[j & 3u], j < 4u);
    let idx = base + row * ld + cc;
    if (!SPLIT) {
      v *= params.alpha;
      if (HAS_BIAS) { v += bias[cc]; }
      if (ACCUMULATE) { v += c[idx]; }
      v = epilogue(v, idx - params.c_offset);
    }
    c[idx] = v;
  }
}

// Where batch entry (and split-K chunk) `zz` reads and writes: the operands' first elements,
// C's row stride and the k-range [k0, k1).
struct Entry { a: u32, b: u32, c: u32, ldc: u32, k0: u32, k1: u32 }

fn entry_of(zz: u32) -> Entry {
  var z = zz;
  var k0 = 0u;
  var k1 = params.k;
  if (SPLIT) {
    z = zz / params.splits;
    k0 = (zz % params.splits) * params.k_chunk;
    k1 = min(params.k, k0 + params.k_chunk);
  }
  let zo = z / params.batch_inner;
  let zi = z % params.batch_inner;
  var e = Entry(
    params.a_offset + zo * params.a_outer + zi * params.a_inner,
    params.b_offset + zo * params.b_outer + zi * params.b_inner,
    params.c_offset + zo * params.c_outer + zi * params.c_inner,
    params.ldc,
    k0,
    k1,
  );
  if (SPLIT) {
    e.c = zz * params.m * params.n;
    e.ldc = params.n;
  }
  return e;
}
