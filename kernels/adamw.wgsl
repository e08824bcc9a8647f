// adamw: one AdamW step on one parameter tensor, with PyTorch's semantics (torch.optim.AdamW,
// single-tensor path), reading its hyperparameters from a GPU tensor so that they change at run
// time without rebuilding anything:
//   p ← p · decay                                     decay = 1 − lr · wd
//   m ← m + w1 · (g − m)  (torch's lerp_, w1 < 0.5)   w1 = 1 − β1
//   v ← v · β2 + (w2 · g) · g                          w2 = 1 − β2
//   p ← p + (−step_size · m) / (sqrt(v) / bc2_sqrt + eps)
//                                                     step_size = lr / (1 − β1^t),
//                                                     bc2_sqrt = sqrt(1 − β2^t)
// The derived scalars are computed by the host in float64 and rounded to f32 once, as PyTorch
// does with its Python-float scalars.
//
// With GUARDED, the step is skipped (parameter and moments untouched) when guard[0] is 0: the
// training loop's step_guard kernel clears it when the loss or the gradient norm is not finite.
//
// With CLIPPED, g is the gradient times min(1, max_norm / (norm[0] + 1e-6)): the scaling of
// gradient-norm clipping (scale_by_norm's) applied on the fly, leaving grad itself unscaled.
//
// Shapes: hyper (G, 8) f32, row params.group = (decay, w1, β2, w2, step_size, bc2_sqrt, eps, lr);
//   guard (4) u32 (read: guard[0]); norm (1) f32; grad, param, m, v (N) f32.
// Thread mapping: one thread per element, 256 threads per workgroup.
// Grid: ceil(N / 256) workgroups, folded into (x, y) when large: i = (wid.x + wid.y * nwg.x) *
//   256 + lid.x, and threads with i >= N do nothing.

override GUARDED: bool = false;
override CLIPPED: bool = false;

struct Params {
  n: u32, group: u32, max_norm: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read> guard: array<u32>;
@group(0) @binding(7) var<storage, read> norm: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  if (GUARDED && guard[0] == 0u) { return; }
  let h = params.group * 8u;
  let decay = hyper[h];
  let w1 = hyper[h + 1u];
  let beta2 = hyper[h + 2u];
  let w2 = hyper[h + 3u];
  let step_size = hyper[h + 4u];
  let bc2_sqrt = hyper[h + 5u];
  let eps = hyper[h + 6u];
  var g = grad[i];
  if (CLIPPED) { g = g * min(1.0, params.max_norm / (norm[0] + 1e-6)); }
  let p = param[i] * decay;
  let m0 = m[i];
  let m1 = fma(w1, g - m0, m0);
  let v1 = v[i] * beta2 + (w2 * g) * g;
  let denom = sqrt(v1) / bc2_sqrt + eps;
  m[i] = m1;
  v[i] = v1;
  param[i] = p + (-step_size * m1) / denom;
}
