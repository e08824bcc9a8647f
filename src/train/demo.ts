/**
 * The demo that `deno task train` runs with no flags: it shows what ADePT is for on a fresh
 * machine with no Hub access, in a few minutes on a CPU.
 *
 * The project ships a tiny pretrained T5 (`tasks/default/model`: word-level vocabulary, trained
 * by `tools/make_default_model.py` on synthetic instruction-following tasks such as "reverse
 * the words: a b c" → "c b a") and a task it never saw (`tasks/default/task.json`): translating
 * words through a NEW dictionary, with no instruction in the input. ADePT's token-wise offset
 * network can remap every input embedding; a soft prompt alone cannot. The demo trains ADePT,
 * then prompt tuning with the same prompt, scores the frozen model with no prompt, and prints
 * the three test scores side by side.
 *
 * Two settings differ from the paper's at this size (docs/method.md keeps the paper's for real
 * models): dropout 0 (with 0.1 the tiny model falls to 36-63%) and the offset network's
 * learning rate 1e-2 (1e-4 leaves the new mapping at 0%).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { prepareTask } from "../data/cache.ts";
import { resolveTask } from "../data/task_file.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { type Gpu, requestGpu } from "../gpu/device.ts";
import { writeFileAtomic } from "../io/files.ts";
import { loadT5 } from "../model/t5.ts";
import { defaultRunDir } from "./cli.ts";
import { PAPER_DEFAULTS, resolveTrainConfig, type TrainConfig } from "./config.ts";
import { type EvalResult, Evaluator } from "./evaluate.ts";
import { train, type TrainResult } from "./trainer.ts";

/** The folder of the demo's model and task. */
export const DEMO_DIR: string = fileURLToPath(new URL("../../tasks/default/", import.meta.url));

/** The demo's settings: ADePT on the embedded model and task. */
export const DEMO_PRESET: Readonly<Omit<TrainConfig, "out">> = Object.freeze({
  ...PAPER_DEFAULTS,
  model: join(DEMO_DIR, "model"),
  task: join(DEMO_DIR, "task.json"),
  method: "adept",
  promptLength: 8,
  rank: 32,
  promptInit: "text" as const,
  promptInitText: "translate the words",
  lr: 3e-1,
  lrOffset: 1e-2,
  steps: 400,
  warmup: 30,
  batchSize: 32,
  evalEvery: 100,
  saveEvery: 100,
  logEvery: 25,
  dropout: 0,
});

/**
 * Steps of the prompt-tuning comparison: fewer than ADePT's, to keep the demo within a few
 * minutes on a CPU. Prompt tuning stays at 0% on this task however long it trains
 * (tasks/default/README.md: the PyTorch check trained it as long as ADePT and with a 9x longer
 * prompt).
 */
export const DEMO_PT_STEPS = 200;

/** What the demo measured. */
export interface DemoResult {
  adept: TrainResult;
  promptTuning: TrainResult;
  /** The frozen model's test scores with no prompt. */
  noPrompt: Record<string, number>;
  /** The demo's folder (runs of both methods inside). */
  dir: string;
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Flags given besides the preset (e.g. `steps`, `out`). */
  overrides?: Record<string, unknown>;
  /** Where messages go. @default {console.log} */
  print?: (line: string) => void;
  /** Progress bar instead of plain lines. */
  bar?: boolean;
  /** The device. @default {requestGpu()} */
  gpu?: Gpu;
  /** Checkpoint and stop on SIGINT / SIGTERM. */
  handleSignals?: boolean;
}

