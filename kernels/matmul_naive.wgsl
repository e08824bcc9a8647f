// matmul_naive: C = A · B with 16x16 shared-memory tiles and one output per thread. The
// benchmark's baseline: its GFLOP/s calibrates a machine (see tasks/bench.ts), the model never
// uses it.
//
// Shapes: A (M, K), B (K, N), C (M, N), all row-major and contiguous.
// Thread mapping: a 16x16 workgroup computes a 16x16 tile of C, one element per thread.
// Grid: (ceil(N / 16), ceil(M / 16), 1).

struct Params {
  m: u32,
  n: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> As: array<f32, 256>;
var<workgroup> Bs: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * 16u + lid.y;
  let col = wid.x * 16u + lid.x;
  var acc = 0.0;
  for (var k0 = 0u; k0 < params.k; k0 += 16u) {
    let ka = k0 + lid.x;
    let kb = k0 + lid.y;
    As[lid.y * 16u + lid.x] = select(0.0, a[row * params.k + ka], row < params.m && ka < params.k);
    Bs[lid.y * 16u + lid.x] = select(0.0, b[kb * params.n + col], kb < params.k && col < params.n);
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      acc += As[lid.y * 16u + kk] * Bs[kk * 16u + lid.x];
    }
    workgroupBarrier();
  }
  if (row < params.m && col < params.n) {
    c[row * params.n + col] = acc;
  }
}
