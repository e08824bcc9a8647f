/**
 * `deno task bench --vs-torch`: the same ADePT training step (same shapes, method, dropout,
 * clipping, AdamW with two groups) here and in PyTorch + transformers (`tools/torch_bench.py`),
 * in the same run on the same machine, printed side by side: our tokens per second (steps timed
 * 8 at a time with one readback, as the trainer reads its losses back every `--log-every`
 * steps), PyTorch's
 * (fp32 with TF32 off; TF32 and bf16 autocast where they apply), and the ratio, with peak memory
 * beside them (ours: the bytes our allocations hold; PyTorch: `max_memory_allocated` on CUDA,
 * the process's peak RSS on a CPU).
 *
 * Python is `$ADEPT_PYTHON`, else `python3`; without Python or torch the comparison is skipped
 * with a message (exit code 3 of the script). `$ADEPT_TORCH_THREADS` sets PyTorch's CPU threads
 * (its default: one per core).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { Mt19937 } from "../src/data/mt19937.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { loadT5, T5Model } from "../src/model/t5.ts";
import { parseT5Config } from "../src/model/t5_config.ts";
import { randomT5Weights } from "../src/model/t5_weights.ts";
import "../src/peft/registry.ts";
import { methodModule } from "../src/peft/method.ts";
import { TrainStep } from "../src/train/step.ts";
import { type BenchRecord, timeMs } from "./bench_lib.ts";

/**
 * Steps per readback in our timing: the trainer reads its losses back every `--log-every` steps
 * (50 by default, 25 in the demo); 8 here keeps the round trip's share on the high side.
 */
const STEPS_PER_READBACK = 8;

/** A shape both sides run (the presets of tools/torch_bench.py). */
interface Shape {
  name: string;
  batch: number;
  source: number;
  prompt: number;
  rank: number;
  target: number;
  config?: Record<string, unknown>;
}

const SHAPES: Record<string, Shape> = {
  tiny: {
    name: "tiny",
    batch: 8,
    source: 64,
    prompt: 20,
    rank: 8,
    target: 4,
    config: {
      d_model: 64,
      d_kv: 16,
      num_heads: 4,
      d_ff: 128,
      num_layers: 2,
      vocab_size: 256,
      dropout_rate: 0.1,
    },
  },
  demo: { name: "demo", batch: 32, source: 10, prompt: 8, rank: 32, target: 10 },
  "t5-small": {
    name: "t5-small",
    batch: 32,
    source: 256,
    prompt: 60,
    rank: 19,
    target: 4,
    config: { d_model: 512, d_kv: 64, num_heads: 8, d_ff: 2048, num_layers: 6, vocab_size: 32128 },
  },
  "t5-base": {
    name: "t5-base",
    batch: 32,
    source: 256,
    prompt: 60,
    rank: 19,
    target: 4,
    config: {
      d_model: 768,
      d_kv: 64,
      num_heads: 12,
      d_ff: 3072,
      num_layers: 12,
      vocab_size: 32128,
    },
  },
};

const SCRIPT = fileURLToPath(new URL("../tools/torch_bench.py", import.meta.url));
const DEMO_MODEL = fileURLToPath(new URL("default/model", import.meta.url));

