// attention_small_backward_kv: the second half of attention_small's backward pass, one thread
// per key row (b, h, j), summing over the queries in order (deterministic, no atomics):
//   dk[b, j, h] = Σ_i ds[b, h, i, j] · q[b, i, h]
//   dv[b, j, h] = Σ_i dropout(P)[b, h, i, j] · dctx[b, i, h]   (the forward's mask, regenerated)
//
// Shapes: q (B, Lq, Wq) with the head columns at q_off (as in attention_small), probs and ds
//   (B, H, Lq, Lk), dctx (B, Lq, H·D), state (2) u32, dk (B, Lk, Wdk) and dv (B, Lk, Wdv)
//   written at columns dk_off.. and dv_off.. (the other columns are not touched). With DV_IN_DK
//   dv is written through dk's binding (both gradients side by side in one tensor, bound once:
//   WebGPU forbids two writable bindings that overlap).
// Thread mapping: one thread per key row, 64 per workgroup.
// Grid: ceil(B · H · Lk / 64) workgroups, folded into (x, y) when large.

override DROPOUT: bool = false;
override DV_IN_DK: bool = false;

struct Params {
  rows: u32, h: u32, lq: u32, lk: u32, d: u32,
  q_w: u32, q_off: u32, dk_w: u32, dk_off: u32, dv_w: u32, dv_off: u32,
  stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> ds: array<f32>;
@group(0) @binding(4) var<storage, read> dctx: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> dk: array<f32>;
@group(0) @binding(7) var<storage, read_write> dv: array<f32>;

//! include "dropout_hash.wgsl"

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (row >= params.rows) { return; }
  let lq = params.lq;
  let lk = params.lk;
  let d = params.d;
  let hd = params.h * d;
  let j = row % lk;
  let bh = row / lk;
  let h = bh % params.h;
  let b = bh / params.h;
  let ko = (b * lk + j) * params.dk_w + params.dk_off + h * d;
  let vo = (b * lk + j) * params.dv_w + params.dv_off + h * d;
  for (var e = 0u; e < d; e++) {
    var gk = 0.0;
    var gv = 0.0;
    for (var i = 0u; i < lq; i++) {
      let pi = (bh * lq + i) * lk + j;
      let qi = (b * lq + i) * params.q_w + params.q_off + h * d + e;
      let ci = (b * lq + i) * hd + h * d + e;
      gk += ds[pi] * q[qi];
      var p = probs[pi];
      if (DROPOUT) {
        let keep = dropout_keep(state[0], state[1], params.stream, pi, params.threshold,
          params.keep_none);
        p = select(0.0, p * params.drop_scale, keep);
      }
      gv += p * dctx[ci];
    }
    dk[ko + e] = gk;
    if (DV_IN_DK) { dk[vo + e] = gv; } else { dv[vo + e] = gv; }
  }
}
