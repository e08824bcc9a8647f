// Subgroup reductions: the device gets the `subgroups` feature when asked (lavapipe grants it
// under Deno 2.9 without listing it), the log says which path the kernels use, and every kernel
// with a subgroup variant matches its float64 CPU reference on both paths: subgroups (forced on)
// and workgroup-memory trees (forced off), each bitwise deterministic run to run, the two within
// float tolerance of each other.

import assert from "node:assert/strict";
import { type Gpu, type GpuOptions, requestGpu } from "../../src/gpu/device.ts";
import { GpuLimitError } from "../../src/gpu/errors.ts";
import { type KernelName, subgroupVariant } from "../../src/gpu/kernel.ts";
import type { Op } from "../../src/gpu/op.ts";
import { WGSL } from "../../src/gpu/wgsl.generated.ts";
import {
  crossEntropyBackward,
  crossEntropyBackwardCpu,
  crossEntropyForward,
  crossEntropyForwardCpu,
} from "../../src/layers/cross_entropy.ts";
import { globalL2Norm, globalL2NormCpu } from "../../src/layers/reduce.ts";
import {
  residualRmsNorm,
  rmsNormBackward,
  rmsNormBackwardCpu,
  rmsNormCpu,
} from "../../src/layers/rms_norm.ts";
import {
  softmax,
  softmaxBackward,
  softmaxBackwardCpu,
  softmaxCpu,
} from "../../src/layers/softmax.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, diffStats, Rng } from "../numeric.ts";

/** The kernels whose reductions have a subgroup variant. */
const WITH_VARIANT: readonly KernelName[] = [
  "cross_entropy_forward",
  "l2_norm_final",
  "rms_norm",
  "rms_norm_backward",
  "rms_norm_backward_vec4",
  "rms_norm_vec4",
  "softmax",
  "softmax_backward",
  "softmax_bias_backward",
  "sum_squares",
];

