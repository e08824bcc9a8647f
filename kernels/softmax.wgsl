// softmax: attention probabilities over the last axis,
//   y[b, h, q, :] = softmax(scale * x[b, h, q, :] + bias[h, q, :] + mask terms),
// where a masked key's logit becomes f32 lowest (-3.4028234663852886e38), as Hugging Face adds
// torch.finfo(float32).min: rows with any unmasked key put exactly 0 on masked keys, and a
// fully masked row becomes uniform. A key k is masked when HAS_MASK and mask[b, k] < 0.5, or
// when CAUSAL and k > q + causal_offset.
//
// Shapes: x (B, H, Sq, Sk), bias (H, Sq, Sk) broadcast over B (bound to x and unused without
//   HAS_BIAS), mask (B, Sk) of 1 (keep) / 0 (masked) (bound to x and unused without HAS_MASK),
//   y (B, H, Sq, Sk). y may alias x (each element is read, then written, by the same thread).
// Algorithm: one pass keeps a per-thread running (max, sum of exp(logit - max)) ("online"
//   softmax); workgroup_max_sum64 (kernels/include/reduce_max_sum64.wgsl: deterministic; a
//   two-stage tree, or subgroup reductions where the device has them) merges the pairs (the max
//   of the maxima, then each sum rescaled by exp(its max - max)); a second pass writes
//   exp(logit - max) / sum. exp of a difference below -104 (under the smallest f32 denormal;
//   also the masked case) is taken as 0 without calling exp (exp_neg).
// Thread mapping: one workgroup of 64 threads per row (b, h, q); thread t handles keys
//   t, t + 64, ... (any Sk).
// Grid: B * H * Sq workgroups, folded into (x, y) by the runtime beyond 65535; row = wid.x +
//   wid.y * nwg.x, and workgroups past the last row return (uniformly, before any barrier).

override HAS_BIAS: bool = false;
override HAS_MASK: bool = false;
override CAUSAL: bool = false;

struct Params {
  rows: u32,
  h: u32,
  sq: u32,
  sk: u32,
  scale: f32,
  causal_offset: i32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

//! include "reduce_max_sum64.wgsl"

fn logit(xi: u32, bi: u32, mi: u32, q: u32, k: u32) -> f32 {
  var v = params.scale * x[xi + k];
  if (HAS_BIAS) { v += bias[bi + k]; }
  var masked = false;
  if (HAS_MASK) { masked = mask[mi + k] < 0.5; }
  if (CAUSAL) { masked = masked || i32(k) > i32(q) + params.causal_offset; }
  return select(v, LOWEST, masked);
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let t = ids.t;
  let sk = params.sk;
  let q = row % params.sq;
  let bh = row / params.sq;
  let xi = row * sk;
  let bi = ((bh % params.h) * params.sq + q) * sk;
  let mi = (bh / params.h) * sk;

  var m = LOWEST;
  var s = 0.0;
  for (var k = t; k < sk; k += 64u) {
    let v = logit(xi, bi, mi, q, k);
    if (v > m) {
      s = s * exp_neg(m - v) + 1.0;
      m = v;
    } else {
      s += exp_neg(v - m);
    }
  }
  let tot = workgroup_max_sum64(ids, m, s);
  let mx = tot.x;
  let sum = tot.y;
  for (var k = t; k < sk; k += 64u) {
    y[xi + k] = exp_neg(logit(xi, bi, mi, q, k) - mx) / sum;
  }
}
