// attention_backward_q_body: the body of the first half of the fused attention backward pass
// (attention_small_backward_q with scalar loads, attention_vec4_backward_q with vec4 loads; the
// including kernel includes row_f32.wgsl or row_vec4.wgsl first, as for
// attention_forward_body.wgsl; head sizes, row widths and column offsets in the params are in
// units of V), for each query row (b, h, i):
//   dP[j]  = dropout'(dctx[b, i, h] · v[b, j, h])          (the forward's mask, regenerated)
//   dS[j]  = scale · P[j] · (dP[j] − Σ_k dP[k] · P[k])      (written to ds: the scores' gradient)
//   dq[b, i, h] = Σ_j dS[j] · k[b, j, h]
// attention_small_backward_kv then reads ds for dk and dv.
//
// Shapes: k (B, Lk, Wk) and v (B, Lk, Wv) with the head columns at k_off and v_off (as in
//   attention_small), probs (B, H, Lq, Lk) saved by the forward, dctx (B, Lq, H·D), state (2)
//   u32, ds (B, H, Lq, Lk), dq (B, Lq, Wdq) written at columns dq_off.. (the other columns are
//   not touched). With V_IN_K the values are read from k's binding (keys and values side by
//   side in one tensor, bound once).
// Thread mapping: one thread per query row, 64 per workgroup; sums in key order. With CACHED
//   (Lk <= 128) dP lives in a private array; otherwise it is recomputed in a second pass. With
//   ROWS > 1 a thread computes ROWS query rows of one head (multi_rows).
// Grid: ceil(B · H · Lq / 64) workgroups (ceil(B · H · ceil(Lq / ROWS) / 64) with ROWS),
//   folded into (x, y) when large.

override DROPOUT: bool = false;
override CACHED: bool = true;
override V_IN_K: bool = false;

// d <= D_MAX floats: a thread keeps its row of dctx in a private array (read once, not once per
// key).
override ROW_CACHED: bool = true;

const LK_MAX: u32 = 128u;
const D_MAX: u32 = 128u;

var<private> grow: array<V, D_MAX / VW>;