const SUBGROUP_BUILTIN = /\bsubgroup[A-Z]\w*\s*\(/;

/** WGSL without its comments (block comments nest). */
function stripComments(code: string): string {
  let out = "";
  let depth = 0;
  for (let i = 0; i < code.length; i++) {
    if (code.startsWith("/*", i)) {
      depth++;
      i++;
    } else if (depth > 0 && code.startsWith("*/", i)) {
      depth--;
      i++;
    } else if (depth === 0 && code.startsWith("//", i)) {
      while (i < code.length && code[i] !== "\n") i++;
      out += "\n";
    } else if (depth === 0) out += code[i];
  }
  return out;
}

Deno.test("subgroupVariant() uncomments the subgroup block, drops the tree and adds the directive", () => {
  const code = [
    "// k: a kernel",
    "/*@subgroups",
    "var<workgroup> a_sg: array<f32, 8>; // slots",
    "fn f(v: f32) -> f32 { return subgroupAdd(v); }",
    "@subgroups*/",
    "//@tree{",
    "var<workgroup> a: array<f32, 8>;",
    "fn f(v: f32) -> f32 { return v; }",
    "//@tree}",
    "@compute @workgroup_size(8) fn main() {}",
  ].join("\n");
  const expected = [
    "// k: a kernel",
    "var<workgroup> a_sg: array<f32, 8>; // slots",
    "fn f(v: f32) -> f32 { return subgroupAdd(v); }",
    "@compute @workgroup_size(8) fn main() {}",
  ].join("\n");
  assert.equal(subgroupVariant("k", code, false), expected);
  assert.equal(subgroupVariant("k", code, true), `enable subgroups;\n${expected}`);
  assert.equal(subgroupVariant("k", "fn main() {} // tree only", true), undefined);
  // As written, the block is a comment: the portable variant never sees a subgroup built-in.
  assert.doesNotMatch(stripComments(code), SUBGROUP_BUILTIN);
});

Deno.test("subgroupVariant() rejects unclosed, nested, inline and comment-breaking markers, naming the line", () => {
  const bad: [string, RegExp][] = [
    ["/*@subgroups\nfn f() {}\n", /kernel k: a subgroups block is not closed/],
    [
      "/*@subgroups\n//@tree{\n//@tree}\n@subgroups*/\n",
      /line 2 .*"\/\/@tree\{" inside a subgroups block/,
    ],
    ["//@tree{\n/*@subgroups\n@subgroups*/\n//@tree}\n", /line 2 .*inside a tree block/],
    ["/*@subgroups\n@subgroups*/\n@subgroups*/\n", /line 3 .*inside no block/],
    ["/*@subgroups\nfn f() {} /* x */\n@subgroups*/\n", /line 2 .*may not hold "\/\*" or "\*\/"/],
    ["fn f() {} /*@subgroups\n@subgroups*/\n", /line 1 .*must stand alone on its line/],
  ];
  for (const [code, re] of bad) assert.throws(() => subgroupVariant("k", code, true), re, code);
});

Deno.test("the kernels with a row reduction have a subgroup variant; as written they use no subgroup built-in", () => {
  const have = (Object.keys(WGSL) as KernelName[]).filter((n) =>
    subgroupVariant(n, WGSL[n], true) !== undefined
  );
  assert.deepEqual(have.sort(), [...WITH_VARIANT].sort());
  for (const name of Object.keys(WGSL) as KernelName[]) {
    assert.doesNotMatch(stripComments(WGSL[name]), SUBGROUP_BUILTIN, `${name} as written`);
    const v = subgroupVariant(name, WGSL[name], false);
    if (v === undefined) continue;
    assert.match(stripComments(v), SUBGROUP_BUILTIN, `${name}'s subgroup variant`);
    assert.doesNotMatch(v, /@tree|@subgroups/, `${name}: markers are gone`);
  }
});

// One device for the rest of the file: subgroups in use where granted; each case switches
// `gpu.subgroups` to build its ops on one path, then the other.
let shared: Promise<Gpu> | undefined;
const device = () => shared ??= autoGpu({ log: false });

/**
 * requestGpu() with the subgroups choice left to it, whatever ADEPT_SUBGROUPS says (a run of the
 * suite on the trees sets it to 0): this file switches paths itself.
 */
async function autoGpu(options: GpuOptions): Promise<Gpu> {
  const env = Deno.env.get("ADEPT_SUBGROUPS");
  Deno.env.delete("ADEPT_SUBGROUPS");
  try {
    return await requestGpu(options);
  } finally {
    if (env !== undefined) Deno.env.set("ADEPT_SUBGROUPS", env);
  }
}

/** The paths this device can run: subgroups (when granted) and the trees. */
function paths(gpu: Gpu): boolean[] {
  if (!gpu.hasSubgroups) {
    console.warn(
      `WARNING: "${gpu.adapter.description}" has no subgroups: only the tree path is tested`,
    );
  }
  return gpu.hasSubgroups ? [true, false] : [false];
}

const pathName = (sg: boolean) => sg ? "subgroups" : "tree";

/**
 * Builds `ops()` with `gpu.subgroups = sg` (so their pipelines are that path's), runs them
 * twice and asserts the two reads are bitwise equal; returns one read.
 */
async function onPath(
  gpu: Gpu,
  sg: boolean,
  ops: () => Op[],
  read: () => Promise<Float64Array[]>,
): Promise<Float64Array[]> {
  const before = gpu.subgroups;
  gpu.subgroups = sg;
  let built: Op[];
  try {
    built = ops();
  } finally {
    gpu.subgroups = before;
  }
  for (const op of built) {
    for (const d of op.dispatches) {
      if (WITH_VARIANT.includes(d.kernel)) {
        assert.equal(
          d.pipeline.label.includes("+subgroups"),
          sg,
          `${d.kernel}'s pipeline "${d.pipeline.label}" is the ${pathName(sg)} variant`,
        );
      }
    }
  }
  await gpu.run(built);
  const first = await read();
  await gpu.run(built);
  const second = await read();
  first.forEach((a, i) => {
    const s = diffStats(second[i], a);
    assert.ok(
      a.every((v, j) => Object.is(v, second[i][j])),
      `${pathName(sg)} path, output ${i}: runs differ (largest difference ` +
        `${s.maxAbs} at [${s.maxAbsAt}])`,
    );
  });
  for (const op of built) op.destroy();
  return first;
}

/** Runs `check` on both paths and compares the paths' outputs with each other. */
async function bothPaths(
  gpu: Gpu,
  what: string,
  ops: () => Op[],
  read: () => Promise<Float64Array[]>,
  check: (out: Float64Array[], path: string) => void,
  tol: { atol: number; rtol: number },
): Promise<void> {
  const results: Float64Array[][] = [];
  for (const sg of paths(gpu)) {
    const out = await onPath(gpu, sg, ops, read);
    check(out, `${what}, ${pathName(sg)} path`);
    results.push(out);
  }
  if (results.length === 2) {
    results[0].forEach((a, i) =>
      assertClose(a, results[1][i], { ...tol, label: `${what}: subgroups vs tree, output ${i}` })
    );
  }
}

gpuTest(
  "requestGpu() asks for subgroups and lavapipe grants them; a subgroup kernel runs with a valid subgroup size",
  async () => {
    const lines: string[] = [];
    const gpu = await autoGpu({ log: (l) => lines.push(l) });
    try {
      assert.equal(lines.length, 2, lines.join("\n"));
      if (gpu.adapter.software) {
        // The software adapter of CI: both paths must be exercised there.
        assert.ok(gpu.hasSubgroups, `lavapipe should grant subgroups: ${lines[1]}`);
      }
      if (!gpu.hasSubgroups) {
        assert.match(lines[1], /^\[gpu\] reductions: workgroup-memory trees \(no subgroups: .+\)$/);
        return;
      }
      assert.ok(gpu.device.features.has("subgroups"));
      assert.ok(gpu.adapter.features.includes("subgroups"));
      assert.equal(gpu.subgroups, true, "used by default where granted");
      assert.match(lines[1], /^\[gpu\] reductions: subgroups \(subgroupAdd\/subgroupMax, /);
      // What the reductions rely on, measured: per thread of a 64-thread workgroup, the subgroup
      // size, the invocations of its subgroup, its rank among them, the subgroup's lowest thread,
      // its subgroup_id and num_subgroups.
      const code = (gpu.subgroupsDirective ? "enable subgroups;\n" : "") + `
struct Ids {
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_size) size: u32,
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(ids: Ids) {
  let o = 6u * ids.t;
  out[o] = ids.size;
  out[o + 1u] = subgroupAdd(1u);
  out[o + 2u] = subgroupExclusiveAdd(1u);
  out[o + 3u] = subgroupMin(ids.t);
  out[o + 4u] = ids.subgroup;
  out[o + 5u] = ids.subgroups;
}`;
      const d = gpu.device;
      const pipeline = d.createComputePipeline({
        layout: "auto",
        compute: { module: d.createShaderModule({ code }), entryPoint: "main" },
      });
      const out = gpu.tensor("probe", [64, 6], "u32");
      const bindGroup = d.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: out.buffer } }],
      });
      await gpu.run({
        label: "subgroup probe",
        record(pass) {
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bindGroup);
          pass.dispatchWorkgroups(1);
        },
      });
      const a = await gpu.read(out);
      const groups = new Map<number, number[]>();
      const idOf = new Map<number, number>();
      const count = a[5];
      for (let t = 0; t < 64; t++) {
        const [size, active, rank, leader, id, n] = a.slice(6 * t, 6 * t + 6);
        assert.ok(size >= 4 && size <= 128 && (size & (size - 1)) === 0, `size ${size}`);
        if (gpu.adapter.subgroupSizes) {
          const [lo, hi] = gpu.adapter.subgroupSizes;
          assert.ok(size >= lo && size <= hi, `size ${size} within the adapter's [${lo}, ${hi}]`);
        }
        assert.ok(active >= 1 && active <= size && rank < active && leader <= t);
        assert.ok(n === count && id < n, `thread ${t}: subgroup_id ${id} of ${n}`);
        assert.equal(idOf.get(leader) ?? id, id, `one subgroup_id per subgroup (thread ${t})`);
        idOf.set(leader, id);
        groups.set(leader, [...groups.get(leader) ?? [], rank]);
      }
      // The subgroups partition the workgroup; ranks are 0..n-1 within each; subgroup_id numbers
      // them 0..num_subgroups-1 (the slots of the reductions).
      let total = 0;
      for (const [leader, ranks] of groups) {
        assert.deepEqual([...ranks].sort((x, y) => x - y), ranks.map((_, i) => i), `${leader}`);
        assert.equal(a[6 * leader + 1], ranks.length);
        total += ranks.length;
      }
      assert.equal(total, 64);
      assert.equal(groups.size, count);
      assert.deepEqual([...idOf.values()].sort((x, y) => x - y), [...Array(count).keys()]);
    } finally {
      gpu.destroy();
    }
  },
);

