/**
 * The command line of `deno task train`, as a library function so it can be tested: flags
 * parsed with `node:util` `parseArgs`, `--config FILE` read, `--resume` starting from the run's
 * own settings, and everything checked before anything is loaded.
 *
 * Which defaults apply: with neither `--model`, `--task` nor `--config`, the built-in demo
 * preset (see `demo.ts`); otherwise the paper's recipe (docs/method.md), with `--model`
 * defaulting to `google-t5/t5-base`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readCheckpoint } from "./checkpoint.ts";
import {
  optionFor,
  PAPER_DEFAULTS,
  resolveTrainConfig,
  TRAIN_OPTIONS,
  type TrainConfig,
  TrainConfigError,
} from "./config.ts";

/** What the command line asks for. */
export type TrainCommand =
  | { kind: "help"; text: string }
  | { kind: "demo"; overrides: Record<string, unknown> }
  | { kind: "train"; config: TrainConfig };

/**
 * A run folder name for a task and method at the current time: `runs/rte-adept-20261202-013000`.
 *
 * @example
 * ```ts
 * import { defaultRunDir } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const now = new Date("2026-12-02T01:30:00Z");
 * assert.equal(defaultRunDir("rte", "adept", now), "runs/rte-adept-20261202-013000");
 * assert.equal(defaultRunDir("data/my_task.json", "pt", now), "runs/my_task-pt-20261202-013000");
 * ```
 */
export function defaultRunDir(task: string, method: string, now: Date = new Date()): string {
  const base = task.replace(/\.json$/i, "").split(/[\\/]/).pop()!.replace(/[^A-Za-z0-9_.-]/g, "_");
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `runs/${base}-${method}-${stamp}`;
}

/**
 * The `--help` text: every flag with its default.
 *
 * @example
 * ```ts
 * import { trainHelp } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const help = trainHelp();
 * assert.match(help, /--lr <number> +peak learning rate of the prompt \(default: 0.3\)/);
 * assert.match(help, /--config <file>/);
 * ```
 */
export function trainHelp(): string {
  const rows = TRAIN_OPTIONS.map((o) => {
    const d = (PAPER_DEFAULTS as Record<string, unknown>)[o.key];
    const flag = `--${o.flag}${
      o.kind === "boolean" ? "" : ` <${o.kind === "string" ? "value" : o.kind}>`
    }`;
    return [flag, `${o.help}${d !== undefined ? ` (default: ${JSON.stringify(d)})` : ""}`];
  });
  rows.push(["--config <file>", "a JSON file with the same keys; flags override it"]);
  rows.push(["-h, --help", "this help"]);
  const w = Math.max(...rows.map(([f]) => f.length));
  return [
    "deno task train [flags]",
    "",
    "Fine-tunes a frozen T5 with ADePT (or DePT, prompt tuning) on a task, as the paper does.",
    "With no flags, runs the built-in demo: ADePT on a tiny pretrained T5 shipped with the",
    "project, a few minutes on a CPU, compared with prompt tuning and the frozen model.",
    "",
    ...rows.map(([f, h]) => `  ${f.padEnd(w)}  ${h}`),
    "",
    "Examples:",
    "  deno task train                                      # the demo",
    "  deno task train --model google-t5/t5-base --task rte # the paper's recipe on RTE",
    "  deno task train --task cb --method dept --steps 20000 --out runs/cb-dept",
    "  deno task train --resume --out runs/cb-dept          # continue a stopped run",
  ].join("\n");
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new TrainConfigError(`--config ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TrainConfigError(`--config ${path}: expected a JSON object of settings`);
  }
  return raw as Record<string, unknown>;
}

/**
 * Parses `deno task train`'s arguments. Unknown flags, bad values and impossible combinations
 * throw {@link TrainConfigError} naming the flag and what is allowed.
 *
 * @example
 * ```ts
 * import { parseTrainArgs, TrainConfigError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const cmd = await parseTrainArgs(["--task", "rte", "--steps", "100", "--out", "runs/x"]);
 * assert.equal(cmd.kind, "train");
 * if (cmd.kind === "train") {
 *   assert.equal(cmd.config.model, "google-t5/t5-base"); // the paper's recipe fills the rest
 *   assert.equal(cmd.config.steps, 100);
 * }
 * assert.equal((await parseTrainArgs([])).kind, "demo"); // no flags: the demo
 * await assert.rejects(parseTrainArgs(["--stesp", "100"]), TrainConfigError); // names the flag
 * ```
 */
export async function parseTrainArgs(args: readonly string[]): Promise<TrainCommand> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  for (const o of TRAIN_OPTIONS) {
    options[o.flag] = { type: o.kind === "boolean" ? "boolean" : "string" };
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify.*$/s, "");
    throw new TrainConfigError(`${msg}; see --help for the flags`);
  }
  if (values.help) return { kind: "help", text: trainHelp() };
  const flags: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (k !== "config") flags[k] = v;
  const file = values.config ? await readConfigFile(values.config as string) : {};
  const given = (key: keyof TrainConfig) =>
    Object.keys(flags).some((k) => optionFor(k)?.key === key) ||
    Object.keys(file).some((k) => optionFor(k)?.key === key);
  if (flags.resume) {
    if (!given("out")) {
      throw new TrainConfigError("--resume needs --out: the folder of the run to continue");
    }
    const out = (flags.out ?? file.out) as string;
    const saved = await readCheckpoint(out).catch((e) => {
      throw new TrainConfigError(`--resume --out ${out}: ${(e as Error).message}`);
    });
    const config = resolveTrainConfig([
      { name: `${out}/checkpoint.safetensors`, values: { ...saved.config } },
      { name: `--config ${values.config}`, values: file },
      { name: "flags", values: flags },
    ]);
    return { kind: "train", config };
  }
  if (!values.config && !given("model") && !given("task")) {
    return { kind: "demo", overrides: flags };
  }
  if (given("model") && !given("task")) {
    throw new TrainConfigError(
      "--model without --task: name a task (rte, cb, ... or a custom task .json); see --help",
    );
  }
  const partial = resolveTrainConfig([
    { name: "defaults", values: { ...PAPER_DEFAULTS } },
    { name: `--config ${values.config}`, values: file },
    { name: "flags", values: flags },
  ]);
  if (!given("out")) partial.out = defaultRunDir(partial.task, partial.method);
  return { kind: "train", config: partial };
}
