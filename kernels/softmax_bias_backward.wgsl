// softmax_bias_backward: gradient of y = softmax(scale * x + bias + mask) with respect to the
// bias (H, Sq, Sk) broadcast over B, summed over the batch in order b = 0 .. B - 1
// (deterministic, no atomics):
//   dbias[h, q, k] = sum_b y[b, h, q, k] * (dout[b, h, q, k] - dot[b, h, q]),
//   dot[b, h, q] = sum_k dout[b, h, q, k] * y[b, h, q, k],
// or dbias += ... when ACCUMULATE (T5 shares one position bias across layers).
//
// Shapes: dout (B, H, Sq, Sk), y (B, H, Sq, Sk), dbias (H, Sq, Sk).
// Thread mapping: one workgroup of 64 threads per bias row (h, q); it walks the batch, and for
//   each b workgroup_sum64 (kernels/include/reduce64.wgsl: deterministic; a tree, or subgroup
//   reductions where the device has them; safe to call once per b) gives dot, then thread t updates keys t, t + 64, ... of dbias, which no
//   other thread touches.
// Grid: H * Sq workgroups, folded into (x, y) by the runtime beyond 65535; bias row = wid.x +
//   wid.y * nwg.x, and workgroups past the last row return (uniformly, before any barrier).

override ACCUMULATE: bool = false;

struct Params {
  batch: u32,
  hsq: u32,
  sk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbias: array<f32>;

//! include "reduce64.wgsl"

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let hq = wid.x + wid.y * nwg.x;
  if (hq >= params.hsq) { return; }
  let t = ids.t;
  let sk = params.sk;
  let out = hq * sk;
  for (var b = 0u; b < params.batch; b++) {
    let base = (b * params.hsq + hq) * sk;
    var p = 0.0;
    for (var k = t; k < sk; k += 64u) {
      p += dout[base + k] * y[base + k];
    }
    let dot = workgroup_sum64(ids, p);
    for (var k = t; k < sk; k += 64u) {
      var g = y[base + k] * (dout[base + k] - dot);
      if (b > 0u || ACCUMULATE) { g += dbias[out + k]; }
      dbias[out + k] = g;
    }
  }
}
