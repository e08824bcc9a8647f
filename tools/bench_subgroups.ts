/**
 * Dev script: the two reduction paths of the row-reducing kernels (subgroups, workgroup-memory
 * trees) timed on one device in one run, plus a T5-small training step (forward and backward)
 * built once on each path. Each figure alternates the two paths, A B A B ..., within one
 * profile or one measurement loop, so drifts of a shared machine hit both alike; the ratio
 * tree / subgroups is printed beside each (> 1: subgroups faster). One JSON line per figure.
 *
 * Usage: `deno run -A tools/bench_subgroups.ts [--rounds 15] [--no-t5]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { requestGpu } from "../src/gpu/device.ts";
import type { KernelName } from "../src/gpu/kernel.ts";
import type { Op } from "../src/gpu/op.ts";
import { WGSL } from "../src/gpu/wgsl.generated.ts";
import { crossEntropyForward } from "../src/layers/cross_entropy.ts";
import { globalL2Norm } from "../src/layers/reduce.ts";
import { residualRmsNorm, rmsNormBackward } from "../src/layers/rms_norm.ts";
import { softmax, softmaxBackward } from "../src/layers/softmax.ts";
import { T5Model } from "../src/model/t5.ts";
import { parseT5Config } from "../src/model/t5_config.ts";
import { randomT5Weights } from "../src/model/t5_weights.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "15" }, "no-t5": { type: "boolean" } },
});
const rounds = Number(values.rounds);

const gpu = await requestGpu();
if (!gpu.hasSubgroups) {
  console.error("this device has no subgroups: nothing to compare");
  Deno.exit(1);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const variant = new Set<string>(
  (Object.keys(WGSL) as KernelName[]).filter((k) => gpu.kernels.hasSubgroupVariant(k)),
);

/** Builds `make()` on each path, then profiles `reps` copies per path, alternating paths. */
async function kernelFigure(id: string, reps: number, make: () => Op[]): Promise<void> {
  const built: Record<string, Op[]> = {};
  for (const sg of [true, false]) {
    gpu.subgroups = sg;
    built[sg ? "subgroups" : "tree"] = make();
  }
  gpu.subgroups = true;
  const batch = (ops: Op[]) => Array.from({ length: reps }, () => ops).flat();
  const groups = [];
  for (let r = 0; r < rounds; r++) {
    groups.push({ label: "subgroups", ops: batch(built.subgroups) });
    groups.push({ label: "tree", ops: batch(built.tree) });
  }
  await gpu.run(groups[0].ops); // warm-up
  const ms = (await gpu.profile(groups))!;
  const sgs = ms.filter((_, i) => i % 2 === 0).map((x) => x / reps);
  const trees = ms.filter((_, i) => i % 2 === 1).map((x) => x / reps);
  // On a shared machine the minimum is the steadier figure; the median is printed beside it.
  const sg = Math.min(...sgs), tree = Math.min(...trees);
  console.log(JSON.stringify({
    id,
    gpu_ms_subgroups: +sg.toFixed(4),
    gpu_ms_tree: +tree.toFixed(4),
    tree_over_subgroups: +(tree / sg).toFixed(3),
    median_ratio: +(median(trees) / median(sgs)).toFixed(3),
  }));
  for (const ops of Object.values(built)) for (const op of ops) op.destroy();
}

// rms_norm and its backward at T5-small and T5-base widths, batch 8 x 84 tokens (64 source +
// 20 prompt), and at C = 64 (one element per thread: the reduction dominates).
for (const c of [64, 512, 768]) {
  const rows = 8 * 84;
  const x = gpu.tensor("x", [rows, c]);
  const y = gpu.tensor("y", [rows, c]);
  const w = gpu.upload("w", new Float32Array(c).fill(1), [c]);
  const sum = gpu.tensor("sum", [rows, c]);
  const out = gpu.tensor("out", [rows, c]);
  const rstd = gpu.tensor("rstd", [rows]);
  const dx = gpu.tensor("dx", [rows, c]);
  gpu.write(x, Float32Array.from({ length: rows * c }, (_, i) => Math.sin(i)));
  await kernelFigure(`rms_norm/${rows}x${c}`, 10, () => [
    residualRmsNorm(gpu, { x, y, weight: w, sum, out, rstd, eps: 1e-6 }),
  ]);
  await kernelFigure(`rms_norm_backward/${rows}x${c}`, 10, () => [
    rmsNormBackward(gpu, { dout: out, x, weight: w, rstd, dx }),
  ]);
  for (const t of [x, y, w, sum, out, rstd, dx]) gpu.freeBuffer(t.buffer);
}

// softmax forward and backward (with the bias gradient): (8, 8, 84, 84).
{
  const shape = [8, 8, 84, 84];
  const x = gpu.tensor("scores", shape);
  const bias = gpu.tensor("bias", [8, 84, 84]);
  const p = gpu.tensor("p", shape);
  const dx = gpu.tensor("dscores", shape);
  const dbias = gpu.tensor("dbias", [8, 84, 84]);
  await kernelFigure("softmax/8x8x84x84", 2, () => [softmax(gpu, { x, bias, out: p })]);
  await kernelFigure("softmax_backward+dbias/8x8x84x84", 2, () => [
    softmaxBackward(gpu, { dout: x, y: p, dx, dbias }),
  ]);
  for (const t of [x, bias, p, dx, dbias]) gpu.freeBuffer(t.buffer);
}

