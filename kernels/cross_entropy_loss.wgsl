// cross_entropy_loss: the mean token loss over valid rows, loss[0] = Σ row_loss / n_valid, and
// n_valid[0] = the number of rows whose label lies in [0, V). With no valid row the loss is 0
// (not NaN) and n_valid is 0.
//
// Shapes: labels (N) i32, row_loss (N) f32 (from cross_entropy_forward), loss (1) f32,
//   n_valid (1) u32.
// Thread mapping: one workgroup of 256 threads. Thread t sums rows t, t + 256, ... in order,
//   then a tree in workgroup memory adds the 256 partial sums in a fixed order (deterministic).
// Grid: 1 workgroup.

struct Params {
  n: u32, v: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> n_valid: array<u32>;

var<workgroup> wsum: array<f32, 256>;
var<workgroup> wcount: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x;
  var s = 0.0;
  var count = 0u;
  for (var r = t; r < params.n; r += 256u) {
    let label = labels[r];
    if (label >= 0 && u32(label) < params.v) {
      s += row_loss[r];
      count += 1u;
    }
  }
  wsum[t] = s;
  wcount[t] = count;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      wsum[t] += wsum[t + stride];
      wcount[t] += wcount[t + stride];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let c = wcount[0];
    var mean = 0.0;
    if (c > 0u) { mean = wsum[0] / f32(c); }
    loss[0] = mean;
    n_valid[0] = c;
  }
}
