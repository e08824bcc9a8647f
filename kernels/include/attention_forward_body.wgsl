// attention_forward_body: the body of the fused attention forward kernels (attention_small with
// scalar loads, attention_vec4 with vec4 loads). The including kernel includes row_f32.wgsl or
// row_vec4.wgsl first (the row type V); head sizes, row widths and column offsets in the params
// are in units of V.
//
//   probs[b, h, i, :] = softmax(scale · q[b, i, h] · k[b, :, h]ᵀ + bias[h, i, :] + mask terms)
//   ctx[b, i, h]      = dropout(probs[b, h, i, :]) · v[b, :, h]
// The same conventions as the softmax kernel (a masked key's logit is f32 lowest; a key j is
// masked when HAS_MASK and mask[b, j] < 0.5, or when CAUSAL and j > i + causal_offset) and as
// the dropout kernel (the mask bit of probability element e = ((b·H + h)·Lq + i)·Lk + j under
// the stream `stream`), so its results match the unfused path's.
//
// Shapes: q (B, Lq, Wq), k (B, Lkv, Wk) and v (B, Lkv, Wv) hold the H·D head columns starting
//   at column q_off, k_off and v_off of rows of width Wq, Wk, Wv (fused projections keep q, k
//   and v side by side); Lk <= Lkv (a cache: rows past Lk are not read); bias (H, Lq, Lk), mask
//   (B, Lk), state (2) u32 = (key), probs (B, H, Lq, Lk), ctx (B, Lq, H·D). Unused inputs
//   are bound to a placeholder. With K_IN_Q the keys are read from q's binding, with V_IN_K the
//   values from k's (from q's when both are set): one tensor holding q, k and v side by side is
//   bound once, as WebGPU forbids overlapping bindings when one is writable (an input in an
//   output's buffer is).
// Thread mapping: one thread per query row (b, h, i), 64 threads per workgroup, adding in key
//   order (deterministic). With CACHED (Lk <= 128) a thread keeps its row's scores in a private
//   array; otherwise it recomputes them in a second pass over the keys (any Lk). With ROWS > 1
//   a thread computes ROWS query rows of one head (multi_rows): fewer loads per multiply-add.
// Grid: ceil(B · H · Lq / 64) workgroups (ceil(B · H · ceil(Lq / ROWS) / 64) with ROWS),
//   folded into (x, y) by the launcher when large.

override HAS_BIAS: bool = false;
override HAS_MASK: bool = false;
override CAUSAL: bool = false;
override DROPOUT: bool = false;
override CACHED: bool = true;
override K_IN_Q: bool = false;
override V_IN_K: bool = false;

// d <= D_MAX floats: a thread keeps its query row in a private array (read once, not once per
// key).
override Q_CACHED: bool = true;

const LK_MAX: u32 = 128u;
const D_MAX: u32 = 128u;

var<private> qrow: array<V, D_MAX / VW>;
const LOWEST: f32 = -0x1.fffffep+127f;

