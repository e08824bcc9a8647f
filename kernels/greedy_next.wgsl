// greedy_next: one greedy decoding step. For each row b: next = argmax_v logits[b, v] (the first
// index among equal maxima, as torch.argmax), or pad once the row has finished; the row finishes
// when it emits eos. Writes next into cur[b] (the next step's input) and out[b, t]. A row with a
// NaN logit (or no finite maximum) gets -1, which the host reports as an error.
//
// Shapes: logits (B, V) f32, cur (B) i32, out (B, max_new) i32, finished (B) u32.
// Thread mapping: one 64-thread workgroup per row; each thread scans a strided slice of V, then a
//   tree reduction in workgroup memory keeps (max, lowest index). Grid: B workgroups (folded into
//   (x, y) beyond 65535: row = wid.x + wid.y * nwg.x).

const WG = 64u;

struct Params {
  rows: u32,
  v: u32,
  max_new: u32,
  t: u32,
  pad: i32,
  eos: i32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> cur: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;
@group(0) @binding(4) var<storage, read_write> finished: array<u32>;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
var<workgroup> saw_nan: array<u32, WG>;

// NaN test on the bits: comparisons with NaN may be folded away by optimizing compilers.
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let base = row * params.v;
  var bv = -3.4028234663852886e38;
  var bi = 0xffffffffu;
  var nan = 0u;
  for (var j = lid; j < params.v; j += WG) {
    let x = logits[base + j];
    if (is_nan(x)) { nan = 1u; }
    if (better(x, j, bv, bi)) { bv = x; bi = j; }
  }
  best_v[lid] = bv;
  best_i[lid] = bi;
  saw_nan[lid] = nan;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      saw_nan[lid] = saw_nan[lid] | saw_nan[lid + stride];
      if (better(best_v[lid + stride], best_i[lid + stride], best_v[lid], best_i[lid])) {
        best_v[lid] = best_v[lid + stride];
        best_i[lid] = best_i[lid + stride];
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var next = i32(best_i[0]);
    if (saw_nan[0] != 0u) { next = -1; }
    if (finished[row] != 0u) {
      next = params.pad;
    } else if (next == params.eos) {
      finished[row] = 1u;
    }
    cur[row] = next;
    out[row * params.max_new + params.t] = next;
  }
}