/** Our ADePT training step on a shape: median ms and the bytes allocated. */
async function ours(gpu: Gpu, s: Shape, quick: boolean) {
  let model: T5Model;
  if (s.config) {
    const config = parseT5Config({
      model_type: "t5",
      relative_attention_num_buckets: 32,
      ...s.config,
    }, { source: `${s.name} (random)` });
    model = new T5Model(gpu, config, randomT5Weights(gpu, config));
  } else model = await loadT5(gpu, DEMO_MODEL);
  const before = gpu.allocatedBytes;
  const mod = methodModule("adept");
  const method = await mod.create(
    model,
    mod.resolve({ promptLength: s.prompt, rank: s.rank, promptInit: "random" }),
    { rng: new Mt19937(1) },
  );
  const step = new TrainStep(model, method, {
    batch: s.batch,
    sourceLength: s.source,
    targetLength: s.target,
    lrs: { prompt: 0.3, offset: 1e-4 },
    warmup: 10,
    steps: 100_000,
    seed: 1,
    historySlots: STEPS_PER_READBACK,
  });
  const V = model.config.vocabSize;
  const batch = {
    inputIds: Int32Array.from({ length: s.batch * s.source }, (_, i) => 3 + (i * 7919) % (V - 3)),
    attentionMask: new Int32Array(s.batch * s.source).fill(1),
    labels: Int32Array.from({ length: s.batch * s.target }, (_, i) => 3 + (i * 104729) % (V - 3)),
  };
  // As the trainer runs: the losses stay on the GPU (historySlots) and are read back once per
  // STEPS_PER_READBACK steps, so Deno's ~10 ms round trip is not paid on every step.
  let t = 0;
  const time = await timeMs(async () => {
    for (let i = 0; i < STEPS_PER_READBACK; i++) await step.run(batch, ++t);
    await gpu.sync();
  }, { minReps: quick ? 2 : 5, minSeconds: quick ? 0 : 2 });
  const bytes = gpu.allocatedBytes - before + model.weights.byteLength;
  step.destroy();
  method.destroy();
  model.destroy();
  return { ms: time.median / STEPS_PER_READBACK, bytes };
}

/** Runs the PyTorch script on a shape; undefined (with a note) when it cannot run. */
async function torch(s: Shape, quick: boolean): Promise<Record<string, unknown>[] | undefined> {
  const python = Deno.env.get("ADEPT_PYTHON") ?? "python3";
  const threads = Deno.env.get("ADEPT_TORCH_THREADS");
  const args = [
    SCRIPT,
    "--shape",
    s.name,
    ...(quick ? ["--min-seconds", "1", "--min-reps", "2"] : []),
    ...(threads ? ["--threads", threads] : []),
  ];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    console.error(`--vs-torch: cannot run ${python} (${(e as Error).message}); set ADEPT_PYTHON`);
    return undefined;
  }
  if (out.code === 3) {
    console.error(`--vs-torch: PyTorch or transformers not found for ${python}; skipping`);
    return undefined;
  }
  if (!out.success) {
    console.error(`--vs-torch: ${SCRIPT} failed:\n${new TextDecoder().decode(out.stderr)}`);
    return undefined;
  }
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim().startsWith("{"))
    .map((l) => JSON.parse(l));
}

/** Runs the comparison and prints the table. */
export async function benchVsTorch(
  gpu: Gpu,
  emit: (r: BenchRecord) => Promise<void>,
  _records: BenchRecord[],
  o: { quick: boolean; full: boolean },
): Promise<void> {
  const names = gpu.adapter.software
    ? (o.full ? ["tiny", "demo", "t5-small"] : ["tiny", "demo"])
    : ["tiny", "demo", "t5-small", "t5-base"];
  const rows: string[] = [];
  for (const name of names) {
    const s = SHAPES[name];
    const theirs = await torch(s, o.quick);
    if (!theirs) return;
    const mine = await ours(gpu, s, o.quick);
    const tokens = s.batch * (s.source + s.target);
    const ourTps = tokens / (mine.ms / 1000);
    await emit({
      id: `vs_torch/${name}/ours`,
      bench: "vs_torch",
      shape: name,
      side: "ours",
      ms_per_step: +mine.ms.toFixed(2),
      tokens_per_s: +ourTps.toFixed(0),
      peak_memory_mib: +(mine.bytes / 2 ** 20).toFixed(1),
      memory_kind: "allocated",
    });
    for (const t of theirs) {
      const tps = t.tokens_per_s as number;
      await emit({ id: `vs_torch/${name}/torch-${t.device}-${t.precision}`, ...t });
      rows.push(
        `| ${name} | ${t.device} ${t.precision} | ${ourTps.toFixed(0)} | ${tps.toFixed(0)} | ${
          (ourTps / tps).toFixed(2)
        } | ${(mine.bytes / 2 ** 20).toFixed(0)} | ${t.peak_memory_mib} (${t.memory_kind}) |`,
      );
    }
  }
  console.log(
    [
      "",
      "ADePT training step, tokens/s = batch x (source + target) / step time:",
      "| shape | PyTorch | ours tok/s | PyTorch tok/s | ours / PyTorch | ours MiB | PyTorch MiB |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
      ...rows,
    ].join("\n"),
  );
}
