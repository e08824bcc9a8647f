/**
 * A sweep's plan: the grid of a {@link SweepSpec} expanded into runs, each with its full training
 * config and a stable id, the first 12 hex digits of the SHA-256 of that config (every setting
 * but `out` and `resume`, keys sorted, the method by its registry name). Re-planning an edited
 * file gives every run that did not change the same id, hence the same folder,
 * `<root>/<task>-<method>-<id>`: finished runs are never renumbered or redone.
 *
 * Prompt tuning has no offset network and no rank: its runs ignore the `rank` and `lr-offset`
 * axes (they take the base's learning rate of the offset network, unused), so the grid holds
 * each prompt-tuning run once.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { DEMO_PRESET } from "../train/demo.ts";
import {
  PAPER_DEFAULTS,
  resolveTrainConfig,
  TRAIN_OPTIONS,
  type TrainConfig,
} from "../train/config.ts";
import { planRun } from "../train/trainer.ts";
import "../peft/registry.ts";
import { methodModule } from "../peft/method.ts";
import { SweepError } from "./errors.ts";
import type { SweepSpec } from "./sweep_file.ts";

/** One run of a plan. */
export interface PlannedRun {
  /** Its position in the plan (the grid's order, first axis outermost). */
  index: number;
  /** The stable id: a hash of {@link PlannedRun.config} (see {@link runId}). */
  id: string;
  /** The folder name, `<task>-<method>-<id>`. */
  name: string;
  /** The run folder (absolute), `<root>/<name>`. */
  dir: string;
  /** The full training config; `out` is {@link PlannedRun.dir}. */
  config: TrainConfig;
  /** The axes' values of this run, by flag (`lr-offset`), as the tables show them. */
  values: Record<string, unknown>;
}

/** An expanded sweep. */
export interface SweepPlan {
  /** The sweep file's spec. */
  spec: SweepSpec;
  /** The run root (absolute). */
  root: string;
  /** The runs, in grid order, each once. */
  runs: PlannedRun[];
  /** Remarks for the user (e.g. runs that axes do not multiply). */
  notes: string[];
}

/**
 * A run's settings as its id sees them: every setting of `config` but `out` and `resume`, in
 * `TRAIN_OPTIONS` order, undefined ones dropped. These are what the sweep writes as the run's
 * `settings.json` (the `--config` file of `deno task train`).
 *
 * @example
 * ```ts
 * import { PAPER_DEFAULTS, runSettings } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const s = runSettings({ ...PAPER_DEFAULTS, out: "runs/x", rank: undefined });
 * assert.equal(s.lr, 0.3);
 * assert.ok(!("out" in s) && !("resume" in s) && !("rank" in s));
 * ```
 */
export function runSettings(config: Partial<TrainConfig>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS) {
    if (o.key === "out" || o.key === "resume") continue;
    const v = (config as Record<string, unknown>)[o.key];
    if (v !== undefined) out[o.key] = v;
  }
  return out;
}

/**
 * The stable id of a run: the first 12 hex digits of the SHA-256 of its settings
 * ({@link runSettings}) as JSON with sorted keys, the method by its registry name (`pt` and
 * `prompt_tuning` are one method).
 *
 * @example
 * ```ts
 * import { PAPER_DEFAULTS, runId } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const a = runId({ ...PAPER_DEFAULTS, method: "pt", out: "runs/a" });
 * assert.match(a, /^[0-9a-f]{12}$/);
 * assert.equal(runId({ ...PAPER_DEFAULTS, method: "prompt_tuning", out: "elsewhere" }), a);
 * assert.notEqual(runId({ ...PAPER_DEFAULTS, method: "pt", lr: 0.4 }), a);
 * ```
 */
export function runId(config: Partial<TrainConfig>): string {
  const s = runSettings(config);
  if (typeof s.method === "string") {
    try {
      s.method = methodModule(s.method).name;
    } catch { /* an unknown method hashes as written; planning refuses it */ }
  }
  const sorted = Object.fromEntries(Object.entries(s).sort(([a], [b]) => a < b ? -1 : 1));
  return createHash("sha256").update(JSON.stringify(sorted)).digest("hex").slice(0, 12);
}

/** The task part of a folder name: the task's name (a custom task's `name`), filename-safe. */
function taskLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 40) || "task";
}

/**
 * The demo preset with its model and task as paths relative to the working directory when they
 * are below it (`deno task` runs from the project's root): ids then do not depend on where the
 * project is checked out.
 */
function demoPreset(): Record<string, unknown> {
  const rel = (p: string) => {
    const r = relative(Deno.cwd(), p);
    return r && !r.startsWith("..") && !isAbsolute(r) ? r : p;
  };
  return { ...DEMO_PRESET, model: rel(DEMO_PRESET.model), task: rel(DEMO_PRESET.task), out: "-" };
}

