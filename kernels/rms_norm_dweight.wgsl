// rms_norm_dweight: first pass of the weight gradient of rms_norm, deterministic (no atomics):
//   partial[j, c] = sum over rows r of chunk j of dout[r, c] * x[r, c] * rstd[r],
// where chunk j holds rows j * rows_per_chunk .. min(N, (j + 1) * rows_per_chunk) - 1, summed
// in row order. rms_norm_dweight_reduce then sums the chunks in order.
//
// Shapes: dout (N, C), x (N, C), rstd (N), partial (J, C) with J = ceil(N / rows_per_chunk).
// Thread mapping: one thread per (chunk, column); a workgroup of 256 threads covers 256
//   consecutive columns of one chunk (coalesced row reads).
// Grid: (ceil(C / 256), J, 1); the launcher keeps J <= 65535. Threads past C return.

struct Params {
  rows: u32,
  c: u32,
  rows_per_chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wid.x * 256u + lid.x;
  if (col >= params.c) { return; }
  let chunk = wid.y;
  let r0 = chunk * params.rows_per_chunk;
  let r1 = min(params.rows, r0 + params.rows_per_chunk);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    let i = r * params.c + col;
    acc += dout[i] * x[i] * rstd[r];
  }
  partial[chunk * params.c + col] = acc;
}
