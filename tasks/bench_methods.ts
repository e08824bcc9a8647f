/**
 * Method and training benchmarks (part of `deno task bench`, `--only methods`):
 *
 * - per method (ADePT, DePT, prompt tuning): milliseconds per training step recorded as one
 *   submit (method input ops, T5 forward, backward, method backward, clipping, AdamW), the
 *   share of it spent in the method's own ops, steps and tokens per second;
 * - evaluation throughput (generated tokens per second) of ADePT from its folded table, ADePT
 *   unfolded, and prompt tuning at the same prompt length, in the same run.
 *
 * Shapes: the T5-small and T5-base shapes with random weights on a hardware adapter (batch 32 x
 * (M + 256 source, 4 target), M 60), or on a CPU adapter the demo's tiny pretrained T5 (batch 32
 * x (8 + 10, 10)); `--full` runs the T5-small shape on a CPU adapter too.
 *
 * @module
 */

import { Mt19937 } from "../src/data/mt19937.ts";
import type { Gpu } from "../src/gpu/device.ts";
import type { Op } from "../src/gpu/op.ts";
import { loadT5, T5Model } from "../src/model/t5.ts";
import { parseT5Config } from "../src/model/t5_config.ts";
import { randomT5Weights } from "../src/model/t5_weights.ts";
import "../src/peft/registry.ts";
import { methodModule, type PeftMethod } from "../src/peft/method.ts";
import { TrainStep } from "../src/train/step.ts";
import { profileGroups } from "./bench_lib.ts";

/** Options of {@link benchMethods}. */
export interface MethodBenchOptions {
  /** Fewer repetitions. */
  quick: boolean;
  /** The T5-small shape on a CPU adapter. */
  full: boolean;
}

/** One benchmark record. */
type Emit = (record: { id: string } & Record<string, unknown>) => void | Promise<void>;

