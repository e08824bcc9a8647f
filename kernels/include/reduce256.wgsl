// reduce256: workgroup_sum256(ids, v), the sum of one f32 per thread over a workgroup of 256
// threads, in a fixed order (the same result on every run), returned to thread 0 (ids.t == 0):
// other threads get an unspecified value. Include once, at module scope, in a kernel with
// @workgroup_size(256) (and no other reduction snippet); the kernel's entry point takes
// `ids: ReduceIds` (declared here; `ids.t` is the thread's local_invocation_index) and passes it
// on. Every thread of the workgroup must call it, in uniform control flow. Call it once: a second
// call needs a workgroupBarrier() before it (the tree's next write to wsum[0] could overtake
// another thread's read of the result).
//
// Two implementations; the runtime compiles one (src/gpu/kernel.ts, subgroupVariant):
// - tree, as written, on any device: a binary tree in workgroup memory (stride 128, 64, ..., 1:
//   thread t adds t + stride). Nine barriers. Declares the workgroup array `wsum`.
// - subgroups, where the device has them: as in reduce64.wgsl (subgroupAdd per subgroup into
//   slot subgroup_id, one barrier), with no assumption on the subgroup size or layout; thread 0
//   alone adds the num_subgroups slots in order (up to 64 of them: 32 on lavapipe, whose
//   subgroups have 8 invocations; 8 on NVIDIA). Declares `wsum_sg`, `wsum_sg_phase`.
// The two differ in the last bits (other orders of addition); each is deterministic.

/*@subgroups
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> wsum_sg: array<f32, 512>;
var<private> wsum_sg_phase: u32;

fn workgroup_sum256(ids: ReduceIds, v: f32) -> f32 {
  let base = wsum_sg_phase * 256u;
  wsum_sg_phase ^= 1u;
  let s = subgroupAdd(v);
  if (subgroupMin(ids.t) == ids.t) { wsum_sg[base + ids.subgroup] = s; }
  workgroupBarrier();
  var total = 0.0;
  if (ids.t == 0u) {
    for (var j = 0u; j < ids.subgroups; j++) { total += wsum_sg[base + j]; }
  }
  return total;
}
@subgroups*/
//@tree{
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
}

var<workgroup> wsum: array<f32, 256>;

fn workgroup_sum256(ids: ReduceIds, v: f32) -> f32 {
  let t = ids.t;
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
//@tree}
