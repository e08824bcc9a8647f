// reduce64: the sum of one f32 per thread over a workgroup of 64 threads, in a fixed order, so
// the result is the same on every thread and every run: threads 0..7 each add 8 values (thread
// t: t, t + 8, ..., t + 56, in that order), then every thread adds those 8 partials in order.
// Include once, at module scope, in a kernel with @workgroup_size(64); it declares the
// workgroup arrays `red` and `red2`.

var<workgroup> red: array<f32, 64>;
var<workgroup> red2: array<f32, 8>;

// The workgroup's sum of `v`; thread `t` (local_invocation_id.x) passes its own value. Every
// thread of the workgroup must call it, in uniform control flow (two barriers). Calls may follow
// one another (in a loop): `red` is rewritten only after a barrier that all threads reach once
// they are done with the previous call.
fn workgroup_sum64(t: u32, v: f32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  if (t < 8u) {
    var q = 0.0;
    for (var j = 0u; j < 8u; j++) { q += red[t + 8u * j]; }
    red2[t] = q;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < 8u; j++) { total += red2[j]; }
  return total;
}
