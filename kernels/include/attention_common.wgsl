// attention_common: what the fused attention kernels' bodies share (attention_forward_body,
// attention_backward_q_body, attention_backward_kv_body): the baked head size, the rows per
// thread, the dropout and the mapping of threads to rows. Needs a `params` uniform with the
// fields d, h, stream, threshold, keep_none and drop_scale, a `state` binding (2) u32 = (seed,
// step) and `override DROPOUT: bool`; includes dropout_hash.wgsl.

// The head size in units of V when baked (a compile-time loop bound: the loops over a row's
// columns unroll and a cached row lives in registers), 0 to read it from params.d.
override DV: u32 = 0u;

// Rows per thread (each body's multi_rows: every key, value or query row loaded serves ROWS of
// the thread's rows), at most ROWS_MAX; 1: one row per thread.
override ROWS: u32 = 1u;
const ROWS_MAX: u32 = 4u;
// The most V of a head with ROWS > 1 (its rows' sums live in registers).
const DQ_MAX: u32 = 8u;

//! include "dropout_hash.wgsl"

// The head size in units of V.
fn head_size() -> u32 {
  if (DV > 0u) { return DV; }
  return params.d;
}

// The dropout state (seed, step), read once per thread; zeros without DROPOUT.
fn dropout_key() -> vec2u {
  if (!DROPOUT) { return vec2u(0u); }
  return vec2u(state[0], state[1]);
}

// x after dropout at probability element e (the forward's mask bit, regenerated).
fn dropped(x: f32, e: u32, key: vec2u) -> f32 {
  if (!DROPOUT) { return x; }
  let keep = dropout_keep(key.x, key.y, params.stream, e, params.threshold, params.keep_none);
  return select(0.0, x * params.drop_scale, keep);
}

// Row r of the (B, H, L) rows the threads of a kernel map to: batch entry, head, b·H + h, and
// position (a query or key index) in a sequence of `len`.
struct HeadRow { b: u32, h: u32, bh: u32, pos: u32 }

fn head_row(r: u32, len: u32) -> HeadRow {
  let bh = r / len;
  return HeadRow(bh / params.h, bh % params.h, bh, r % len);
}

// ROWS > 1: the block of ROWS rows (of a sequence of `len`) that thread t computes, as
// head_row gives it, with `pos` the block's first row (blocks = ceil(len / ROWS) per head).
// Threads past the last head have bh · len >= params.rows.
fn row_block(t: u32, len: u32) -> HeadRow {
  var at = head_row(t, (len + ROWS - 1u) / ROWS);
  at.pos *= ROWS;
  return at;
}
