// reduce256: the sum of one f32 per thread over a workgroup of 256 threads, by a binary tree in
// a fixed order (stride 128, 64, ..., 1: thread t adds t + stride), so the result is the same
// on every run. Include once, at module scope, in a kernel with @workgroup_size(256); it
// declares the workgroup array `wsum`.

var<workgroup> wsum: array<f32, 256>;

// The workgroup's sum of `v`, returned to every thread; thread `t` (local_invocation_id.x)
// passes its own value. Every thread of the workgroup must call it, in uniform control flow
// (nine barriers). Call it once: a second call would need a workgroupBarrier() before it, since
// thread 0's next write to wsum[0] could overtake another thread's read of the result.
fn workgroup_sum256(t: u32, v: f32) -> f32 {
  wsum[t] = v;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      wsum[t] += wsum[t + stride];
    }
    workgroupBarrier();
  }
  return wsum[0];
}
