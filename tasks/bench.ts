/**
 * Benchmarks: one JSON line per figure, each with an `id`, its parameters and its measurements
 * (wall-clock and, where the adapter has `timestamp-query`, GPU time by op group).
 *
 * Usage: `deno task bench [--only matmul,roundtrip,t5,methods,tokenize] [--quick] [--full]
 * [--out FILE.jsonl] [--compare BASELINE.jsonl] [--tolerance 0.1] [--vs-torch] [--tune]`
 * (`--help` lists them).
 *
 * - `--full` also runs the T5-base step and the T5-small method steps on a software (CPU)
 *   adapter, where they take minutes.
 * - `--out` writes every record, with the adapter, its limits, Deno's version, the git commit
 *   and the date, to a JSON-lines file.
 * - `--compare` prints a Markdown table of every figure against the baseline file's and exits
 *   with status 1 when one is worse by more than `--tolerance` (default 10 %).
 * - `--vs-torch` runs the same ADePT training step in PyTorch (`tools/torch_bench.py`, when
 *   Python and torch are found) and prints our tokens per second beside PyTorch's.
 * - `--tune` measures the tiling of every product of the T5 steps on this adapter before timing
 *   them (`tuneMatmuls`), reusing and updating the saved table (`loadMatmulTuning`,
 *   `saveMatmulTuning`); without it the products take the heuristic's tiling.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Gpu, requestGpu } from "../src/gpu/device.ts";
import { matmul, matmulNaive, tuneMatmuls } from "../src/layers/matmul.ts";
import { loadMatmulTuning, saveMatmulTuning } from "../src/layers/matmul_plan.ts";
import type { T5WeightDtype } from "../src/model/t5_weights.ts";
import { T5Model } from "../src/model/t5.ts";
import type { T5Shape } from "../src/model/t5_buffers.ts";
import { parseT5Config } from "../src/model/t5_config.ts";
import { randomT5Weights } from "../src/model/t5_weights.ts";
import {
  type BenchRecord,
  compareRecords,
  comparisonMarkdown,
  profileGroups,
  readRecords,
  runInfo,
  timeMs,
} from "./bench_lib.ts";
import { benchMethods } from "./bench_methods.ts";
import { benchTokenize } from "./bench_tokenize.ts";
import { benchVsTorch } from "./bench_vs_torch.ts";

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        full: { type: "boolean", default: false },
        out: { type: "string" },
        compare: { type: "string" },
        tolerance: { type: "string", default: "0.1" },
        "vs-torch": { type: "boolean", default: false },
        tune: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    console.error(`deno task bench: ${(e as Error).message}; see --help`);
    Deno.exit(2);
  }
}
const { values } = parseFlags();
if (values.help) {
  console.log(`deno task bench [options]: benchmarks, one JSON line per figure

  --only LIST         groups to run, comma-separated: matmul, roundtrip, t5, methods, tokenize
                      ("" runs none: with --vs-torch, only the PyTorch comparison)
  --quick             fewer repetitions (CI smoke runs)
  --full              also the T5-base step and T5-small method steps on a CPU adapter (minutes)
  --out FILE.jsonl    write every record with the adapter, its limits, Deno, commit and date
  --compare FILE      Markdown table against a baseline; exit 1 on a regression
  --tolerance F       regression threshold for --compare (default 0.1 = 10 %)
  --vs-torch          the same ADePT step in PyTorch (tools/torch_bench.py; ADEPT_PYTHON,
                      ADEPT_TORCH_THREADS) beside ours
  --tune              measure the T5 steps' matmul tilings first (saved and reused)
  -h, --help          this text`);
  Deno.exit(0);
}
const GROUPS = ["matmul", "roundtrip", "t5", "methods", "tokenize"];
const only = values.only?.split(",").filter((x) => x !== "");
const unknown = only?.filter((x) => !GROUPS.includes(x)) ?? [];
if (unknown.length) {
  console.error(
    `deno task bench: --only ${unknown.join(",")}: unknown group; groups: ${GROUPS.join(", ")} ` +
      `(--only "" runs none: with --vs-torch, only the PyTorch comparison)`,
  );
  Deno.exit(2);
}
const want = (name: string) => !only || only.includes(name);
const tolerance = Number(values.tolerance);
if (!(tolerance >= 0 && tolerance < 1)) {
  console.error(`--tolerance ${values.tolerance}: expected a fraction in [0, 1), e.g. 0.1`);
  Deno.exit(2);
}

const gpu = await requestGpu();
const info = await runInfo(gpu);
const records: BenchRecord[] = [];
const outFile = values.out
  ? await Deno.open(values.out, { write: true, create: true, truncate: true })
  : undefined;

/** Prints a record and keeps it (with the run's info in the `--out` file). */
async function emit(record: BenchRecord): Promise<void> {
  const r = { ...record, adapter: gpu.adapter.description };
  records.push(r);
  console.log(JSON.stringify(r));
  if (outFile) {
    await outFile.write(new TextEncoder().encode(JSON.stringify({ ...r, ...info }) + "\n"));
  }
}