gpuTest(
  "requestGpu({ subgroups: false }) and ADEPT_SUBGROUPS=0 force the trees and say so; subgroups: true requires the feature",
  async () => {
    const lines: string[] = [];
    const off = await requestGpu({ subgroups: false, log: (l) => lines.push(l) });
    try {
      assert.equal(off.hasSubgroups, false);
      assert.equal(off.subgroups, false);
      assert.ok(!off.device.features.has("subgroups"), "the feature is not even requested");
      assert.equal(
        lines[1],
        "[gpu] reductions: workgroup-memory trees (no subgroups: disabled by subgroups: false)",
      );
      assert.throws(() => off.subgroups = true, GpuLimitError);
      assert.equal(off.kernels.get("rms_norm").key, "rms_norm{}");
    } finally {
      off.destroy();
    }
    const previous = Deno.env.get("ADEPT_SUBGROUPS");
    Deno.env.set("ADEPT_SUBGROUPS", "0");
    lines.length = 0;
    try {
      const env = await requestGpu({ log: (l) => lines.push(l) });
      assert.equal(env.subgroups, false);
      assert.match(lines[1], /no subgroups: disabled by ADEPT_SUBGROUPS=0\)$/);
      env.destroy();
    } finally {
      if (previous === undefined) Deno.env.delete("ADEPT_SUBGROUPS");
      else Deno.env.set("ADEPT_SUBGROUPS", previous);
    }
    const gpu = await device();
    if (gpu.hasSubgroups) {
      const on = await autoGpu({ subgroups: true, log: false });
      assert.equal(on.subgroups, true);
      assert.equal(on.kernels.get("rms_norm").key, "rms_norm+subgroups{}");
      assert.equal(on.kernels.get("matmul").key.includes("+subgroups"), false, "no variant");
      on.destroy();
    } else {
      await assert.rejects(autoGpu({ subgroups: true, log: false }), GpuLimitError);
    }
  },
);

