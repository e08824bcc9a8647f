// prompt_embed: the encoder input of a prompt method: the soft prompt's M rows, then each source
// token's embedding row plus an offset.
//   out[b, m, c]     = prompt[m, c]                                       m < M
//   out[b, M + s, c] = tokens[b, s, c] + offset(b, s, c)                  s < S
// offset by MODE (baked in):
//   0: none (prompt tuning);
//   1: a per-position offset pos[s, c] broadcast over the batch (DePT);
//   2: a token-wise low-rank offset Σ_r relu(hidden[b, s, r]) · up[r, c] + bias[c] (ADePT), the
//      rank terms added in order r = 0, 1, ... R − 1 after the bias.
// Bindings a mode does not read are bound to a placeholder.
//
// Shapes: prompt (M, C), tokens (B, S, C), pos (S, C), hidden (B, S, R), up (R, C), bias (C),
//   out (B, M + S, C), all f32.
// Thread mapping: one thread per output element e = (b · (M + S) + t) · C + c, 256 threads per
//   workgroup.
// Grid: ceil(B · (M + S) · C / 256) workgroups, folded into (x, y) by the launcher when large:
//   e = (wid.x + wid.y * nwg.x) * 256 + lid.x, and threads with e >= B · (M + S) · C do nothing.

override MODE: u32 = 0u;

struct Params {
  batch: u32, m: u32, s: u32, c: u32, r: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> prompt: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read> hidden: array<f32>;
@group(0) @binding(5) var<storage, read> up: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let c = params.c;
  let len = params.m + params.s;
  let e = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (e >= params.batch * len * c) { return; }
  let row = e / c;
  let col = e - row * c;
  let b = row / len;
  let t = row - b * len;
  if (t < params.m) {
    out[e] = prompt[t * c + col];
    return;
  }
  let s = t - params.m;
  let tok = b * params.s + s;
  var v = tokens[tok * c + col];
  if (MODE == 1u) {
    v = v + pos[s * c + col];
  } else if (MODE == 2u) {
    var acc = bias[col];
    for (var k = 0u; k < params.r; k++) {
      acc = acc + max(hidden[tok * params.r + k], 0.0) * up[k * c + col];
    }
    v = v + acc;
  }
  out[e] = v;
}
