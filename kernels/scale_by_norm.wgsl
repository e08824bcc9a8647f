// scale_by_norm: x[i] *= min(1, max_norm / (norm[0] + 1e-6)), in place: the scaling step of
// gradient-norm clipping with PyTorch's clip_grad_norm_ semantics (the coefficient is applied
// even when it is 1, which leaves x unchanged). norm is read on the GPU: no readback.
//
// Shapes: norm (1) f32 (the global L2 norm of all gradients), x (N) f32.
// Thread mapping: one thread per element, 256 threads per workgroup.
// Grid: ceil(N / 256) workgroups, folded into (x, y) when large: i = (wid.x + wid.y * nwg.x) *
//   256 + lid.x, and threads with i >= N do nothing.

struct Params {
  n: u32, max_norm: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let coef = min(1.0, params.max_norm / (norm[0] + 1e-6));
  x[i] = x[i] * coef;
}
