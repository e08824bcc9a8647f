/**
 * Using a saved adapter: scoring it on a task's split ({@link evaluateAdapter}, `deno task
 * eval`) and generating labels for new texts ({@link predict}, `deno task predict`). The base
 * model, the task and the lengths come from the adapter's metadata unless given; ADePT runs
 * from its folded table.
 *
 * @module
 */

import { prepareTask } from "../data/cache.ts";
import { resolveTask } from "../data/task_file.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { type Gpu, requestGpu } from "../gpu/device.ts";
import type { HubOptions } from "../io/hub.ts";
import { loadT5 } from "../model/t5.ts";
import "../peft/registry.ts";
import { loadAdapter, readAdapter } from "../peft/adapter.ts";
import { PeftError } from "../peft/method.ts";
import { type EvalResult, Evaluator } from "./evaluate.ts";

/** Options of {@link evaluateAdapter} and {@link predict}. */
export interface AdapterRunOptions {
  /** The adapter folder (`<run>/best`). */
  adapter: string;
  /** The base model; the adapter's when undefined. */
  model?: string;
  /** Rows per generation batch. @default {32} */
  batchSize?: number;
  /** The frozen projections' storage (see `TrainConfig.weightDtype`). @default {"f32"} */
  weightDtype?: "f32" | "f16";
  /** The device. @default {requestGpu()} */
  gpu?: Gpu;
  /** Hub settings. */
  hub?: HubOptions;
}

/** Options of {@link evaluateAdapter}. */
export interface EvaluateAdapterOptions extends AdapterRunOptions {
  /** The task; the adapter's when undefined. */
  task?: string;
  /** The split scored. @default {"test"} */
  split?: "train" | "validation" | "test";
  /** Score only the first examples. */
  limit?: number;
}

async function setup(o: AdapterRunOptions) {
  const saved = await readAdapter(o.adapter);
  const model = o.model ?? saved.meta.baseModel;
  if (!model) {
    throw new PeftError(
      `${o.adapter}: the adapter does not name its base model; give it (--model)`,
    );
  }
  const gpu = o.gpu ?? await requestGpu({ log: false });
  const t5 = await loadT5(gpu, model, { ...o.hub, weightDtype: o.weightDtype });
  const tokenizer = await loadTokenizer(model, o.hub);
  if (saved.meta.tokenizerHash && saved.meta.tokenizerHash !== tokenizer.hash) {
    throw new PeftError(
      `${o.adapter}: the adapter was trained with another tokenizer (hash ${
        saved.meta.tokenizerHash.slice(0, 12)
      }) than ${model}'s (${tokenizer.hash.slice(0, 12)})`,
    );
  }
  const { method } = await loadAdapter(o.adapter, t5);
  return { saved, gpu, t5, tokenizer, method, model };
}

/**
 * Scores a saved adapter on a split of its task (or another), as training scores it.
 *
 * @example
 * ```ts
 * import { evaluateAdapter } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const r = await evaluateAdapter({
 *   // a run's best/ folder names its model and task; this adapter, written by Hugging Face
 *   // PEFT for the tests' tiny T5, names neither, so both are given
 *   adapter: "tests/fixtures/peft/tiny-t5-v1_0/peft_prompt_tuning",
 *   model: "tests/fixtures/t5/tiny-t5-v1_0",
 *   task: "tasks/default/task.json",
 *   split: "validation",
 *   limit: 8,
 * });
 * assert.equal(r.examples, 8);
 * assert.ok(r.metrics.accuracy >= 0 && r.metrics.accuracy <= 100);
 * ```
 */
export async function evaluateAdapter(
  o: EvaluateAdapterOptions,
): Promise<EvalResult & { task: string; model: string; split: string }> {
  const { saved, gpu, t5, tokenizer, method, model } = await setup(o);
  try {
    const taskName = o.task ?? saved.meta.task;
    if (!taskName) {
      throw new PeftError(`${o.adapter}: the adapter does not name its task; give it (--task)`);
    }
    const task = await resolveTask(taskName);
    const data = await prepareTask(task, tokenizer, {
      ...o.hub,
      sourceLength: saved.meta.sourceLength,
      targetLength: saved.meta.targetLength,
    });
    const split = o.split ?? "test";
    const ev = new Evaluator(t5, method, tokenizer, {
      batchSize: o.batchSize ?? 32,
      sourceLength: data.sourceLength,
    });
    try {
      const r = await ev.evaluate(data[split], task, o.limit);
      return { ...r, task: task.name, model, split };
    } finally {
      ev.destroy();
    }
  } finally {
    method.destroy();
    t5.destroy();
    if (!o.gpu) gpu.destroy();
  }
}

/**
 * Generates the label of each text with a saved adapter (greedy, at most 20 tokens). Texts are
 * formatted as the task's sources are (give them already formatted: `"sentence1: ...
 * sentence2: ..."`) and truncated to the adapter's source length.
 *
 * @example
 * ```ts
 * import { predict } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const labels = await predict({
 *   adapter: "tests/fixtures/peft/tiny-t5-v1_0/peft_prompt_tuning", // e.g. runs/<run>/best
 *   model: "tests/fixtures/t5/tiny-t5-v1_0", // not needed for a run's adapter: it names its model
 *   texts: ["sentence1: A cat sat. sentence2: An animal sat.", "sentence1: Hi. sentence2: Bye."],
 * });
 * assert.equal(labels.length, 2);
 * assert.ok(labels.every((l) => typeof l === "string"));
 * ```
 */
export async function predict(
  o: AdapterRunOptions & { texts: readonly string[] },
): Promise<string[]> {
  const { saved, gpu, t5, tokenizer, method } = await setup(o);
  try {
    const S = saved.meta.sourceLength ?? 256;
    const B = Math.min(o.batchSize ?? 32, Math.max(1, o.texts.length));
    const ev = new Evaluator(t5, method, tokenizer, { batchSize: B, sourceLength: S });
    try {
      await ev.prepare();
      const out: string[] = [];
      for (let i = 0; i < o.texts.length; i += B) {
        const chunk = o.texts.slice(i, i + B);
        const ids = new Int32Array(B * S).fill(t5.config.padTokenId);
        const mask = new Int32Array(B * S);
        for (let r = 0; r < B; r++) {
          let row = tokenizer.encode(chunk[r] ?? "");
          if (row.length > S) row = [...row.slice(0, S - 1), t5.config.eosTokenId];
          ids.set(row, r * S);
          mask.fill(1, r * S, r * S + row.length);
        }
        out.push(...(await ev.generate(ids, mask)).slice(0, chunk.length));
      }
      return out;
    } finally {
      ev.destroy();
    }
  } finally {
    method.destroy();
    t5.destroy();
    if (!o.gpu) gpu.destroy();
  }
}
