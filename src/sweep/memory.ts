/**
 * Whether N runs fit on one adapter at once, checked before `sweep run --jobs N` starts any:
 * each run's GPU memory is estimated from the model's config and the run's shapes (the same
 * buffer tables the trainer allocates from: frozen weights, the training session, the
 * evaluation generator, the method's tensors with their gradients and AdamW moments, the folded
 * embedding table), with a quarter on top; the adapter's memory comes from `--gpu-memory`, from
 * `nvidia-smi` on an NVIDIA adapter, or from the machine's free memory on a software adapter
 * (lavapipe). WebGPU itself does not say how much memory an adapter has: elsewhere `--jobs` above
 * 1 needs `--gpu-memory`.
 *
 * @module
 */

import { resolveTask } from "../data/task_file.ts";
import type { AdapterSummary } from "../gpu/device.ts";
import { treeBytes } from "../gpu/arena_tree.ts";
import { hubDownload } from "../io/hub.ts";
import { generatorSpecs, sessionSpecs } from "../model/t5_buffers.ts";
import { loadT5Config, type T5Config } from "../model/t5_config.ts";
import { t5WeightSpecs } from "../model/t5_weights.ts";
import { parameterCount } from "../peft/method.ts";
import type { TrainConfig } from "../train/config.ts";
import { planRun } from "../train/trainer.ts";
import { SweepError } from "./errors.ts";

/** A run's estimated GPU memory, in bytes, by part. */
export interface RunMemory {
  /** The frozen model. */
  weights: number;
  /** The training session's activations and gradients. */
  session: number;
  /** The evaluation generator. */
  generator: number;
  /** The method's tensors, gradients, AdamW moments, folded table and input activations. */
  method: number;
  /** All of it, plus a quarter. */
  total: number;
}

/** Target tokens assumed for tasks that fix none (their labels: a few tokens). */
const DEFAULT_TARGET_TOKENS = 8;

/**
 * Estimates a run's GPU memory from its config and the model's `config.json` (see the module
 * doc). The target length is the task's `maxTargetLength`, or 8 tokens for label tasks.
 *
 * @example
 * ```ts
 * import { DEMO_PRESET, estimateRunMemory, loadT5Config } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const config = { ...DEMO_PRESET, out: "unused" };
 * const t5 = await loadT5Config(`${config.model}/config.json`);
 * const m = await estimateRunMemory(config, t5);
 * assert.ok(m.total > m.weights + m.session + m.generator + m.method);
 * const twice = await estimateRunMemory({ ...config, batchSize: 2 * config.batchSize }, t5);
 * assert.ok(twice.session > m.session); // activations grow with the batch
 * ```
 */
export async function estimateRunMemory(config: TrainConfig, t5: T5Config): Promise<RunMemory> {
  const { methodConfig, task } = await planRun(config);
  const M = methodConfig.promptLength;
  const S = (config.maxSourceLength ?? task.maxSourceLength) + M;
  const T = task.maxTargetLength ?? DEFAULT_TARGET_TOKENS;
  const B = config.batchSize, Be = config.evalBatchSize ?? B;
  const C = t5.dModel, V = t5.vocabSize;
  const weights = treeBytes(t5WeightSpecs(t5));
  const session = treeBytes(sessionSpecs(t5, { batch: B, sourceLength: S, targetLength: T }));
  const generator = treeBytes(
    generatorSpecs(t5, { batch: Be, sourceLength: S, maxNewTokens: 20 }),
  );
  const P = parameterCount(methodConfig, C);
  const R = (methodConfig as { rank?: number }).rank ?? 0;
  // parameters, gradients, two moments; the folded table (V, C); offsets (B, S, R + C) x 3
  const method = 4 * (4 * P + V * C + 3 * B * S * (R + C));
  const sum = weights + session + generator + method;
  return { weights, session, generator, method, total: Math.ceil(sum * 1.25) };
}

/**
 * Estimates the largest run of a list (one `config.json` read per model).
 *
 * @example
 * ```ts
 * import { DEMO_PRESET, largestRunMemory } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const a = { ...DEMO_PRESET, out: "a" }, b = { ...DEMO_PRESET, out: "b", batchSize: 64 };
 * const { bytes, config } = await largestRunMemory([a, b]);
 * assert.equal(config, b);
 * assert.ok(bytes > 0);
 * ```
 */