async function benchMatmul(
  m: number,
  n: number,
  k: number,
  label: string,
  kernel: "matmul" | "matmul_naive" = "matmul",
  bDtype: "f32" | "f16" = "f32",
) {
  const a = gpu.tensor("a", [m, k]);
  const b = gpu.tensor("b", [k, n], bDtype);
  const c = gpu.tensor("c", [m, n]);
  const op = kernel === "matmul"
    ? matmul(gpu, { a, b, out: c })
    : matmulNaive(gpu, { a, b, out: c });
  const flops = 2 * m * n * k;
  // Size the repetitions per submit by measurement, so that a submit holds at least 100 ms of
  // work and Deno's ~10 ms queue round trip does not count.
  const one = await timeMs(async () => {
    await gpu.run([op], label);
    await gpu.sync();
  }, { minReps: 1, minSeconds: 0 });
  const perSubmit = Math.max(1, Math.min(2000, Math.ceil(100 / Math.max(one.min - 10, 0.05))));
  const batch = Array(perSubmit).fill(op);
  const t = await timeMs(async () => {
    await gpu.run(batch, label);
    await gpu.sync();
  }, { minReps: values.quick ? 1 : 3, minSeconds: values.quick ? 0 : 1 });
  const ms = t.min / perSubmit;
  const gpuMs = await gpu.profile([{ label, ops: batch }]);
  await emit({
    id: `${kernel}/${label}`,
    bench: kernel,
    shape: label,
    m,
    n,
    k,
    dtype: bDtype === "f16" ? "f32 x f16" : "f32",
    ms_per_matmul: +ms.toFixed(4),
    gflops: +(flops / ms / 1e6).toFixed(2),
    ...(gpuMs ? { gpu_ms_per_matmul: +(gpuMs[0] / perSubmit).toFixed(4) } : {}),
    reps_per_submit: perSubmit,
  });
  op.destroy();
  for (const x of [a, b, c]) gpu.freeBuffer(x.buffer);
}

async function benchRoundTrip() {
  const s = gpu.tensor("scalar", [1]);
  const t = await timeMs(async () => {
    await gpu.run([], "empty");
    await gpu.read(s);
  }, { minReps: 20, minSeconds: 0 });
  await emit({
    id: "submit_readback_roundtrip",
    bench: "submit_readback_roundtrip",
    ms_median: +t.median.toFixed(3),
    ms_min: +t.min.toFixed(3),
  });
  gpu.freeBuffer(s.buffer);
}

/** T5-small and T5-base shapes (random weights: the speed does not depend on the values). */
const T5_SHAPES = {
  "t5-small": { d_model: 512, d_kv: 64, d_ff: 2048, num_heads: 8, num_layers: 6 },
  "t5-base": { d_model: 768, d_kv: 64, d_ff: 3072, num_heads: 12, num_layers: 12 },
} as const;