/**
 * The id in a run folder's name (`rte-adept-0123456789ab` → `0123456789ab`), or undefined.
 *
 * @example
 * ```ts
 * import { idOfRunDir } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(idOfRunDir("runs/sweeps/g/rte-adept-0123456789ab"), "0123456789ab");
 * assert.equal(idOfRunDir("runs/sweeps/g/report"), undefined);
 * ```
 */
export function idOfRunDir(dir: string): string | undefined {
  return /-([0-9a-f]{12})$/.exec(basename(dir))?.[1];
}

/**
 * Expands a sweep into its runs (see the module doc). Every run's config is checked as
 * `deno task train` checks it (the method and its settings, the task), naming the run's axis
 * values on failure.
 *
 * @param spec The checked sweep file.
 * @param options `root` overrides the file's run root.
 *
 * @example
 * ```ts
 * import { parseSweep, planSweep } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const base = { steps: 20 };
 * const axes = { method: ["adept", "pt"], "lr-offset": [1e-2, 3e-2] };
 * const plan = await planSweep(parseSweep({ preset: "demo", base, axes }, "demo.yaml"), {
 *   root: "/tmp/sweeps/demo",
 * });
 * // ADePT twice (two offset learning rates), prompt tuning once (it has no offset network)
 * assert.deepEqual(plan.runs.map((r) => r.values.method), ["adept", "adept", "pt"]);
 * assert.match(plan.runs[0].dir, /^\/tmp\/sweeps\/demo\/dictionary-adept-[0-9a-f]{12}$/);
 * // an edited grid (axes reordered, values added) keeps the ids of the runs it still holds
 * const edited = { "lr-offset": [3e-2, 1e-2, 1e-1], method: ["adept"] };
 * const more = await planSweep(parseSweep({ preset: "demo", base, axes: edited }, "demo.yaml"));
 * const ids = new Set(more.runs.map((r) => r.id));
 * assert.ok(plan.runs.filter((r) => r.values.method === "adept").every((r) => ids.has(r.id)));
 * ```
 */
export async function planSweep(
  spec: SweepSpec,
  options: { root?: string } = {},
): Promise<SweepPlan> {
  const root = resolve(options.root ?? spec.root);
  const preset: Record<string, unknown> = spec.preset === "demo"
    ? demoPreset()
    : { ...PAPER_DEFAULTS };
  const presetName = spec.preset === "demo" ? "the demo preset" : "the paper's recipe";
  // The offset network's learning rate of methods without one: the base's, or the preset's.
  const unusedLrOffset = spec.base.lrOffset ?? preset.lrOffset;
  const runs: PlannedRun[] = [];
  const seen = new Set<string>();
  const notes = new Set<string>();
  const checked = new Map<string, Promise<string>>();
  const combos = spec.axes.reduce<Record<string, unknown>[]>(
    (acc, axis) => acc.flatMap((c) => axis.values.map((v) => ({ ...c, [axis.key]: v }))),
    [{}],
  );
  for (const combo of combos) {
    const values: Record<string, unknown> = {};
    for (const a of spec.axes) values[a.flag] = combo[a.key];
    const what = spec.axes.map((a) => `${a.flag} ${JSON.stringify(combo[a.key])}`).join(", ");
    let config: TrainConfig;
    try {
      config = resolveTrainConfig([
        { name: presetName, values: preset },
        { name: `${spec.source}: base`, values: { ...spec.base } },
        { name: `${spec.source}: axes (${what})`, values: combo },
      ]);
    } catch (e) {
      throw new SweepError(`${spec.source}: the run with ${what}: ${(e as Error).message}`);
    }
    const mod = methodModule(config.method);
    const hasOffset = Object.values(mod.shapes(mod.defaults as never, 8)).some((s) =>
      s.group === "offset"
    );
    if (!("rank" in mod.defaults)) {
      if ("rank" in combo) {
        notes.add(`${mod.title} has no rank: the rank axis does not multiply its runs`);
      }
      delete config.rank;
    }
    if (!hasOffset) {
      if ("lrOffset" in combo) {
        notes.add(
          `${mod.title} has no offset network: the lr-offset axis does not multiply its runs`,
        );
        values["lr-offset"] = undefined;
      }
      config.lrOffset = unusedLrOffset as number;
    }
    if ("rank" in combo && config.rank === undefined) values.rank = undefined;
    const key = JSON.stringify([
      config.method,
      config.task,
      config.promptLength,
      config.rank,
      config.maxSourceLength,
    ]);
    if (!checked.has(key)) {
      checked.set(
        key,
        planRun(config).then((p) => p.task.name, (e) => {
          throw new SweepError(`${spec.source}: the run with ${what}: ${(e as Error).message}`);
        }),
      );
    }
    const taskName = await checked.get(key)!;
    const id = runId(config);
    if (seen.has(id)) continue;
    seen.add(id);
    const name = `${taskLabel(taskName)}-${mod.name}-${id}`;
    const dir = join(root, name);
    runs.push({ index: runs.length, id, name, dir, config: { ...config, out: dir }, values });
  }
  return { spec, root, runs, notes: [...notes] };
}
