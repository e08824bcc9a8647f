// lowrank_up_backward: the gradients of the up-projection and the bias of a token-wise low-rank
// offset (ADePT's Bw and b), from the gradient of the encoder input whose rows M.. are the
// source tokens (prompt_embed's MODE 2):
//   dup[k, c]  = Σ_{b, s} relu(hidden[b, s, k]) · dout[b, M + s, c]      k < R
//   dbias[c]   = Σ_{b, s} dout[b, M + s, c]
// Deterministic: every sum runs in a fixed order, with no float atomics.
//
// Shapes: hidden (B, S, R), dout (B, M + S, C), dup (R, C), dbias (C), all f32.
// Thread mapping: a workgroup of 64 x 4 threads covers 64 columns of one output row k (k = R is
//   the bias). Thread (lx, ly) sums the source rows ly, ly + 4, ... (in batch-major order) for
//   column 64 · wid.x + lx; the 4 partial sums are then added in the order 0 + 1 + 2 + 3.
// Grid: (ceil(C / 64), R + 1, 1).

struct Params {
  batch: u32, m: u32, s: u32, c: u32, r: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hidden: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dup: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = params.c;
  let col = wid.x * 64u + lid.x;
  let k = wid.y;
  let rows = params.batch * params.s;
  var acc = 0.0;
  if (col < c) {
    for (var row = lid.y; row < rows; row += 4u) {
      let b = row / params.s;
      let s = row - b * params.s;
      let g = dout[(b * (params.m + params.s) + params.m + s) * c + col];
      if (k < params.r) {
        acc = acc + max(hidden[row * params.r + k], 0.0) * g;
      } else {
        acc = acc + g;
      }
    }
  }
  partial[lid.y * 64u + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && col < c) {
    let total = ((partial[lid.x] + partial[64u + lid.x]) + partial[128u + lid.x]) +
      partial[192u + lid.x];
    if (k < params.r) {
      dup[k * c + col] = total;
    } else {
      dbias[col] = total;
    }
  }
}