gpuTest("every kernel with a subgroup variant compiles on both paths", async () => {
  const gpu = await device();
  for (const sg of paths(gpu)) {
    gpu.subgroups = sg;
    for (const name of WITH_VARIANT) {
      assert.equal(gpu.kernels.hasSubgroupVariant(name), true);
      const k = gpu.kernels.get(name);
      assert.equal(k.key.includes("+subgroups"), sg, k.key);
    }
  }
  gpu.subgroups = gpu.hasSubgroups;
  await gpu.flush();
});

gpuTest(
  "rms_norm (plain and with the fused residual) and rms_norm_backward match the CPU reference on both paths",
  async () => {
    const gpu = await device();
    const rng = new Rng(11);
    for (const c of [1, 37, 64, 65, 200, 768]) {
      const rows = 5;
      const xs = rng.normal(rows * c, 3);
      const ys = rng.normal(rows * c, 1);
      const ws = rng.uniform(c, 0.5, 1.5);
      const gs = rng.normal(rows * c, 1);
      const x = gpu.upload("x", xs, [rows, c]);
      const y = gpu.upload("y", ys, [rows, c]);
      const weight = gpu.upload("w", ws, [c]);
      const dout = gpu.upload("dout", gs, [rows, c]);
      const sum = gpu.tensor("sum", [rows, c]);
      const out = gpu.tensor("out", [rows, c]);
      const out2 = gpu.tensor("out2", [rows, c]);
      const rstd = gpu.tensor("rstd", [rows]);
      const rstd2 = gpu.tensor("rstd2", [rows]);
      const dx = gpu.tensor("dx", [rows, c]);
      const s = Float64Array.from(xs, (v, i) => v + ys[i]);
      const plain = rmsNormCpu(xs, ws, 1e-6);
      const fused = rmsNormCpu(s, ws, 1e-6);
      const back = rmsNormBackwardCpu(gs, xs, ws, 1e-6);
      await bothPaths(
        gpu,
        `C = ${c}`,
        // a workgroup per row (the reduction; a CPU adapter's default is a thread per row)
        () => [
          residualRmsNorm(gpu, { x, weight, out, rstd, eps: 1e-6, threadPerRow: false }),
          residualRmsNorm(gpu, {
            ...{ x, y, weight, sum, out: out2, rstd: rstd2, eps: 1e-6 },
            threadPerRow: false,
          }),
          rmsNormBackward(gpu, { dout, x, weight, rstd, dx, threadPerRow: false }),
        ],
        () => Promise.all([out, rstd, out2, rstd2, dx].map((t) => gpu.readF64(t))),
        (r, at) => {
          assertClose(r[0], plain.out, { atol: 1e-6, rtol: 1e-5, label: `${at}: out` });
          assertClose(r[1], plain.rstd, { atol: 0, rtol: 1e-5, label: `${at}: rstd` });
          assertClose(r[2], fused.out, { atol: 1e-6, rtol: 1e-5, label: `${at}: fused out` });
          assertClose(r[3], fused.rstd, { atol: 0, rtol: 1e-5, label: `${at}: fused rstd` });
          assertClose(r[4], back.dx, { atol: 1e-5, rtol: 1e-4, label: `${at}: dx` });
        },
        { atol: 1e-6, rtol: 2e-6 },
      );
      for (const t of [x, y, weight, dout, sum, out, out2, rstd, rstd2, dx]) {
        gpu.freeBuffer(t.buffer);
      }
    }
  },
);

