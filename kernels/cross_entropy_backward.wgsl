// cross_entropy_backward: dlogits[r, k] (+)= (softmax(logits[r])[k] - [k == label_r]) · g / n_valid
// on rows whose label lies in [0, V), and 0 on the other rows (ignore index -100), where
// g = scale (· dloss[0] with HAS_DLOSS). With n_valid = 0 every gradient is 0.
//   softmax = exp((x - m) - log_sum) with the pair (m, log_sum) saved by cross_entropy_forward.
//
// Shapes: logits (N, V) f32, labels (N) i32, lse (N, 2) f32, n_valid (1) u32, dloss (1) f32,
//   dlogits (N, V) f32.
// Thread mapping: one thread per element e = r * V + k, 256 threads per workgroup.
// Grid: ceil(N * V / 256) workgroups, folded into (x, y) when large: e = (wid.x + wid.y * nwg.x)
//   * 256 + lid.x, and threads with e >= N * V do nothing.

// Multiply by dloss[0] (the upstream gradient of the loss) as well as by params.scale.
override HAS_DLOSS: bool = false;
// Add into dlogits instead of overwriting it.
override ACCUMULATE: bool = false;

struct Params {
  n: u32, v: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> n_valid: array<u32>;
@group(0) @binding(5) var<storage, read> dloss: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let e = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  let v = params.v;
  if (e >= params.n * v) { return; }
  let row = e / v;
  let col = e - row * v;
  let label = labels[row];
  let count = n_valid[0];
  var grad = 0.0;
  if (label >= 0 && u32(label) < v && count > 0u) {
    var g = params.scale;
    if (HAS_DLOSS) { g *= dloss[0]; }
    let p = exp((logits[e] - lse[2u * row]) - lse[2u * row + 1u]);
    var onehot = 0.0;
    if (col == u32(label)) { onehot = 1.0; }
    grad = (p - onehot) * (g / f32(count));
  }
  if (ACCUMULATE) { grad = dlogits[e] + grad; }
  dlogits[e] = grad;
}
