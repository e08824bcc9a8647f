/**
 * Benchmarks: prints one JSON line per measurement, each with the adapter's name.
 *
 * Usage: `deno task bench [--only matmul,roundtrip] [--quick]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Gpu, requestGpu } from "../src/gpu/device.ts";
import { matmul } from "../src/layers/matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const only = values.only?.split(",");
const want = (name: string) => !only || only.includes(name);

function emit(gpu: Gpu, record: Record<string, unknown>): void {
  console.log(JSON.stringify({ adapter: gpu.adapter.description, ...record }));
}

/** Times `fn` (which must finish its GPU work) `reps` times after one warm-up; returns ms. */
async function timeIt(fn: () => Promise<void>, reps: number): Promise<number[]> {
  await fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function benchMatmul(gpu: Gpu, m: number, n: number, k: number, label: string) {
  const a = gpu.tensor("a", [m, k]);
  const b = gpu.tensor("b", [k, n]);
  const c = gpu.tensor("c", [m, n]);
  const ops = [matmul(gpu, { a, b, out: c })];
  const flops = 2 * m * n * k;
  // Enough repetitions per submit to amortise the ~10 ms queue round trip.
  const estSeconds = flops / (gpu.adapter.software ? 2e9 : 5e12);
  const perSubmit = Math.max(1, Math.min(50, Math.ceil(0.2 / estSeconds)));
  const batch = Array(perSubmit).fill(ops).flat();
  const times = await timeIt(async () => {
    await gpu.run(batch, label);
    await gpu.sync();
  }, values.quick ? 1 : 3);
  const ms = Math.min(...times) / perSubmit;
  emit(gpu, {
    bench: "matmul",
    shape: label,
    m,
    n,
    k,
    dtype: "f32",
    ms_per_matmul: +ms.toFixed(3),
    gflops: +(flops / ms / 1e6).toFixed(2),
    reps_per_submit: perSubmit,
  });
  for (const t of [a, b, c]) gpu.freeBuffer(t.buffer);
}

async function benchRoundTrip(gpu: Gpu) {
  const t = gpu.tensor("scalar", [1]);
  const times = await timeIt(async () => {
    await gpu.run([], "empty");
    await gpu.read(t);
  }, 20);
  emit(gpu, {
    bench: "submit_readback_roundtrip",
    ms_median: +median(times).toFixed(3),
    ms_min: +Math.min(...times).toFixed(3),
  });
}

const gpu = await requestGpu();
if (want("roundtrip")) await benchRoundTrip(gpu);
if (want("matmul")) {
  for (const s of [256, 512, 1024]) await benchMatmul(gpu, s, s, s, `${s}^3`);
  // T5-base feed-forward: (batch 32 x 256 tokens = 8192, 768) x (768, 3072)
  await benchMatmul(gpu, 8192, 3072, 768, "t5-base ffn 8192x768x3072");
}