gpuTest(
  "softmax (bias, mask, causal, a fully masked row) and its backward with the bias gradient match the CPU reference on both paths",
  async () => {
    const gpu = await device();
    const rng = new Rng(12);
    for (const sk of [1, 7, 64, 100, 300]) {
      const shape = [2, 3, 4, sk];
      const [b, h, sq] = shape;
      const n = b * h * sq * sk;
      const xs = rng.normal(n, 4);
      const bs = rng.normal(h * sq * sk, 1);
      const ms = new Float32Array(b * sk).fill(1);
      for (let k = 0; k < sk; k++) ms[k] = 0; // batch 0: every key masked (a uniform row)
      for (let k = 1; k < sk; k += 3) ms[sk + k] = 0;
      const gs = rng.normal(n, 1);
      const x = gpu.upload("x", xs, shape);
      const bias = gpu.upload("bias", bs, [h, sq, sk]);
      const mask = gpu.upload("mask", ms, [b, sk]);
      const dout = gpu.upload("dout", gs, shape);
      const y = gpu.tensor("y", shape);
      const dx = gpu.tensor("dx", shape);
      const dbias = gpu.tensor("dbias", [h, sq, sk]);
      const opts = { scale: 0.7, bias: bs, mask: ms, causal: true, causalOffset: sk - sq };
      const yRef = softmaxCpu(xs, shape, opts);
      // The backward is checked from the GPU's own y (its reference takes y as input).
      await bothPaths(
        gpu,
        `Sk = ${sk}`,
        () => [
          softmax(gpu, { x, out: y, bias, mask, scale: 0.7, causal: true, causalOffset: sk - sq }),
          softmaxBackward(gpu, { dout, y, dx, dbias, scale: 0.7 }),
        ],
        () => Promise.all([y, dx, dbias].map((t) => gpu.readF64(t))),
        (r, at) => {
          assertClose(r[0], yRef, { atol: 1e-7, rtol: 1e-5, label: `${at}: y` });
          const ref = softmaxBackwardCpu(gs, r[0], shape, { scale: 0.7 });
          assertClose(r[1], ref.dx, { atol: 1e-6, rtol: 1e-4, label: `${at}: dx` });
          assertClose(r[2], ref.dbias, { atol: 1e-6, rtol: 1e-4, label: `${at}: dbias` });
        },
        { atol: 1e-6, rtol: 1e-5 },
      );
      for (const t of [x, bias, mask, dout, y, dx, dbias]) gpu.freeBuffer(t.buffer);
    }
  },
);

