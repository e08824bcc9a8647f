// sum_squares: partial sums of squares of one tensor, for a global L2 norm over many tensors.
//   partials[slot + w] = Σ_{k < 4096, 4096 · w + k < N} x[4096 · w + k]²
// Each tensor gets its own range of slots; l2_norm_final adds all slots in a fixed order.
//
// Shapes: x (N) f32, partials (slots) f32 (this dispatch writes slots [slot, slot + W), W =
//   ceil(N / 4096)).
// Thread mapping: a workgroup of 256 threads covers 4096 consecutive elements; thread t sums
//   elements t, t + 256, ... (16 of them) in order, then workgroup_sum256
//   (kernels/include/reduce256.wgsl: a tree in a fixed order, or subgroup reductions where the
//   device has them; deterministic) adds the 256 sums.
// Grid: W workgroups, folded into (x, y) when W > 65535: w = wid.x + wid.y * nwg.x, and
//   workgroups with 4096 · w >= N do nothing.

struct Params {
  n: u32, slot: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

//! include "reduce256.wgsl"

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  ids: ReduceIds, // ids.t = local_invocation_index (plus subgroup ids: the reduction snippet)
) {
  let w = wid.x + wid.y * nwg.x;
  let base = w * 4096u;
  if (base >= params.n) { return; } // uniform across the workgroup
  let t = ids.t;
  let end = min(params.n, base + 4096u);
  var s = 0.0;
  for (var i = base + t; i < end; i += 256u) {
    let v = x[i];
    s += v * v;
  }
  let total = workgroup_sum256(ids, s);
  if (t == 0u) {
    partials[params.slot + w] = total;
  }
}
