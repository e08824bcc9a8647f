/**
 * The configuration of a training run: every setting with its default (the paper's recipe,
 * docs/method.md), its command-line flag and its help text in one table, and the validation
 * that refuses unknown keys, bad values and impossible combinations before anything is loaded.
 *
 * Config files (`--config FILE`) are JSON objects with the same keys as the flags (kebab-case,
 * `"prompt-length": 60`) or the library's camelCase names (`"promptLength": 60`); flags given on
 * the command line override the file.
 *
 * @module
 */

/** A run's settings. Every field has a default (see {@link TRAIN_OPTIONS}). */
export interface TrainConfig {
  /** Hub id (`google-t5/t5-base`) or local folder of a T5 checkpoint. */
  model: string;
  /** One of the 13 tasks (`rte`, ...) or a custom task file (`.json`). */
  task: string;
  /** `adept`, `dept` or `pt` (prompt tuning). */
  method: string;
  /** M (prompt rows); the method's default when undefined. */
  promptLength?: number;
  /** R; the method's default when undefined (ADePT 19, DePT 30). */
  rank?: number;
  /** `text` (embedding rows of `promptInitText`) or `random`; the method's default (`text`). */
  promptInit?: "text" | "random";
  /** The prompt's init text; the method's default (the authors' "Classify this text ..."). */
  promptInitText?: string;
  /** Peak learning rate of the prompt. */
  lr: number;
  /** Peak learning rate of the offset network (ADePT's A, a, Bw, b; DePT's A1, B1). */
  lrOffset: number;
  /** Optimizer steps. */
  steps: number;
  /** Linear warm-up steps (then linear decay to 0 at the last step). */
  warmup: number;
  /** Examples per step (B). */
  batchSize: number;
  /** Source tokens per example, EOS included (S); the task's when undefined (256). */
  maxSourceLength?: number;
  /** Evaluate on the validation split every this many steps (and at the end). */
  evalEvery: number;
  /** Write a checkpoint every this many steps (and on SIGINT / SIGTERM). */
  saveEvery: number;
  /** Read the loss back and log it every this many steps. */
  logEvery: number;
  /** Seed of the data order, the initialisation and the dropout masks. */
  seed: number;
  /** Dropout of the frozen model while training; the model's config when undefined (0.1). */
  dropout?: number;
  /** The run folder. */
  out: string;
  /** Continue the run in `out` from its checkpoint. */
  resume: boolean;
  /** Stop after this many consecutive steps with a non-finite loss or gradient. */
  maxSkippedSteps: number;
  /** Evaluation batch size; `batchSize` when undefined. */
  evalBatchSize?: number;
  /** Most validation (and test) examples scored; all when undefined. */
  evalLimit?: number;
  /**
   * The frozen projections' storage on the GPU: `f16` halves their memory (needs shader-f16;
   * products still add in f32); `f32` when undefined.
   */
  weightDtype?: "f32" | "f16";
}

/** One setting: its key, flag, kind, default and help. */
export interface TrainOption {
  /** The camelCase key of {@link TrainConfig}. */
  key: keyof TrainConfig;
  /** The command-line flag without dashes (kebab-case). */
  flag: string;
  /** Value kind. */
  kind: "string" | "integer" | "number" | "boolean";
  /** Help text. */
  help: string;
  /** Smallest value (numbers). */
  min?: number;
  /** Whether the minimum itself is excluded (learning rates > 0). */
  exclusiveMin?: boolean;
  /** Largest value (numbers). */
  max?: number;
  /** The allowed values (strings). */
  choices?: readonly string[];
}

