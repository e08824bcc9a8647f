// sum_rows: out[chunk, c] (+)= Σ_{r in chunk} x[r, c], a deterministic column sum (bias
// gradients). Row chunk `chunk` covers rows [chunk · rows_per_chunk, min(N, (chunk + 1) ·
// rows_per_chunk)). One chunk writes the result directly; many chunks write partial sums
// (chunks, C) that a second dispatch of this kernel (N = chunks, one chunk) adds up.
//
// Shapes: x (N, C) f32, out (chunks, C) f32.
// Thread mapping: a workgroup of 64 x 4 threads covers 64 columns of one row chunk. Thread
//   (lx, ly) sums rows ly, ly + 4, ... of the chunk in order for column 64 · wid.x + lx; the 4
//   partial sums of a column are then added in a fixed order (0 + 1 + 2 + 3) by the ly = 0 thread.
// Grid: (ceil(C / 64), chunks, 1).

// Add into out instead of overwriting it.
override ACCUMULATE: bool = false;

struct Params {
  n: u32, c: u32, rows_per_chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = params.c;
  let col = wid.x * 64u + lid.x;
  let r0 = wid.y * params.rows_per_chunk;
  let r1 = min(params.n, r0 + params.rows_per_chunk);
  var acc = 0.0;
  if (col < c) {
    for (var r = r0 + lid.y; r < r1; r += 4u) {
      acc += x[r * c + col];
    }
  }
  partial[lid.y * 64u + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && col < c) {
    var s = ((partial[lid.x] + partial[64u + lid.x]) + partial[128u + lid.x]) +
      partial[192u + lid.x];
    let idx = wid.y * c + col;
    if (ACCUMULATE) { s = out[idx] + s; }
    out[idx] = s;
  }
}
