/**
 * Dev script: times the matmul kernel of an earlier commit against today's launcher with each
 * tiling and kernel option, on the same device in the same run (GPU time from timestamp queries,
 * every variant of a shape in one submit, best of N rounds), so the ratios hold even on a loaded
 * machine.
 *
 * Usage: `deno run -A tools/matmul_variants.ts [--ref b979938] [--rounds 7] [--shapes 256,t5]
 * [--threads 1]`. `--ref` is the commit whose `kernels/matmul.wgsl` is the baseline (its
 * `WG` override: 16 for the 128x128 tile when M and N are at least 128, else 8, as it chose);
 * `--threads` sets lavapipe's `LP_NUM_THREADS` for a quieter single-core comparison (it must be
 * set before the device starts, so the script restarts itself with it).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { requestGpu } from "../src/gpu/device.ts";
import { uniformBytes } from "../src/gpu/op.ts";
import { parseKernelInterface } from "../src/gpu/wgsl.ts";
import {
  type MatmulConfig,
  matmulConfigName,
  matmulStrided,
  matmulWorkgroupBytes,
} from "../src/layers/matmul.ts";
import type { Tensor } from "../src/gpu/tensor.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ref: { type: "string", default: "b979938" },
    rounds: { type: "string", default: "7" },
    shapes: { type: "string", default: "256,t5" },
    threads: { type: "string" },
  },
});
if (values.threads && Deno.env.get("LP_NUM_THREADS") !== values.threads) {
  const self = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...Deno.args],
    env: { LP_NUM_THREADS: values.threads },
  });
  Deno.exit((await self.spawn().status).code);
}

const old = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["show", `${values.ref}:kernels/matmul.wgsl`] }).output())
    .stdout,
);
if (!old.includes("fn main")) throw new Error(`no kernels/matmul.wgsl at ${values.ref}`);

const gpu = await requestGpu();
const rounds = Number(values.rounds);

interface Shape {
  name: string;
  m: number;
  n: number;
  k: number;
  tA?: boolean;
  tB?: boolean;
}

const SETS: Record<string, Shape[]> = {
  "256": [
    { name: "256^3", m: 256, n: 256, k: 256 },
    { name: "256^3 Bᵀ", m: 256, n: 256, k: 256, tB: true },
    { name: "256^3 Aᵀ", m: 256, n: 256, k: 256, tA: true },
  ],
  "512": [{ name: "512^3", m: 512, n: 512, k: 512 }],
  // Products of a T5-small step at the software bench's shape (batch 4 x 32 source, 4 target)
  t5: [
    { name: "encoder x·Wᵀ 128x512x512", m: 128, n: 512, k: 512, tB: true },
    { name: "ffn wi 128x2048x512", m: 128, n: 2048, k: 512, tB: true },
    { name: "decoder x·Wᵀ 16x512x512", m: 16, n: 512, k: 512, tB: true },
    { name: "lm_head 16x32128x512", m: 16, n: 32128, k: 512, tB: true },
    { name: "lm_head.backward 16x512x32128", m: 16, n: 512, k: 32128 },
    { name: "adept dA 768x16x2048 Aᵀ", m: 768, n: 16, k: 2048, tA: true },
  ],
};

/** The earlier commit's kernel, compiled and bound by hand (its own constants and params). */
function oldOp(s: Shape, a: Tensor, b: Tensor, c: Tensor) {
  const wg = s.m >= 128 && s.n >= 128 ? 16 : 8;
  const tile = 8 * wg;
  const d = gpu.device;
  const iface = parseKernelInterface("old", old);
  const module = d.createShaderModule({ code: old });
  const layout = d.createBindGroupLayout({
    entries: iface.bindings.map((x) => ({
      binding: x.index,
      visibility: GPUShaderStage.COMPUTE,
      buffer: {
        type: x.kind === "uniform"
          ? "uniform" as const
          : x.kind === "read"
          ? "read-only-storage" as const
          : "storage" as const,
      },
    })),
  });
  const pipeline = d.createComputePipeline({
    layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: {
      module,
      entryPoint: "main",
      constants: {
        TRANS_A: +!!s.tA,
        TRANS_B: +!!s.tB,
        HAS_BIAS: 0,
        ACCUMULATE: 0,
        CHECK: +(s.m % tile !== 0 || s.n % tile !== 0 || s.k % 16 !== 0),
        WG: wg,
      },
    },
  });
  const p: Record<string, number> = {
    m: s.m,
    n: s.n,
    k: s.k,
    lda: s.tA ? s.m : s.k,
    ldb: s.tB ? s.k : s.n,
    ldc: s.n,
    batch_inner: 1,
    alpha: 1,
  };
  const ub = d.createBuffer({
    size: uniformBytes(iface.params.length),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const data = new ArrayBuffer(ub.size);
  iface.params.forEach((f, i) => {
    if (f.type === "f32") new Float32Array(data)[i] = p[f.name] ?? 0;
    else new Uint32Array(data)[i] = p[f.name] ?? 0;
  });
  d.queue.writeBuffer(ub, 0, data);
  const t = { a, b, bias: gpu.placeholder, c };
  const bindGroup = d.createBindGroup({
    layout,
    entries: iface.bindings.map((x) =>
      x.kind === "uniform"
        ? { binding: x.index, resource: { buffer: ub } }
        : { binding: x.index, resource: { buffer: t[x.name as keyof typeof t].buffer } }
    ),
  });
  return {
    label: `old (WG ${wg})`,
    record(pass: GPUComputePassEncoder) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil(s.n / tile), Math.ceil(s.m / tile), 1);
    },
  };
}

