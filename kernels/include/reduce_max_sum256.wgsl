// reduce_max_sum256: workgroup_max_sum256(ids, m, s), the merge of one "online softmax" pair per
// thread over a workgroup of 256 threads: given each thread's (m, s) = (a maximum, the sum of
// exp(x - m) over its values), returns (M, S) = (the maximum of the m, the sum of s · exp(m - M)),
// in a fixed order (the same result on every run), to thread 0 (ids.t == 0): other threads get
// an unspecified value. Include once, at module scope, in a kernel with @workgroup_size(256) (and
// no other reduction snippet); the kernel's entry point takes `ids: ReduceIds` (declared here;
// `ids.t` is the thread's local_invocation_index) and passes it on. Every thread must call it, in
// uniform control flow. Call it once (a second call needs a workgroupBarrier() before it). Also
// declares LOWEST, the lowest finite f32 (a start value for maxima that keeps exp() arguments
// finite).
//
// Two implementations; the runtime compiles one (src/gpu/kernel.ts, subgroupVariant):
// - tree, as written, on any device: a binary tree in workgroup memory (stride 128, ..., 1:
//   thread t merges t + stride into t: the max, then both sums rescaled by exp(their max - max)).
//   Nine barriers. Declares `wm`, `ws`.
// - subgroups, where the device has them: subgroupMax of the maxima and subgroupAdd of the sums
//   rescaled to it, per subgroup, into slot subgroup_id; one barrier; thread 0 alone merges the
//   num_subgroups slots in order (the scheme of reduce64.wgsl: nothing assumed of the subgroup
//   size or layout). Declares `wms_sg`, `wms_sg_phase`.
// M is exact, and so the same, in both; S differs in the last bits; each is deterministic.

const LOWEST: f32 = -0x1.fffffep+127f;

/*@subgroups
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}

var<workgroup> wms_sg: array<vec2<f32>, 512>;
var<private> wms_sg_phase: u32;

fn workgroup_max_sum256(ids: ReduceIds, m: f32, s: f32) -> vec2<f32> {
  let base = wms_sg_phase * 256u;
  wms_sg_phase ^= 1u;
  let gm = subgroupMax(m);
  let gs = subgroupAdd(s * exp(m - gm));
  if (subgroupMin(ids.t) == ids.t) { wms_sg[base + ids.subgroup] = vec2<f32>(gm, gs); }
  workgroupBarrier();
  var mt = LOWEST;
  var st = 0.0;
  if (ids.t == 0u) {
    mt = wms_sg[base].x;
    for (var j = 1u; j < ids.subgroups; j++) { mt = max(mt, wms_sg[base + j].x); }
    for (var j = 0u; j < ids.subgroups; j++) {
      let r = wms_sg[base + j];
      st += r.y * exp(r.x - mt);
    }
  }
  return vec2<f32>(mt, st);
}
@subgroups*/
//@tree{
struct ReduceIds {
  @builtin(local_invocation_index) t: u32,
}

var<workgroup> wm: array<f32, 256>;
var<workgroup> ws: array<f32, 256>;

fn workgroup_max_sum256(ids: ReduceIds, m: f32, s: f32) -> vec2<f32> {
  let t = ids.t;
  wm[t] = m;
  ws[t] = s;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      let m1 = wm[t];
      let m2 = wm[t + stride];
      let mm = max(m1, m2);
      ws[t] = ws[t] * exp(m1 - mm) + ws[t + stride] * exp(m2 - mm);
      wm[t] = mm;
    }
    workgroupBarrier();
  }
  return vec2<f32>(wm[0], ws[0]);
}
//@tree}