async function benchT5(
  g: Gpu,
  name: keyof typeof T5_SHAPES,
  shape: T5Shape,
  weightDtype: T5WeightDtype = "f32",
) {
  const config = parseT5Config({
    model_type: "t5",
    vocab_size: 32128,
    relative_attention_num_buckets: 32,
    ...T5_SHAPES[name],
  }, { source: `${name} (random)` });
  const before = g.allocatedBytes;
  const model = new T5Model(g, config, randomT5Weights(g, config, { weightDtype }));
  let session = model.session(shape);
  if (values.tune) {
    // the session's products are known once it is built: measure them, then rebuild
    await tuneMatmuls(g, { log: (l) => console.error(l) });
    session.destroy();
    session = model.session(shape);
  }
  const { batch: B, sourceLength: S, targetLength: T } = shape;
  const ids = new Int32Array(B * S);
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 7919) % 32000 + 3;
  const labels = new Int32Array(B * T);
  for (let i = 0; i < labels.length; i++) labels[i] = (i * 104729) % 32000 + 3;
  session.setBatch({ inputIds: ids, attentionMask: new Float32Array(B * S).fill(1), labels });
  const t = await timeMs(async () => {
    await session.backward();
    await g.sync();
  }, { minReps: values.quick ? 1 : 3, minSeconds: 0 });
  const ops = [session.embedOp, ...session.trainOps, ...session.backwardOps];
  const groups = await profileGroups(g, ops.map((op) => ({ op })));
  await emit({
    id: `t5_forward_backward/${name}${weightDtype === "f16" ? " f16" : ""}/${B}x${S}+${T}`,
    bench: "t5_forward_backward",
    model: name,
    weights: `random ${weightDtype}`,
    matmul_tiling: values.tune ? "tuned" : "heuristic",
    batch: B,
    source_length: S,
    target_length: T,
    dispatches: ops.reduce((n, op) => n + op.dispatches.length, 0),
    ms_per_step: +t.median.toFixed(1),
    tokens_per_s: +((B * (S + T)) / (t.median / 1000)).toFixed(1),
    ...(groups
      ? {
        gpu_ms_per_step: +Object.values(groups).reduce((a, x) => a + x, 0).toFixed(2),
        gpu_ms_by_group: groups,
      }
      : {}),
    gpu_memory_mib: +((g.allocatedBytes - before) / 2 ** 20).toFixed(1),
  });
  session.destroy();
  model.destroy();
}

if (want("roundtrip")) await benchRoundTrip();
if (want("matmul")) {
  // The naive 16x16-tile kernel calibrates the machine: lavapipe machines differ by 2x or more.
  await benchMatmul(512, 512, 512, "512^3", "matmul_naive");
  for (const s of [256, 512, 1024]) await benchMatmul(s, s, s, `${s}^3`);
  if (!gpu.adapter.software || values.full) await benchMatmul(4096, 4096, 4096, "4096^3");
  // T5-base feed-forward: (batch 32 x 256 tokens = 8192, 768) x (768, 3072)
  await benchMatmul(8192, 3072, 768, "t5-base ffn 8192x768x3072");
  if (gpu.hasF16) {
    // The same with the weight in f16 (loadT5's weightDtype "f16"), f32 accumulation
    await benchMatmul(8192, 3072, 768, "t5-base ffn f16 weight 8192x768x3072", "matmul", "f16");
  }
  // Few rows, long K: the decoder and LM-head products at 4 target tokens (16-row tiles; K split
  // where the tiles are too few for the device)
  await benchMatmul(16, 512, 512, "t5-small decoder 16x512x512");
  await benchMatmul(16, 512, 32128, "t5-small lm_head.backward 16x32128x512");
  if (!gpu.adapter.software || values.full) {
    await benchMatmul(128, 768, 32128, "t5-base lm_head.backward 128x32128x768");
  }
}
if (want("t5")) {
  // The paper's recipe is batch 32 x 256 source tokens; a CPU adapter gets a small batch.
  const big: T5Shape = { batch: 32, sourceLength: 256, targetLength: 4 };
  const small: T5Shape = { batch: 4, sourceLength: 32, targetLength: 4 };
  const sw = gpu.adapter.software;
  if (values.tune) await loadMatmulTuning(gpu);
  await benchT5(gpu, "t5-small", sw ? small : big);
  if (!sw || values.full) {
    await benchT5(gpu, "t5-base", sw ? small : big);
    // half the weight bytes: what it buys where bandwidth, not arithmetic, bounds the products
    if (gpu.hasF16) await benchT5(gpu, "t5-base", sw ? small : big, "f16");
  }
  if (values.tune) console.error(`[matmul] tuning saved: ${await saveMatmulTuning(gpu)}`);
}
if (want("methods")) await benchMethods(gpu, emit, { quick: values.quick, full: values.full });
if (want("tokenize")) await benchTokenize(emit);
if (values["vs-torch"]) {
  await benchVsTorch(gpu, emit, records, { quick: values.quick, full: values.full });
}
outFile?.close();
if (values.compare) {
  const baseline = await readRecords(values.compare);
  const rows = compareRecords(records, baseline, tolerance);
  console.log("\n" + comparisonMarkdown(rows, tolerance));
  const summary = Deno.env.get("GITHUB_STEP_SUMMARY");
  if (summary) {
    await Deno.writeTextFile(
      summary,
      `## Benchmarks vs ${values.compare}\n\n${comparisonMarkdown(rows, tolerance)}\n`,
      {
        append: true,
      },
    );
  }
  if (rows.some((r) => r.regression)) Deno.exit(1);
}
gpu.destroy();