const CONFIGS: (MatmulConfig & { scalar?: boolean; f16?: boolean })[] = [
  { tile: "64x64", scalar: true },
  { tile: "64x64" },
  { tile: "64x64", pad: true },
  { tile: "64x64", doubleBuffer: true },
  { tile: "128x128", scalar: true },
  { tile: "128x128" },
  { tile: "128x128", pad: true },
  { tile: "128x128", doubleBuffer: true },
  { tile: "32x32" },
  { tile: "16x128" },
  { tile: "128x16" },
  { tile: "64x64", splitK: 2 },
  { tile: "64x64", splitK: 4 },
  { tile: "16x128", splitK: 4 },
  // B (the weight) in f16, as loadT5's weightDtype "f16" keeps it
  { tile: "64x64", f16: true },
  { tile: "128x128", f16: true },
  { tile: "16x128", f16: true },
];

console.log(
  `adapter: ${gpu.adapter.description}; LP_NUM_THREADS=${
    Deno.env.get("LP_NUM_THREADS") ?? "unset"
  }; best of ${rounds} rounds; GPU ms per product (GFLOP/s); ratio = old / variant`,
);
for (const set of values.shapes.split(",")) {
  for (const s of SETS[set] ?? []) {
    // One element of offset makes the scalar kernel run (no vec4 loads).
    const a = gpu.tensor("a", [s.m * s.k + 1]);
    const b = gpu.tensor("b", [s.k * s.n]);
    const b16 = gpu.hasF16 ? gpu.tensor("b16", [s.k * s.n], "f16") : undefined;
    const c = gpu.tensor("c", [s.m * s.n]);
    const ops = [oldOp(s, a, b, c)];
    for (const cfg of CONFIGS) {
      if (matmulWorkgroupBytes(cfg) > gpu.limits.maxComputeWorkgroupStorageSize) continue;
      if (cfg.f16 && !b16) continue;
      const off = cfg.scalar ? 1 : 0;
      const op = matmulStrided(gpu, {
        m: s.m,
        n: s.n,
        k: s.k,
        transA: s.tA,
        transB: s.tB,
        a: { tensor: a, offset: off, ld: s.tA ? s.m : s.k },
        b: { tensor: cfg.f16 ? b16! : b, ld: s.tB ? s.k : s.n },
        out: { tensor: c, ld: s.n },
        config: cfg,
      });
      ops.push({
        label: `${matmulConfigName(cfg)}${cfg.scalar ? " scalar" : ""}${cfg.f16 ? " f16 B" : ""}`,
        record: (p) => op.record(p),
      });
    }
    const flops = 2 * s.m * s.n * s.k;
    const first = (await gpu.profile(ops.map((op) => ({ label: op.label, ops: [op] }))))!;
    const reps = first.map((ms) => Math.max(1, Math.min(20, Math.ceil(20 / ms))));
    const best = ops.map(() => Infinity);
    for (let r = 0; r < rounds; r++) {
      const ms = (await gpu.profile(
        ops.map((op, i) => ({ label: op.label, ops: Array(reps[i]).fill(op) })),
      ))!;
      ms.forEach((x, i) => best[i] = Math.min(best[i], x / reps[i]));
    }
    console.log(`\n${s.name}`);
    ops.forEach((op, i) => {
      console.log(
        `  ${op.label.padEnd(24)} ${best[i].toFixed(3).padStart(9)} ms ${
          (flops / best[i] / 1e6).toFixed(2).padStart(7)
        } GFLOP/s  x${(best[0] / best[i]).toFixed(2)}`,
      );
    });
    for (const t of [a, b, c, b16]) if (t) gpu.freeBuffer(t.buffer);
  }
}
gpu.destroy();
