// cross_entropy_forward: per-row log-sum-exp and token loss of softmax cross-entropy.
//   lse[r] = (m, log Σ_k exp(logits[r, k] - m)) with m = max_k logits[r, k]; the pair is kept
//   split so that the backward's exp((x - m) - log_sum) stays accurate for large logits.
//   row_loss[r] = (m - logits[r, label]) + log_sum when labels[r] lies in [0, V), else 0
//   (ignore index -100, or an invalid label: check labels on the host with `checkLabels`).
//
// Shapes: logits (N, V) f32, labels (N) i32, lse (N, 2) f32, row_loss (N) f32.
// Thread mapping: one workgroup of 256 threads per row. Thread t keeps an online (max, sum of
//   exp) over columns t, t + 256, ...; workgroup_max_sum256 (kernels/include/
//   reduce_max_sum256.wgsl: a tree in workgroup memory, or subgroup reductions where the device
//   has them) merges the 256 pairs in a fixed order, so the result does not depend on
//   scheduling.
// Grid: N workgroups, folded into (x, y) when N > 65535: row = wid.x + wid.y * nwg.x, and
//   workgroups with row >= N do nothing.

struct Params {
  n: u32, v: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;

//! include "reduce_max_sum256.wgsl"

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; } // uniform across the workgroup
  let v = params.v;
  let base = row * v;
  let t = ids.t;
  var m = LOWEST;
  var s = 0.0;
  for (var k = t; k < v; k += 256u) {
    let x = logits[base + k];
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
    } else {
      s += exp(x - m);
    }
  }
  let tot = workgroup_max_sum256(ids, m, s);
  if (t == 0u) {
    let mx = tot.x;
    let log_sum = log(tot.y);
    lse[2u * row] = mx;
    lse[2u * row + 1u] = log_sum;
    let label = labels[row];
    var loss = 0.0;
    if (label >= 0 && u32(label) < v) {
      loss = (mx - logits[base + u32(label)]) + log_sum;
    }
    row_loss[row] = loss;
  }
}