export async function largestRunMemory(
  configs: readonly TrainConfig[],
): Promise<{ bytes: number; config: TrainConfig; memory: RunMemory }> {
  if (configs.length === 0) throw new SweepError("no runs to estimate");
  const t5s = new Map<string, Promise<T5Config>>();
  let best: { bytes: number; config: TrainConfig; memory: RunMemory } | undefined;
  for (const c of configs) {
    if (!t5s.has(c.model)) {
      t5s.set(
        c.model,
        hubDownload(c.model, { patterns: ["config.json"] }).then((s) =>
          loadT5Config(s.path("config.json"))
        ),
      );
    }
    await resolveTask(c.task);
    const memory = await estimateRunMemory(c, await t5s.get(c.model)!);
    if (!best || memory.total > best.bytes) best = { bytes: memory.total, config: c, memory };
  }
  return best!;
}

/** An adapter's memory and where the figure came from. */
export interface AdapterMemory {
  /** Bytes available to runs. */
  bytes: number;
  /** Where the figure came from, for messages. */
  source: string;
}

/**
 * How much memory the adapter has for runs: `--gpu-memory` when given; on a software adapter
 * (lavapipe) the machine's available memory; on an NVIDIA adapter the free memory `nvidia-smi`
 * reports; otherwise undefined (WebGPU does not tell).
 *
 * @example
 * ```ts
 * import { adapterMemory } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const lavapipe = {
 *   description: "llvmpipe",
 *   vendor: "",
 *   architecture: "",
 *   features: [],
 *   software: true,
 * };
 * const m = await adapterMemory(lavapipe);
 * assert.ok(m && m.bytes > 0 && /available memory/.test(m.source));
 * assert.equal((await adapterMemory(lavapipe, 2 ** 30))?.bytes, 2 ** 30); // --gpu-memory wins
 * ```
 */
export async function adapterMemory(
  adapter: AdapterSummary,
  given?: number,
): Promise<AdapterMemory | undefined> {
  if (given !== undefined) return { bytes: given, source: "--gpu-memory" };
  if (adapter.software) {
    return {
      bytes: Deno.systemMemoryInfo().available,
      source: `the machine's available memory (the software adapter "${adapter.description}" ` +
        "allocates from it)",
    };
  }
  if (/nvidia|^0x10de$|^4318$/i.test(`${adapter.vendor}`) || /nvidia/i.test(adapter.description)) {
    try {
      const out = await new Deno.Command("nvidia-smi", {
        args: ["--query-gpu=memory.free", "--format=csv,noheader,nounits"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const mib = Number(new TextDecoder().decode(out.stdout).trim().split("\n")[0]);
      if (out.success && Number.isFinite(mib) && mib > 0) {
        return { bytes: mib * 2 ** 20, source: `nvidia-smi (free memory of GPU 0)` };
      }
    } catch { /* no nvidia-smi */ }
  }
  return undefined;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Refuses `--jobs N` when N of the largest run would not fit in the adapter's memory (keeping a
 * tenth free), naming the most jobs that fit.
 *
 * @example
 * ```ts
 * import { checkJobsFit, SweepError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const run = { bytes: 3 * 2 ** 30, what: "rte-adept-0123456789ab" };
 * checkJobsFit(2, run, { bytes: 8 * 2 ** 30, source: "--gpu-memory" }, "A100"); // 6 of 7.2 GiB
 * assert.throws(
 *   () => checkJobsFit(3, run, { bytes: 8 * 2 ** 30, source: "--gpu-memory" }, "A100"),
 *   (e) => e instanceof SweepError && /use --jobs 2/.test(e.message),
 * );
 * ```
 */
export function checkJobsFit(
  jobs: number,
  run: { bytes: number; what: string },
  memory: AdapterMemory | undefined,
  adapter: string,
): void {
  if (jobs <= 1) return;
  if (!memory) {
    throw new SweepError(
      `--jobs ${jobs}: WebGPU does not tell how much memory the adapter "${adapter}" has, so ` +
        `${jobs} runs at once cannot be checked to fit (the largest needs about ${
          gib(run.bytes)
        }); pass --gpu-memory <GiB> with the adapter's memory, or use --jobs 1`,
    );
  }
  const usable = memory.bytes * 0.9;
  if (jobs * run.bytes > usable) {
    const fit = Math.max(1, Math.floor(usable / run.bytes));
    throw new SweepError(
      `--jobs ${jobs}: ${jobs} runs at once need about ${gib(jobs * run.bytes)} of GPU memory ` +
        `(the largest run, ${run.what}, about ${gib(run.bytes)}), but the adapter "${adapter}" ` +
        `has ${gib(memory.bytes)} (${memory.source}), of which 90% is used; use --jobs ${fit}`,
    );
  }
}