/** Every setting, in the order `--help` lists them. */
export const TRAIN_OPTIONS: readonly TrainOption[] = [
  { key: "model", flag: "model", kind: "string", help: "Hub id or folder of a T5 checkpoint" },
  {
    key: "task",
    flag: "task",
    kind: "string",
    help:
      "a task (mnli qqp qnli sst2 stsb mrpc rte cola multirc boolq wic wsc cb) or a custom task .json",
  },
  { key: "method", flag: "method", kind: "string", help: "adept, dept or pt (prompt tuning)" },
  {
    key: "promptLength",
    flag: "prompt-length",
    kind: "integer",
    min: 1,
    help: "prompt rows M (ADePT/DePT 60, PT 100)",
  },
  { key: "rank", flag: "rank", kind: "integer", min: 1, help: "rank R (ADePT 19, DePT 30)" },
  {
    key: "promptInit",
    flag: "prompt-init",
    kind: "string",
    choices: ["text", "random"],
    help: "prompt init: rows of the init text's tokens, or random",
  },
  {
    key: "promptInitText",
    flag: "prompt-init-text",
    kind: "string",
    help: 'text whose token rows start the prompt ("Classify this text is postive or not:")',
  },
  {
    key: "lr",
    flag: "lr",
    kind: "number",
    min: 0,
    exclusiveMin: true,
    help: "peak learning rate of the prompt",
  },
  {
    key: "lrOffset",
    flag: "lr-offset",
    kind: "number",
    min: 0,
    exclusiveMin: true,
    help: "peak learning rate of the offset network",
  },
  { key: "steps", flag: "steps", kind: "integer", min: 1, help: "optimizer steps" },
  {
    key: "warmup",
    flag: "warmup",
    kind: "integer",
    min: 0,
    help: "linear warm-up steps (a tenth of --steps when the default exceeds them)",
  },
  { key: "batchSize", flag: "batch-size", kind: "integer", min: 1, help: "examples per step" },
  {
    key: "maxSourceLength",
    flag: "max-source-length",
    kind: "integer",
    min: 2,
    help: "source tokens per example, EOS included (default: the task's, 256)",
  },
  { key: "evalEvery", flag: "eval-every", kind: "integer", min: 1, help: "validation interval" },
  { key: "saveEvery", flag: "save-every", kind: "integer", min: 1, help: "checkpoint interval" },
  { key: "logEvery", flag: "log-every", kind: "integer", min: 1, help: "loss readback interval" },
  { key: "seed", flag: "seed", kind: "integer", min: 0, max: 2 ** 32 - 1, help: "random seed" },
  {
    key: "dropout",
    flag: "dropout",
    kind: "number",
    min: 0,
    max: 0.99,
    help: "dropout of the frozen model while training (default: its config's, 0.1)",
  },
  { key: "out", flag: "out", kind: "string", help: "run folder" },
  { key: "resume", flag: "resume", kind: "boolean", help: "continue the run in --out" },
  {
    key: "maxSkippedSteps",
    flag: "max-skipped-steps",
    kind: "integer",
    min: 1,
    help: "stop after this many non-finite steps in a row",
  },
  {
    key: "evalBatchSize",
    flag: "eval-batch-size",
    kind: "integer",
    min: 1,
    help: "evaluation batch size (default: --batch-size)",
  },
  {
    key: "evalLimit",
    flag: "eval-limit",
    kind: "integer",
    min: 1,
    help: "most validation/test examples scored (default: all)",
  },
  {
    key: "weightDtype",
    flag: "weight-dtype",
    kind: "string",
    choices: ["f32", "f16"],
    help: "frozen projections in f32 or f16 (half the memory; needs shader-f16)",
  },
];

/** The paper's recipe (docs/method.md): the defaults of every run on a real model. */
export const PAPER_DEFAULTS: Readonly<TrainConfig> = Object.freeze({
  model: "google-t5/t5-base",
  task: "rte",
  method: "adept",
  lr: 3e-1,
  lrOffset: 1e-4,
  steps: 30_000,
  warmup: 500,
  batchSize: 32,
  evalEvery: 1000,
  saveEvery: 1000,
  logEvery: 50,
  seed: 42,
  out: "runs/run",
  resume: false,
  maxSkippedSteps: 10,
});

/** A setting was refused: the message names the flag, the value and what is allowed. */
export class TrainConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrainConfigError";
  }
}

const BY_KEY = new Map(TRAIN_OPTIONS.map((o) => [o.key as string, o]));
const BY_FLAG = new Map(TRAIN_OPTIONS.map((o) => [o.flag, o]));

/**
 * The option a config-file key names (camelCase or the flag's kebab-case), or undefined.
 *
 * @example
 * ```ts
 * import { optionFor } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(optionFor("prompt-length")?.key, "promptLength"); // a flag
 * assert.equal(optionFor("promptLength")?.flag, "prompt-length"); // a config file's key
 * assert.equal(optionFor("promt-length"), undefined);
 * ```
 */
export function optionFor(key: string): TrainOption | undefined {
  return BY_KEY.get(key) ?? BY_FLAG.get(key);
}

