// reduce64: workgroup_sum64(ids, v), the sum of one f32 per thread over a workgroup of 64
// threads, returned to every thread, in a fixed order (the same result on every run and on every
// thread). Include once, at module scope, in a kernel with @workgroup_size(64) (and no other
// reduction snippet); the kernel's entry point takes `ids: ReduceIds` (declared here: the
// thread's local_invocation_index `ids.t`, plus the subgroup built-ins in the subgroup variant)
// and passes it on. Every thread of the workgroup must call it, in uniform control flow (after
// returns that are uniform across the workgroup); calls may follow one another (in a loop).
//
// Two implementations; the runtime compiles one (src/gpu/kernel.ts, subgroupVariant):
// - tree, as written, on any device: threads 0..7 each add 8 values (thread t: t, t + 8, ...,
//   t + 56, in that order), then every thread adds those 8 partials in order. Two barriers.
//   Declares the workgroup arrays `red` and `red2`.
// - subgroups, where the device has them (the commented block below; kernels/README.md): each
//   subgroup adds its values (subgroupAdd, in the hardware's fixed order); its lowest thread
//   writes the sum to slot subgroup_id; after one barrier every thread adds slots 0 ..
//   num_subgroups - 1 in order (the same order, so the same value, on every thread). Nothing is
//   assumed of the subgroup size (a power of two in [4, 128]: 8 on lavapipe, 32 on NVIDIA, 32 or
//   64 on AMD) nor of which threads share a subgroup (partial subgroups included). Calls
//   alternate between two halves of `red_sg` (`red_sg_phase`), so that a call's write cannot
//   overtake another thread's reads of the previous call. Declares `red_sg`, `red_sg_phase`.
// The two differ in the last bits (other orders of addition); each is deterministic.

/*@subgroups
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> red_sg: array<f32, 128>;
var<private> red_sg_phase: u32;

fn workgroup_sum64(ids: ReduceIds, v: f32) -> f32 {
  let base = red_sg_phase * 64u;
  red_sg_phase ^= 1u;
  let s = subgroupAdd(v);
  if (subgroupMin(ids.t) == ids.t) { red_sg[base + ids.subgroup] = s; }
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < ids.subgroups; j++) { total += red_sg[base + j]; }
  return total;
}
@subgroups*/
//@tree{
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
}

var<workgroup> red: array<f32, 64>;
var<workgroup> red2: array<f32, 8>;

// `red` is rewritten only after a barrier that all threads reach once they are done with the
// previous call's reads, so calls may follow one another.
fn workgroup_sum64(ids: ReduceIds, v: f32) -> f32 {
  let t = ids.t;
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
//@tree}
