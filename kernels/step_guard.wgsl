// step_guard: after a training step's loss and gradient norm are computed, records them and
// decides whether the optimizer may apply the step: a non-finite loss or norm (NaN, ±Inf) clears
// the flag the guarded AdamW kernel reads, so the step changes no parameter and no moment.
//   guard[0] = 1 if the step is applied, else 0
//   guard[1] = steps skipped so far; guard[2] = steps skipped in a row (0 after an applied one)
//   guard[3] = steps recorded so far
//   history[slot] = (loss, norm)            the host reads the ring every few steps
//
// Shapes: loss (1) f32, norm (1) f32, guard (4) u32, history (N, 2) f32 with slot < N.
// Thread mapping: one workgroup of one thread.
// Grid: (1, 1, 1).

struct Params {
  slot: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> guard: array<u32>;
@group(0) @binding(4) var<storage, read_write> history: array<f32>;

// IEEE-754: a float is finite iff its exponent bits are not all ones.
fn finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(1)
fn main() {
  let l = loss[0];
  let n = norm[0];
  let ok = finite(l) && finite(n);
  if (ok) {
    guard[0] = 1u;
    guard[2] = 0u;
  } else {
    guard[0] = 0u;
    guard[1] = guard[1] + 1u;
    guard[2] = guard[2] + 1u;
  }
  guard[3] = guard[3] + 1u;
  history[params.slot * 2u] = l;
  history[params.slot * 2u + 1u] = n;
}