gpuTest(
  "cross_entropy_forward matches the CPU reference on both paths, large logits included; the row maxima agree bitwise",
  async () => {
    const gpu = await device();
    const rng = new Rng(13);
    for (const [v, std] of [[5, 1], [300, 3], [1000, 1], [4097, 30], [600, 2e3]]) {
      const rows = 6;
      const ls = rng.normal(rows * v, std);
      const labs = rng.ints(rows, 0, v);
      labs[2] = -100; // ignored
      const logits = gpu.upload("logits", ls, [rows, v]);
      const labels = gpu.upload("labels", labs, [rows]);
      const loss = gpu.tensor("loss", [1]);
      const lse = gpu.tensor("lse", [rows, 2]);
      const nValid = gpu.tensor("nValid", [1], "u32");
      const dlogits = gpu.tensor("dlogits", [rows, v]);
      const ref = crossEntropyForwardCpu(ls, v, labs);
      const dref = crossEntropyBackwardCpu(ls, v, labs);
      const maxima: Float64Array[] = [];
      await bothPaths(
        gpu,
        `V = ${v}, logits ~ N(0, ${std}²)`,
        () => {
          const fwd = crossEntropyForward(gpu, { logits, labels, loss, lse, nValid });
          return [fwd, crossEntropyBackward(gpu, { dlogits, logits, labels, lse, nValid })];
        },
        () => Promise.all([loss, lse, dlogits].map((t) => gpu.readF64(t))),
        (r, at) => {
          assertClose(r[0], [ref.loss], { atol: 1e-6, rtol: 1e-5, label: `${at}: loss` });
          const total = Float64Array.from(
            { length: rows },
            (_, i) => r[1][2 * i] + r[1][2 * i + 1],
          );
          assertClose(total, ref.lse, { atol: 1e-5, rtol: 1e-6, label: `${at}: lse` });
          assertClose(r[2], dref, { atol: 1e-7, rtol: 1e-4, label: `${at}: dlogits` });
          maxima.push(Float64Array.from({ length: rows }, (_, i) => r[1][2 * i]));
        },
        { atol: 1e-6, rtol: 1e-5 },
      );
      if (maxima.length === 2) assert.deepEqual(maxima[0], maxima[1], "maxima are exact");
      for (const t of [logits, labels, loss, lse, nValid, dlogits]) gpu.freeBuffer(t.buffer);
    }
  },
);

gpuTest(
  "sum_squares and l2_norm_final (globalL2Norm) match the CPU reference on both paths",
  async () => {
    const gpu = await device();
    const rng = new Rng(14);
    const sizes = [1, 255, 4097, 10000, 70001, 1200 * 256];
    const data = sizes.map((n, i) => rng.normal(n, i + 0.5));
    const tensors = data.map((d, i) => gpu.upload(`t${i}`, d));
    const out = gpu.tensor("norm", [1]);
    const ref = globalL2NormCpu(data);
    await bothPaths(
      gpu,
      "global L2 norm",
      () => [globalL2Norm(gpu, { tensors, out })],
      () => Promise.all([gpu.readF64(out)]),
      (r, at) => assertClose(r[0], [ref], { atol: 0, rtol: 1e-5, label: at }),
      { atol: 0, rtol: 1e-5 },
    );
    for (const t of [...tensors, out]) gpu.freeBuffer(t.buffer);
  },
);