struct Params {
  rows: u32, h: u32, lq: u32, lk: u32, d: u32,
  k_w: u32, k_off: u32, v_w: u32, v_off: u32, dq_w: u32, dq_off: u32,
  scale: f32, stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k: array<V>;
@group(0) @binding(2) var<storage, read> v: array<V>;
@group(0) @binding(3) var<storage, read> probs: array<f32>;
@group(0) @binding(4) var<storage, read> dctx: array<V>;
@group(0) @binding(5) var<storage, read> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> ds: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<V>;

//! include "attention_common.wgsl"

// Element i of the values (see V_IN_K).
fn value(i: u32) -> V {
  if (V_IN_K) { return k[i]; }
  return v[i];
}

// dP[j]: the gradient of probability j (after the dropout's backward).
// key is the dropout state.
fn dprob(co: u32, vo: u32, po: u32, j: u32, key: vec2u) -> f32 {
  let d = head_size();
  var acc = V(0.0);
  for (var e = 0u; e < d; e++) {
    var ge: V;
    if (ROW_CACHED) { ge = grow[e]; } else { ge = dctx[co + e]; }
    acc += ge * value(vo + j * params.v_w + e);
  }
  return dropped(hsum(acc), po + j, key);
}

// ROWS > 1: thread t computes query rows i0 .. i0 + ROWS - 1 of one head (i0 = ROWS · (t mod
// blocks), blocks = ceil(Lq / ROWS) per head), each value and key row it loads serving ROWS
// rows. dP goes through `ds` (no dynamically indexed private array: CPU adapters compile those
// slowly), dq's sums stay in registers. Per row the same sums in the same order as one row per
// thread. Needs CACHED, ROW_CACHED and DV (the launcher checks).
fn multi_rows(t: u32) {
  let lq = params.lq;
  let lk = params.lk;
  let d = head_size();
  let hd = params.h * d;
  let at = row_block(t, lq);
  if (at.bh * lq >= params.rows) { return; }
  let i0 = at.pos;
  let bh = at.bh;
  let h = at.h;
  let b = at.b;
  let ko = b * lk * params.k_w + params.k_off + h * d;
  let vo = b * lk * params.v_w + params.v_off + h * d;
  let dkey = dropout_key();
  // Rows past Lq (the head's last block) compute row Lq - 1 again and store nothing.
  var gr: array<array<V, DQ_MAX>, ROWS_MAX>;
  var po: array<u32, ROWS_MAX>;
  var dot: array<f32, ROWS_MAX>;
  for (var r = 0u; r < ROWS; r++) {
    let i = min(i0 + r, lq - 1u);
    po[r] = (bh * lq + i) * lk;
    let co = (b * lq + i) * hd + h * d;
    for (var e = 0u; e < d; e++) { gr[r][e] = dctx[co + e]; }
    dot[r] = 0.0;
  }
  for (var j = 0u; j < lk; j++) {
    var acc: array<V, ROWS_MAX>;
    for (var r = 0u; r < ROWS; r++) { acc[r] = V(0.0); }
    for (var e = 0u; e < d; e++) {
      let vv = value(vo + j * params.v_w + e);
      for (var r = 0u; r < ROWS; r++) { acc[r] += gr[r][e] * vv; }
    }
    for (var r = 0u; r < ROWS; r++) {
      let g = dropped(hsum(acc[r]), po[r] + j, dkey);
      if (i0 + r < lq) { ds[po[r] + j] = g; }
      dot[r] += g * probs[po[r] + j];
    }
  }
  var qacc: array<array<V, DQ_MAX>, ROWS_MAX>;
  for (var r = 0u; r < ROWS; r++) {
    for (var e = 0u; e < d; e++) { qacc[r][e] = V(0.0); }
  }
  for (var j = 0u; j < lk; j++) {
    var gs: array<f32, ROWS_MAX>;
    for (var r = 0u; r < ROWS; r++) {
      gs[r] = params.scale * (probs[po[r] + j] * (ds[po[r] + j] - dot[r]));
      if (i0 + r < lq) { ds[po[r] + j] = gs[r]; }
    }
    for (var e = 0u; e < d; e++) {
      let kv = k[ko + j * params.k_w + e];
      for (var r = 0u; r < ROWS; r++) { qacc[r][e] += gs[r] * kv; }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    if (i0 + r < lq) {
      let qo = (b * lq + i0 + r) * params.dq_w + params.dq_off + h * d;
      for (var e = 0u; e < d; e++) { dq[qo + e] = qacc[r][e]; }
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
  let at = head_row(row, lq);
  let i = at.pos;
  let h = at.h;
  let b = at.b;
  let co = (b * lq + i) * hd + h * d;
  let ko = b * lk * params.k_w + params.k_off + h * d;
  let vo = b * lk * params.v_w + params.v_off + h * d;
  let qo = (b * lq + i) * params.dq_w + params.dq_off + h * d;
  let po = row * lk;
  let key = dropout_key();
  if (ROW_CACHED) {
    for (var e = 0u; e < d; e++) { grow[e] = dctx[co + e]; }
  }
  var dp: array<f32, LK_MAX>;
  var dot = 0.0;
  for (var j = 0u; j < lk; j++) {
    let g = dprob(co, vo, po, j, key);
    if (CACHED) { dp[j] = g; }
    dot += g * probs[po + j];
  }
  for (var j = 0u; j < lk; j++) {
    var g: f32;
    if (CACHED) { g = dp[j]; } else { g = dprob(co, vo, po, j, key); }
    let gs = params.scale * (probs[po + j] * (g - dot));
    ds[po + j] = gs;
    if (CACHED) { dp[j] = gs; }
  }
  for (var e = 0u; e < d; e++) {
    var acc = V(0.0);
    for (var j = 0u; j < lk; j++) {
      var gs: f32;
      if (CACHED) { gs = dp[j]; } else { gs = ds[po + j]; }
      acc += gs * k[ko + j * params.k_w + e];
    }
    dq[qo + e] = acc;
  }
}
