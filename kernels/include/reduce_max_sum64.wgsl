// reduce_max_sum64: workgroup_max_sum64(ids, m, s), the merge of one "online softmax" pair per
// thread over a workgroup of 64 threads: given each thread's (m, s) = (a maximum, the sum of
// exp(x - m) over its values), returns to every thread (M, S) = (the maximum of the m, the sum of
// s · exp(m - M)), in a fixed order (the same result on every run and on every thread). Include
// once, at module scope, in a kernel with @workgroup_size(64) (and no other reduction snippet);
// the kernel's entry point takes `ids: ReduceIds` (declared here; `ids.t` is the thread's
// local_invocation_index) and passes it on. Every thread must call it, in uniform control flow;
// calls may follow one another. Also declares LOWEST (the lowest finite f32, a start value for
// maxima) and exp_neg(d) (exp(d) for d <= 0, exactly 0 below -104, under the smallest f32
// denormal, also for d = -inf), which the merges use and the kernel may use.
//
// Two implementations; the runtime compiles one (src/gpu/kernel.ts, subgroupVariant):
// - tree, as written, on any device: threads 0..7 each merge 8 pairs (thread t: t, t + 8, ...,
//   t + 56: the max of the maxima, then the sums rescaled by exp_neg(their max - max), in
//   order), then every thread merges those 8 in order. Two barriers. Declares `mred`, `mred2`.
// - subgroups, where the device has them: subgroupMax of the maxima and subgroupAdd of the sums
//   rescaled to it, per subgroup, into slot subgroup_id; one barrier; every thread merges the
//   num_subgroups slots in order (the scheme of reduce64.wgsl: nothing assumed of the subgroup
//   size or layout; two alternating halves of the slots). Declares `mred_sg`, `mred_sg_phase`.
// M is exact, and so the same, in both; S differs in the last bits; each is deterministic.

const LOWEST: f32 = -0x1.fffffep+127f;

fn exp_neg(d: f32) -> f32 {
  if (d < -104.0) { return 0.0; }
  return exp(d);
}

/*@subgroups
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> mred_sg: array<vec2<f32>, 128>;
var<private> mred_sg_phase: u32;

fn workgroup_max_sum64(ids: ReduceIds, m: f32, s: f32) -> vec2<f32> {
  let base = mred_sg_phase * 64u;
  mred_sg_phase ^= 1u;
  let gm = subgroupMax(m);
  let gs = subgroupAdd(s * exp_neg(m - gm));
  if (subgroupMin(ids.t) == ids.t) { mred_sg[base + ids.subgroup] = vec2<f32>(gm, gs); }
  workgroupBarrier();
  var mt = mred_sg[base].x;
  for (var j = 1u; j < ids.subgroups; j++) { mt = max(mt, mred_sg[base + j].x); }
  var st = 0.0;
  for (var j = 0u; j < ids.subgroups; j++) {
    let r = mred_sg[base + j];
    st += r.y * exp_neg(r.x - mt);
  }
  return vec2<f32>(mt, st);
}
@subgroups*/
//@tree{
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
}

var<workgroup> mred: array<vec2<f32>, 64>;
var<workgroup> mred2: array<vec2<f32>, 8>;

fn workgroup_max_sum64(ids: ReduceIds, m: f32, s: f32) -> vec2<f32> {
  let t = ids.t;
  mred[t] = vec2<f32>(m, s);
  workgroupBarrier();
  if (t < 8u) {
    var mm = mred[t].x;
    for (var j = 1u; j < 8u; j++) { mm = max(mm, mred[t + 8u * j].x); }
    var ss = 0.0;
    for (var j = 0u; j < 8u; j++) { let r = mred[t + 8u * j]; ss += r.y * exp_neg(r.x - mm); }
    mred2[t] = vec2<f32>(mm, ss);
  }
  workgroupBarrier();
  var mt = mred2[0].x;
  for (var j = 1u; j < 8u; j++) { mt = max(mt, mred2[j].x); }
  var st = 0.0;
  for (var j = 0u; j < 8u; j++) { let r = mred2[j]; st += r.y * exp_neg(r.x - mt); }
  return vec2<f32>(mt, st);
}
//@tree}