// cross_entropy_forward: 8 x 4 target tokens over T5's vocabulary.
{
  const rows = 32, v = 32128;
  const logits = gpu.upload(
    "logits",
    Float32Array.from({ length: rows * v }, (_, i) => Math.sin(i * 0.37) * 5),
    [rows, v],
  );
  const labels = gpu.upload("labels", Int32Array.from({ length: rows }, (_, i) => i * 7), [rows]);
  const loss = gpu.tensor("loss", [1]);
  await kernelFigure(`cross_entropy_forward/${rows}x${v}`, 10, () => [
    crossEntropyForward(gpu, { logits, labels, loss }),
  ]);
  for (const t of [logits, labels, loss]) gpu.freeBuffer(t.buffer);
}

// The global gradient norm over ADePT's trainable tensors at T5-base (prompt 60 x 768,
// offset network 768 x 19 and 19 x 768, and a 1M-element tensor for scale).
{
  const tensors = [[60, 768], [32128, 19], [19, 768], [1 << 20]].map((s, i) =>
    gpu.tensor(`g${i}`, s)
  );
  const out = gpu.tensor("norm", [1]);
  await kernelFigure("global_l2_norm/adept+1M", 10, () => [globalL2Norm(gpu, { tensors, out })]);
  for (const t of [...tensors, out]) gpu.freeBuffer(t.buffer);
}

// A T5-small training step (random weights), batch 4 x 32 source + 4 target tokens, one
// session per path. Wall-clock per step, the sessions taking turns (A B B A ...), and GPU time
// per op (each op its own timed pass): the whole step, and the ops whose kernels have a
// subgroup variant.
if (!values["no-t5"]) {
  const config = parseT5Config({
    model_type: "t5",
    vocab_size: 32128,
    relative_attention_num_buckets: 32,
    d_model: 512,
    d_kv: 64,
    d_ff: 2048,
    num_heads: 8,
    num_layers: 6,
  }, { source: "t5-small (random)" });
  const model = new T5Model(gpu, config, randomT5Weights(gpu, config));
  const shape = { batch: 4, sourceLength: 32, targetLength: 4 };
  const ids = Int32Array.from({ length: 4 * 32 }, (_, i) => (i * 7919) % 32000 + 3);
  const labels = Int32Array.from({ length: 4 * 4 }, (_, i) => (i * 104729) % 32000 + 3);
  const sessions: Record<string, ReturnType<T5Model["session"]>> = {};
  const losses: Record<string, number> = {};
  for (const sg of [true, false]) {
    gpu.subgroups = sg;
    const s = model.session(shape);
    s.setBatch({ inputIds: ids, attentionMask: new Float32Array(4 * 32).fill(1), labels });
    sessions[sg ? "subgroups" : "tree"] = s;
  }
  gpu.subgroups = true;
  const names = ["subgroups", "tree"];
  const wall: Record<string, number[]> = { subgroups: [], tree: [] };
  const gpuAll: Record<string, number[]> = { subgroups: [], tree: [] };
  const gpuVariant: Record<string, number[]> = { subgroups: [], tree: [] };
  const rounds5 = Math.max(3, Math.ceil(rounds / 3));
  for (let r = 0; r <= rounds5; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      const s = sessions[name];
      const t0 = performance.now();
      await s.backward();
      await gpu.sync();
      const ms = performance.now() - t0;
      losses[name] = await s.readLoss();
      const ops = [s.embedOp, ...s.trainOps, ...s.backwardOps];
      const per = (await gpu.profile(ops.map((op) => ({ label: op.label, ops: [op] }))))!;
      if (r === 0) continue; // warm-up
      wall[name].push(ms);
      gpuAll[name].push(per.reduce((a, x) => a + x, 0));
      gpuVariant[name].push(
        per.reduce(
          (a, x, i) => a + (ops[i].dispatches.some((d) => variant.has(d.kernel)) ? x : 0),
          0,
        ),
      );
    }
  }
  const m = (xs: Record<string, number[]>, k: string) => +median(xs[k]).toFixed(1);
  console.log(JSON.stringify({
    id: "t5-small forward+backward 4x32+4",
    wall_ms_subgroups: m(wall, "subgroups"),
    wall_ms_tree: m(wall, "tree"),
    gpu_ms_subgroups: m(gpuAll, "subgroups"),
    gpu_ms_tree: m(gpuAll, "tree"),
    variant_ops_gpu_ms_subgroups: m(gpuVariant, "subgroups"),
    variant_ops_gpu_ms_tree: m(gpuVariant, "tree"),
    loss_subgroups: losses.subgroups,
    loss_tree: losses.tree,
  }));
}
gpu.destroy();