/**
 * The `--weight-dtype` flag of `deno task eval` and `predict`, checked as `train` checks it.
 *
 * @example
 * ```ts
 * import { TrainConfigError, weightDtypeFlag } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(weightDtypeFlag("f16"), "f16");
 * assert.equal(weightDtypeFlag(undefined), undefined);
 * assert.throws(() => weightDtypeFlag("bf16"), TrainConfigError);
 * ```
 */
export function weightDtypeFlag(value: unknown): "f32" | "f16" | undefined {
  if (value === undefined) return undefined;
  return parseValue(optionFor("weightDtype")!, value, "flags") as "f32" | "f16";
}

/**
 * Parses and checks one value of a setting from a flag or a config file (strings from the
 * command line are converted).
 *
 * @example
 * ```ts
 * import { optionFor, parseValue } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const steps = optionFor("steps")!;
 * assert.equal(parseValue(steps, "500", "flags"), 500); // command-line strings are converted
 * assert.throws(() => parseValue(steps, "1.5", "flags"), /flags --steps: expected an integer/);
 * ```
 */
export function parseValue(o: TrainOption, value: unknown, where: string): unknown {
  const bad = (what: string) =>
    new TrainConfigError(`${where} --${o.flag}: ${what}, got ${JSON.stringify(value)}`);
  if (o.kind === "string") {
    if (typeof value !== "string" || value.trim() === "") throw bad("expected a non-empty string");
    if (o.choices && !o.choices.includes(value)) {
      throw bad(`expected one of ${o.choices.join(", ")}`);
    }
    return value;
  }
  if (o.kind === "boolean") {
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "false") return value === "true";
    throw bad("expected true or false");
  }
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw bad("expected a number");
  if (o.kind === "integer" && !Number.isInteger(n)) throw bad("expected an integer");
  if (o.min !== undefined && (o.exclusiveMin ? n <= o.min : n < o.min)) {
    throw bad(`expected a value ${o.exclusiveMin ? ">" : ">="} ${o.min}`);
  }
  if (o.max !== undefined && n > o.max) throw bad(`expected a value <= ${o.max}`);
  return n;
}

/**
 * Merges layers of settings (defaults, then a config file's, then flags) into a checked
 * {@link TrainConfig}. Each layer is a record by key (camelCase or kebab-case) with a name used
 * in messages. A warm-up that only the first layer (the defaults) sets and that exceeds the
 * steps becomes a tenth of the steps; one given explicitly is refused instead.
 *
 * @example
 * ```ts
 * import { PAPER_DEFAULTS, resolveTrainConfig } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const c = resolveTrainConfig([
 *   { name: "defaults", values: { ...PAPER_DEFAULTS } },
 *   { name: "run.json", values: { task: "cb", "batch-size": 16 } },
 *   { name: "flags", values: { "batch-size": "8", steps: "200" } }, // the last layer wins
 * ]);
 * assert.equal(c.task, "cb");
 * assert.equal(c.batchSize, 8);
 * assert.equal(c.warmup, 20); // the default 500 exceeds 200 steps: a tenth of them
 * ```
 */
export function resolveTrainConfig(
  layers: readonly { name: string; values: Record<string, unknown> }[],
): TrainConfig {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.values)) {
      if (v === undefined) continue;
      const o = optionFor(k);
      if (!o) {
        throw new TrainConfigError(
          `${layer.name}: unknown setting "${k}"; the settings are ${
            TRAIN_OPTIONS.map((x) => x.flag).join(", ")
          } (see --help)`,
        );
      }
      out[o.key] = parseValue(o, v, layer.name);
    }
  }
  for (const o of TRAIN_OPTIONS) {
    const required = ![
      "promptLength",
      "rank",
      "promptInit",
      "promptInitText",
      "maxSourceLength",
      "dropout",
      "evalBatchSize",
      "evalLimit",
      "weightDtype",
    ].includes(o.key);
    if (required && out[o.key] === undefined) {
      throw new TrainConfigError(`the setting --${o.flag} has no value and no default`);
    }
  }
  const c = out as unknown as TrainConfig;
  const warmupGiven = layers.slice(1).some((l) =>
    Object.keys(l.values).some((k) => optionFor(k)?.key === "warmup" && l.values[k] !== undefined)
  );
  if (!warmupGiven && c.warmup > c.steps) c.warmup = Math.ceil(c.steps / 10);
  if (c.warmup > c.steps) {
    throw new TrainConfigError(
      `--warmup ${c.warmup} is longer than --steps ${c.steps}: the learning rate would never ` +
        "reach its peak; use a warm-up of at most the number of steps",
    );
  }
  return c;
}
