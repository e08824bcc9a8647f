/**
 * Benchmarks: prints one JSON line per measurement, each with the adapter's name.
 *
 * Usage: `deno task bench [--only matmul,roundtrip,t5,methods,tokenize] [--quick] [--full]`
 *
 * `--full` also runs the T5-base step and the T5-small method steps on a software (CPU)
 * adapter, where they take minutes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Gpu, requestGpu } from "../src/gpu/device.ts";
import { matmul, matmulNaive } from "../src/layers/matmul.ts";
import { T5Model } from "../src/model/t5.ts";
import type { T5Shape } from "../src/model/t5_buffers.ts";
import { parseT5Config } from "../src/model/t5_config.ts";
import { randomT5Weights } from "../src/model/t5_weights.ts";
import { benchMethods } from "./bench_methods.ts";
import { benchTokenize } from "./bench_tokenize.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
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

async function benchMatmul(
  gpu: Gpu,
  m: number,
  n: number,
  k: number,
  label: string,
  kernel: "matmul" | "matmul_naive" = "matmul",
) {
  const a = gpu.tensor("a", [m, k]);
  const b = gpu.tensor("b", [k, n]);
  const c = gpu.tensor("c", [m, n]);
  const ops = [
    kernel === "matmul" ? matmul(gpu, { a, b, out: c }) : matmulNaive(gpu, { a, b, out: c }),
  ];
  const flops = 2 * m * n * k;
  // Enough repetitions per submit to amortise the ~10 ms queue round trip.
  const estSeconds = flops / (gpu.adapter.software ? (kernel === "matmul" ? 2e9 : 2e8) : 5e12);
  const perSubmit = Math.max(1, Math.min(50, Math.ceil(0.2 / estSeconds)));
  const batch = Array(perSubmit).fill(ops).flat();
  const times = await timeIt(async () => {
    await gpu.run(batch, label);
    await gpu.sync();
  }, values.quick ? 1 : 3);
  const ms = Math.min(...times) / perSubmit;
  emit(gpu, {
    bench: kernel,
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

/** T5-small and T5-base shapes (random weights: the speed does not depend on the values). */
const T5_SHAPES = {
  "t5-small": { d_model: 512, d_kv: 64, d_ff: 2048, num_heads: 8, num_layers: 6 },
  "t5-base": { d_model: 768, d_kv: 64, d_ff: 3072, num_heads: 12, num_layers: 12 },
} as const;

async function benchT5(gpu: Gpu, name: keyof typeof T5_SHAPES, shape: T5Shape, steps: number) {
  const config = parseT5Config({
    model_type: "t5",
    vocab_size: 32128,
    relative_attention_num_buckets: 32,
    ...T5_SHAPES[name],
  }, { source: `${name} (random)` });
  const before = gpu.allocatedBytes;
  const model = new T5Model(gpu, config, randomT5Weights(gpu, config));
  const session = model.session(shape);
  const { batch: B, sourceLength: S, targetLength: T } = shape;
  const ids = new Int32Array(B * S);
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 7919) % 32000 + 3;
  const labels = new Int32Array(B * T);
  for (let i = 0; i < labels.length; i++) labels[i] = (i * 104729) % 32000 + 3;
  session.setBatch({ inputIds: ids, attentionMask: new Float32Array(B * S).fill(1), labels });
  const times = await timeIt(async () => {
    await session.backward();
    await gpu.sync();
  }, steps);
  const ms = median(times);
  emit(gpu, {
    bench: "t5_forward_backward",
    model: name,
    weights: "random",
    batch: B,
    source_length: S,
    target_length: T,
    ms_per_step: +ms.toFixed(1),
    tokens_per_s: +((B * (S + T)) / (ms / 1000)).toFixed(1),
    gpu_memory_mib: +((gpu.allocatedBytes - before) / 2 ** 20).toFixed(1),
    loss: await session.readLoss(),
  });
  session.destroy();
  gpu.freeArena(model.weights);
}

const gpu = await requestGpu();
if (want("roundtrip")) await benchRoundTrip(gpu);
if (want("matmul")) {
  // The naive 16x16-tile kernel calibrates the machine: lavapipe machines differ by 2x or more.
  await benchMatmul(gpu, 512, 512, 512, "512^3", "matmul_naive");
  for (const s of [256, 512, 1024]) await benchMatmul(gpu, s, s, s, `${s}^3`);
  // T5-base feed-forward: (batch 32 x 256 tokens = 8192, 768) x (768, 3072)
  await benchMatmul(gpu, 8192, 3072, 768, "t5-base ffn 8192x768x3072");
}
if (want("t5")) {
  // The paper's recipe is batch 32 x 256 source tokens; a CPU adapter gets a small batch.
  const big: T5Shape = { batch: 32, sourceLength: 256, targetLength: 4 };
  const small: T5Shape = { batch: 4, sourceLength: 32, targetLength: 4 };
  const sw = gpu.adapter.software;
  await benchT5(gpu, "t5-small", sw ? small : big, values.quick ? 1 : 3);
  if (!sw || values.full) await benchT5(gpu, "t5-base", sw ? small : big, values.quick ? 1 : 3);
}
if (want("methods")) {
  await benchMethods(gpu, (r) => emit(gpu, r), { quick: values.quick, full: values.full });
}
if (want("tokenize")) await benchTokenize((r) => console.log(JSON.stringify(r)));