/** Median of `reps` timings (ms) of `fn` after one warm-up. */
async function time(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** T5 shapes with random weights (the speed does not depend on the values). */
const SHAPES = {
  "t5-small": { d_model: 512, d_kv: 64, d_ff: 2048, num_heads: 8, num_layers: 6 },
  "t5-base": { d_model: 768, d_kv: 64, d_ff: 3072, num_heads: 12, num_layers: 12 },
} as const;

async function model(gpu: Gpu, shape: keyof typeof SHAPES | "demo"): Promise<T5Model> {
  if (shape === "demo") {
    return await loadT5(gpu, new URL("default/model", import.meta.url).pathname);
  }
  const config = parseT5Config({
    model_type: "t5",
    vocab_size: 32128,
    relative_attention_num_buckets: 32,
    ...SHAPES[shape],
  }, { source: `${shape} (random)` });
  return new T5Model(gpu, config, randomT5Weights(gpu, config));
}

/** Runs the method and evaluation benchmarks, one record per figure. */
export async function benchMethods(gpu: Gpu, emit: Emit, o: MethodBenchOptions): Promise<void> {
  const shapes: (keyof typeof SHAPES | "demo")[] = gpu.adapter.software
    ? (o.full ? ["demo", "t5-small"] : ["demo"])
    : ["t5-small", "t5-base"];
  for (const shape of shapes) await benchShape(gpu, emit, o, shape);
}

async function benchShape(
  gpu: Gpu,
  emit: Emit,
  o: MethodBenchOptions,
  shape: keyof typeof SHAPES | "demo",
): Promise<void> {
  const m = await model(gpu, shape);
  const name = shape === "demo" ? "demo (tiny T5)" : `${shape} (random weights)`;
  const big = shape !== "demo";
  const [B, S, T, M] = big ? [32, 256, 4, 60] : [32, 10, 10, 8];
  const V = m.config.vocabSize;
  const reps = o.quick ? 2 : 5;
  const batch = {
    inputIds: Int32Array.from({ length: B * S }, (_, i) => 3 + (i * 7919) % (V - 3)),
    attentionMask: new Int32Array(B * S).fill(1),
    labels: Int32Array.from({ length: B * T }, (_, i) => 3 + (i * 104729) % (V - 3)),
  };
  const methods: [string, Record<string, unknown>][] = [
    ["adept", { promptLength: M, rank: big ? 19 : 32 }],
    ["dept", { promptLength: M, rank: big ? 30 : 8, maxSourceLength: S }],
    ["prompt_tuning", { promptLength: M }],
  ];
  const made: Record<string, PeftMethod> = {};
  for (const [mname, overrides] of methods) {
    const mod = methodModule(mname);
    const method = await mod.create(m, mod.resolve({ ...overrides, promptInit: "random" }), {
      rng: new Mt19937(1),
    });
    made[mname] = method;
    const step = new TrainStep(m, method, {
      batch: B,
      sourceLength: S,
      targetLength: T,
      lrs: { prompt: 0.3, offset: 1e-4 },
      warmup: 10,
      steps: 1000,
      seed: 1,
      historySlots: 8,
    });
    let t = 0;
    const stepMs = await time(async () => {
      await step.run(batch, ++t);
      await gpu.sync();
    }, reps);
    const own: Op[] = [...step.binding.forwardOps, ...step.binding.backwardOps];
    const groups = await profileGroups(
      gpu,
      step.parts.map(({ op, part }) => ({ op, origin: part === "model" ? undefined : part })),
    );
    const ownMs = await time(async () => {
      await gpu.run(own, "method ops");
      await gpu.sync();
    }, reps);
    await emit({
      id: `train_step/${shape}/${mname}`,
      bench: "train_step",
      model: name,
      method: mname,
      parameters: method.parameterCount,
      batch: B,
      prompt_length: M,
      source_length: S,
      target_length: T,
      dispatches: step.ops.reduce((n, op) => n + op.dispatches.length, 0),
      ms_per_step: +stepMs.toFixed(1),
      steps_per_s: +(1000 / stepMs).toFixed(2),
      tokens_per_s: +((B * (S + T)) / (stepMs / 1000)).toFixed(0),
      method_ops_ms: +ownMs.toFixed(2),
      method_share: +(ownMs / stepMs).toFixed(3),
      ...(groups
        ? {
          gpu_ms_per_step: +Object.values(groups).reduce((a, x) => a + x, 0).toFixed(2),
          gpu_ms_by_group: groups,
          gpu_method_share: +(groups.method /
            Object.values(groups).reduce((a, x) => a + x, 0)).toFixed(3),
        }
        : {}),
      gpu_memory_mib: +(gpu.allocatedBytes / 2 ** 20).toFixed(1),
    });
    step.destroy();
  }
  // Evaluation: greedy decoding of at most 20 new tokens, ADePT folded vs unfolded vs PT.
  const N = 20;
  const gen = m.generator({ batch: B, sourceLength: M + S, maxNewTokens: N });
  const cases: [string, PeftMethod, boolean][] = [
    ["adept (folded)", made.adept, true],
    ["adept (unfolded)", made.adept, false],
    ["prompt_tuning", made.prompt_tuning, true],
  ];
  for (const [label, method, folded] of cases) {
    const b = method.bind(gen, { train: false, folded });
    b.setInputs(batch.inputIds, batch.attentionMask);
    await gpu.run(method.prepareEvalOps());
    let tokens = 0;
    const ms = await time(async () => {
      await gpu.run(b.forwardOps, "eval inputs");
      const rows = await gen.generate({ attentionMask: [] }, { inputsOnGpu: true, checkEvery: N });
      tokens = rows.reduce((n, r) => n + r.length, 0);
    }, reps);
    const inputMs = await time(async () => {
      await gpu.run(b.forwardOps, "eval inputs");
      await gpu.sync();
    }, reps);
    await emit({
      id: `eval_generate/${shape}/${label}`,
      bench: "eval_generate",
      model: name,
      method: label,
      batch: B,
      source_length: M + S,
      new_tokens: N,
      ms_per_batch: +ms.toFixed(1),
      generated_tokens_per_s: +(tokens / (ms / 1000)).toFixed(0),
      input_ops_ms: +inputMs.toFixed(2),
    });
    b.destroy();
  }
  gen.destroy();
  for (const method of Object.values(made)) method.destroy();
  m.destroy();
}