/** Runs the demo: ADePT, prompt tuning, and the frozen model, then the comparison. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const print = options.print ?? ((l: string) => console.log(l));
  const overrides = { ...options.overrides };
  const dir = (overrides.out as string | undefined) ?? defaultRunDir("demo", "compare");
  delete overrides.out;
  const config = (method: string) =>
    resolveTrainConfig([
      { name: "the demo preset", values: { ...DEMO_PRESET, out: join(dir, method) } },
      { name: "flags", values: { ...overrides, method } },
    ]);
  const adeptConfig = config("adept");
  print(
    "ADePT demo: a tiny T5 (tasks/default/model) pretrained on instruction-following tasks learns " +
      "a task it never saw: translating words through a NEW dictionary, with no instruction in " +
      "the input. Prompt tuning and the frozen model follow for comparison.\n",
  );
  const gpu = options.gpu ?? await requestGpu({ log: print });
  try {
    const common = { gpu, print, bar: options.bar, handleSignals: options.handleSignals };
    const adept = await train(adeptConfig, common);
    if (adept.status !== "completed") {
      return { adept, promptTuning: adept, noPrompt: {}, dir };
    }
    print(`\nprompt tuning, same prompt, ${DEMO_PT_STEPS} steps:`);
    const ptConfig = resolveTrainConfig([
      { name: "the demo preset", values: { ...DEMO_PRESET, out: join(dir, "pt") } },
      {
        name: "flags",
        values: { steps: DEMO_PT_STEPS, evalEvery: DEMO_PT_STEPS, ...overrides, method: "pt" },
      },
    ]);
    delete (ptConfig as Partial<TrainConfig>).rank;
    const promptTuning = await train(ptConfig, common);
    print("\nthe frozen model with no prompt:");
    const noPrompt = (await frozenEvaluation(gpu, adeptConfig)).metrics;
    const rows: [string, Record<string, number> | undefined][] = [
      [
        `ADePT (${adept.parameters.toLocaleString("en-US")} parameters, ${adept.steps} steps)`,
        adept.test,
      ],
      [
        `prompt tuning (${
          promptTuning.parameters.toLocaleString("en-US")
        } parameters, ${promptTuning.steps} steps)`,
        promptTuning.test,
      ],
      ["the frozen model, no prompt", noPrompt],
    ];
    const w = Math.max(...rows.map(([n]) => n.length));
    const lines = [
      "",
      `test exact match (%) on ${join(DEMO_DIR, "data/test.jsonl")}:`,
      ...rows.map(([n, m]) =>
        `  ${n.padEnd(w)}  ${m ? Object.values(m)[0].toFixed(1).padStart(5) : "    -"}`
      ),
      "",
      `Runs, logs and plots (loss.svg, validation.svg): ${dir}`,
      "On a real model and task, once the Hugging Face Hub is reachable:",
      "  deno task train --model google-t5/t5-base --task rte",
    ];
    print(lines.join("\n"));
    const result = { adept, promptTuning, noPrompt, dir };
    await writeFileAtomic(join(dir, "comparison.json"), JSON.stringify(result, null, 2) + "\n");
    return result;
  } finally {
    if (!options.gpu) gpu.destroy();
  }
}

/**
 * The frozen model's test evaluation with no prompt and no offset, on the examples the trained
 * runs are scored on (the first `evalLimit`) at their evaluation batch size.
 *
 * @example
 * ```ts
 * import { DEMO_PRESET, frozenEvaluation, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const r = await frozenEvaluation(gpu, { ...DEMO_PRESET, out: "unused", evalLimit: 4 });
 * assert.equal(r.examples, 4);
 * assert.equal(r.score, 0); // the frozen model does not know the new dictionary
 * gpu.destroy();
 * ```
 */
export async function frozenEvaluation(gpu: Gpu, c: TrainConfig): Promise<EvalResult> {
  const task = await resolveTask(c.task);
  const tokenizer = await loadTokenizer(c.model);
  const model = await loadT5(gpu, c.model, { weightDtype: c.weightDtype });
  const data = await prepareTask(task, tokenizer, { sourceLength: c.maxSourceLength });
  const ev = new Evaluator(model, undefined, tokenizer, {
    batchSize: c.evalBatchSize ?? c.batchSize,
    sourceLength: data.sourceLength,
  });
  try {
    return await ev.evaluate(data.test, task, c.evalLimit);
  } finally {
    ev.destroy();
    model.destroy();
  }
}
