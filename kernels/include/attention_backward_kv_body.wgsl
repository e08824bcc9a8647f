// attention_backward_kv_body: the body of the second half of the fused attention backward pass
// (attention_small_backward_kv with scalar loads, attention_vec4_backward_kv with vec4 loads; the
// including kernel includes row_f32.wgsl or row_vec4.wgsl first, as for
// attention_forward_body.wgsl; head sizes, row widths and column offsets in the params are in
// units of V), for each key row (b, h, j), summing over the queries in order
// (deterministic, no atomics):
//   dk[b, j, h] = Σ_i ds[b, h, i, j] · q[b, i, h]
//   dv[b, j, h] = Σ_i dropout(P)[b, h, i, j] · dctx[b, i, h]   (the forward's mask, regenerated)
//
// Shapes: q (B, Lq, Wq) with the head columns at q_off (as in attention_small), probs and ds
//   (B, H, Lq, Lk), dctx (B, Lq, H·D), state (2) u32, dk (B, Lk, Wdk) and dv (B, Lk, Wdv)
//   written at columns dk_off.. and dv_off.. (the other columns are not touched). With DV_IN_DK
//   dv is written through dk's binding (both gradients side by side in one tensor, bound once:
//   WebGPU forbids two writable bindings that overlap).
// Thread mapping: one thread per key row, 64 per workgroup; with ROW_CACHED (D <= 128) the
//   queries are the outer loop and the row's D sums live in private arrays. With ROWS > 1 a
//   thread computes ROWS key rows of one head (multi_rows).
// Grid: ceil(B · H · Lk / 64) workgroups (ceil(B · H · ceil(Lk / ROWS) / 64) with ROWS),
//   folded into (x, y) when large.

override DROPOUT: bool = false;
override DV_IN_DK: bool = false;
// d <= D_MAX floats: a thread keeps its row's dk and dv in private arrays and reads each
// probability once; otherwise it makes one pass over the queries per column.
override ROW_CACHED: bool = true;

const D_MAX: u32 = 128u;

struct Params {
  rows: u32, h: u32, lq: u32, lk: u32, d: u32,
  q_w: u32, q_off: u32, dk_w: u32, dk_off: u32, dv_w: u32, dv_off: u32,
  stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<V>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> ds: array<f32>;
@group(0) @binding(4) var<storage, read> dctx: array<V>;
@group(0) @binding(5) var<storage, read> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> dk: array<V>;
@group(0) @binding(7) var<storage, read_write> dv: array<V>;

//! include "attention_common.wgsl"

fn write_dv(i: u32, g: V) {
  if (DV_IN_DK) { dk[i] = g; } else { dv[i] = g; }
}

// ROWS > 1: thread t computes key rows j0 .. j0 + ROWS - 1 of one head (j0 = ROWS · (t mod
// blocks), blocks = ceil(Lk / ROWS) per head), each query and context-gradient row it loads
// serving ROWS rows; per row the same operations in the same order as one row per thread. Needs
// ROW_CACHED and DV (the launcher checks).
fn multi_rows(t: u32) {
  let lq = params.lq;
  let lk = params.lk;
  let d = head_size();
  let hd = params.h * d;
  let at = row_block(t, lk);
  if (at.bh * lk >= params.rows) { return; }
  let j0 = at.pos;
  let bh = at.bh;
  let h = at.h;
  let b = at.b;
  let dkey = dropout_key();
  // rows past Lk (the head's last block) compute row Lk - 1 again and store nothing
  var gk: array<array<V, DQ_MAX>, ROWS_MAX>;
  var gv: array<array<V, DQ_MAX>, ROWS_MAX>;
  for (var r = 0u; r < ROWS; r++) {
    for (var e = 0u; e < d; e++) {
      gk[r][e] = V(0.0);
      gv[r][e] = V(0.0);
    }
  }
  for (var i = 0u; i < lq; i++) {
    let qi = (b * lq + i) * params.q_w + params.q_off + h * d;
    let ci = (b * lq + i) * hd + h * d;
    var s: array<f32, ROWS_MAX>;
    var p: array<f32, ROWS_MAX>;
    for (var r = 0u; r < ROWS; r++) {
      let pi = (bh * lq + i) * lk + min(j0 + r, lk - 1u);
      s[r] = ds[pi];
      p[r] = dropped(probs[pi], pi, dkey);
    }
    for (var e = 0u; e < d; e++) {
      let qv = q[qi + e];
      let cv = dctx[ci + e];
      for (var r = 0u; r < ROWS; r++) {
        gk[r][e] += s[r] * qv;
        gv[r][e] += p[r] * cv;
      }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    if (j0 + r < lk) {
      let ko = (b * lk + j0 + r) * params.dk_w + params.dk_off + h * d;
      let vo = (b * lk + j0 + r) * params.dv_w + params.dv_off + h * d;
      for (var e = 0u; e < d; e++) {
        dk[ko + e] = gk[r][e];
        write_dv(vo + e, gv[r][e]);
      }
    }
  }
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let row = (wid.x + wid.y * nwg.x) * 64u + lid.x;
  if (ROWS > 1u) {
    multi_rows(row);
    return;
  }
  if (row >= params.rows) { return; }
  let lq = params.lq;
  let lk = params.lk;
  let d = head_size();
  let hd = params.h * d;
  let at = head_row(row, lk);
  let j = at.pos;
  let bh = at.bh;
  let h = at.h;
  let b = at.b;
  let ko = (b * lk + j) * params.dk_w + params.dk_off + h * d;
  let vo = (b * lk + j) * params.dv_w + params.dv_off + h * d;
  let key = dropout_key();
  if (ROW_CACHED) {
    // Queries outer: each probability's dropout bit is drawn once, not once per column; the
    // sums over i keep their order, so the results equal the column-by-column loop's.
    var gk: array<V, D_MAX / VW>;
    var gv: array<V, D_MAX / VW>;
    for (var e = 0u; e < d; e++) {
      gk[e] = V(0.0);
      gv[e] = V(0.0);
    }
    for (var i = 0u; i < lq; i++) {
      let pi = (bh * lq + i) * lk + j;
      let qi = (b * lq + i) * params.q_w + params.q_off + h * d;
      let ci = (b * lq + i) * hd + h * d;
      let s = ds[pi];
      let p = dropped(probs[pi], pi, key);
      for (var e = 0u; e < d; e++) {
        gk[e] += s * q[qi + e];
        gv[e] += p * dctx[ci + e];
      }
    }
    for (var e = 0u; e < d; e++) {
      dk[ko + e] = gk[e];
      write_dv(vo + e, gv[e]);
    }
    return;
  }
  for (var e = 0u; e < d; e++) {
    var gk = V(0.0);
    var gv = V(0.0);
    for (var i = 0u; i < lq; i++) {
      let pi = (bh * lq + i) * lk + j;
      let qi = (b * lq + i) * params.q_w + params.q_off + h * d + e;
      let ci = (b * lq + i) * hd + h * d + e;
      gk += ds[pi] * q[qi];
      gv += dropped(probs[pi], pi, key) * dctx[ci];
    }
    dk[ko + e] = gk;
    write_dv(vo + e, gv);
  }
}