struct Params {
  rows: u32, h: u32, lq: u32, lk: u32, d: u32, lkv: u32,
  q_w: u32, q_off: u32, k_w: u32, k_off: u32, v_w: u32, v_off: u32,
  scale: f32, causal_offset: i32,
  stream: u32, threshold: u32, keep_none: u32, drop_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<V>;
@group(0) @binding(2) var<storage, read> k: array<V>;
@group(0) @binding(3) var<storage, read> v: array<V>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read> state: array<u32>;
@group(0) @binding(7) var<storage, read_write> probs: array<f32>;
@group(0) @binding(8) var<storage, read_write> ctx: array<V>;

//! include "attention_common.wgsl"

// Element i of the keys and of the values (see K_IN_Q and V_IN_K).
fn key(i: u32) -> V {
  if (K_IN_Q) { return q[i]; }
  return k[i];
}
fn value(i: u32) -> V {
  if (V_IN_K) { return key(i); }
  return v[i];
}

// exp(d) for d <= 0, exactly 0 below -104 (also for d = -inf).
fn exp_neg(d: f32) -> f32 {
  if (d < -104.0) { return 0.0; }
  return exp(d);
}

// The logit of key j for query i of head h from the dot product of their rows: scaled, biased
// and masked (f32 lowest).
fn logit_of(dot: f32, b: u32, h: u32, i: u32, j: u32) -> f32 {
  var logit = params.scale * dot;
  if (HAS_BIAS) { logit += bias[(h * params.lq + i) * params.lk + j]; }
  var masked = false;
  if (HAS_MASK) { masked = mask[b * params.lk + j] < 0.5; }
  if (CAUSAL) { masked = masked || i32(j) > i32(i) + params.causal_offset; }
  return select(logit, LOWEST, masked);
}

// The logit of key j for query i of head h; qo and ko index the head's first column in q's row
// i and in k's row 0.
fn score(qo: u32, ko: u32, b: u32, h: u32, i: u32, j: u32) -> f32 {
  let d = head_size();
  var dot = V(0.0);
  for (var e = 0u; e < d; e++) {
    var qe: V;
    if (Q_CACHED) { qe = qrow[e]; } else { qe = q[qo + e]; }
    dot += qe * key(ko + j * params.k_w + e);
  }
  return logit_of(hsum(dot), b, h, i, j);
}

// ROWS > 1: thread t computes query rows i0 .. i0 + ROWS - 1 of one head (i0 = ROWS · (t mod
// blocks), blocks = ceil(Lq / ROWS) per head), so that each key and value row it loads serves
// ROWS rows. The rows' logits go through `probs` (no dynamically indexed private array: CPU
// adapters compile those slowly), the context's sums stay in registers. Per row the same sums
// in the same order as one row per thread. Needs CACHED, Q_CACHED and DV (the launcher checks).
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
  let ko = b * params.lkv * params.k_w + params.k_off + h * d;
  let vo = b * params.lkv * params.v_w + params.v_off + h * d;
  let dkey = dropout_key();
  // Rows past Lq (the head's last block) compute row Lq - 1 again and store nothing.
  var qr: array<array<V, DQ_MAX>, ROWS_MAX>;
  var po: array<u32, ROWS_MAX>;
  var mx: array<f32, ROWS_MAX>;
  var sum: array<f32, ROWS_MAX>;
  for (var r = 0u; r < ROWS; r++) {
    let i = min(i0 + r, lq - 1u);
    po[r] = (bh * lq + i) * lk;
    let qo = (b * lq + i) * params.q_w + params.q_off + h * d;
    for (var e = 0u; e < d; e++) { qr[r][e] = q[qo + e]; }
    mx[r] = LOWEST;
    sum[r] = 0.0;
  }
  for (var j = 0u; j < lk; j++) {
    var dot: array<V, ROWS_MAX>;
    for (var r = 0u; r < ROWS; r++) { dot[r] = V(0.0); }
    for (var e = 0u; e < d; e++) {
      let kv = key(ko + j * params.k_w + e);
      for (var r = 0u; r < ROWS; r++) { dot[r] += qr[r][e] * kv; }
    }
    for (var r = 0u; r < ROWS; r++) {
      let logit = logit_of(hsum(dot[r]), b, h, min(i0 + r, lq - 1u), j);
      if (i0 + r < lq) { probs[po[r] + j] = logit; }
      mx[r] = max(mx[r], logit);
    }
  }
  for (var j = 0u; j < lk; j++) {
    for (var r = 0u; r < ROWS; r++) { sum[r] += exp_neg(probs[po[r] + j] - mx[r]); }
  }
  var acc: array<array<V, DQ_MAX>, ROWS_MAX>;
  for (var r = 0u; r < ROWS; r++) {
    for (var e = 0u; e < d; e++) { acc[r][e] = V(0.0); }
  }
  for (var j = 0u; j < lk; j++) {
    var pd: array<f32, ROWS_MAX>;
    for (var r = 0u; r < ROWS; r++) {
      let p = exp_neg(probs[po[r] + j] - mx[r]) / sum[r];
      if (i0 + r < lq) { probs[po[r] + j] = p; }
      pd[r] = dropped(p, po[r] + j, dkey);
    }
    for (var e = 0u; e < d; e++) {
      let vv = value(vo + j * params.v_w + e);
      for (var r = 0u; r < ROWS; r++) { acc[r][e] += pd[r] * vv; }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    if (i0 + r < lq) {
      let co = (b * lq + i0 + r) * hd + h * d;
      for (var e = 0u; e < d; e++) { ctx[co + e] = acc[r][e]; }
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
  let qo = (b * lq + i) * params.q_w + params.q_off + h * d;
  let ko = b * params.lkv * params.k_w + params.k_off + h * d;
  let vo = b * params.lkv * params.v_w + params.v_off + h * d;
  let co = (b * lq + i) * hd + h * d;
  let key = dropout_key();
  if (Q_CACHED) {
    for (var e = 0u; e < d; e++) { qrow[e] = q[qo + e]; }
  }
  var s: array<f32, LK_MAX>;
  var mx = LOWEST;
  for (var j = 0u; j < lk; j++) {
    let logit = score(qo, ko, b, h, i, j);
    if (CACHED) { s[j] = logit; }
    mx = max(mx, logit);
  }
  var sum = 0.0;
  for (var j = 0u; j < lk; j++) {
    var logit: f32;
    if (CACHED) { logit = s[j]; } else { logit = score(qo, ko, b, h, i, j); }
    sum += exp_neg(logit - mx);
  }
  let po = row * lk;
  if (CACHED) {
    for (var j = 0u; j < lk; j++) {
      let p = exp_neg(s[j] - mx) / sum;
      probs[po + j] = p;
      s[j] = dropped(p, po + j, key);
    }
    for (var e = 0u; e < d; e++) {
      var acc = V(0.0);
      for (var j = 0u; j < lk; j++) { acc += s[j] * value(vo + j * params.v_w + e); }
      ctx[co + e] = acc;
    }
  } else {
    // The probabilities first (they are saved anyway), then the context from them.
    for (var j = 0u; j < lk; j++) {
      probs[po + j] = exp_neg(score(qo, ko, b, h, i, j) - mx) / sum;
    }
    for (var e = 0u; e < d; e++) {
      var acc = V(0.0);
      for (var j = 0u; j < lk; j++) {
        acc += dropped(probs[po + j], po + j, key) * value(vo + j * params.v_w + e);
      }
      ctx[co + e] = acc;
    }
  }
}
