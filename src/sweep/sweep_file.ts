/**
 * Sweep files: a base training config and the axes of a grid, in JSON or YAML.
 *
 * ```yaml
 * name: rte-grid            # optional; the file's name without extension
 * root: runs/sweeps/rte     # optional; runs/sweeps/<name>: the run root (shared on a cluster)
 * preset: paper             # optional; paper (the paper's recipe) or demo (the demo's tiny T5)
 * base:                     # any setting of `deno task train` but out and resume
 *   model: google-t5/t5-base
 *   steps: 30000
 * axes:                     # non-empty lists; the grid is their product, first axis outermost
 *   task: [rte, cb]
 *   method: [adept, dept]
 *   lr: [3e-1, 4e-1]
 *   lr-offset: [1e-4, 5e-3]
 *   seed: [42]
 * ```
 *
 * The axes are `task`, `method`, `lr`, `lr-offset`, `prompt-length`, `rank`, `seed` and `steps`
 * (kebab-case as the flags, or camelCase). Unknown keys, values of the wrong type, empty or
 * repeated axis values, unknown tasks and methods are refused with the file, the key and the fix.
 *
 * @module
 */

import { basename, extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { getTask } from "../data/tasks.ts";
import "../peft/registry.ts";
import { methodModule } from "../peft/method.ts";
import {
  optionFor,
  parseValue,
  TRAIN_OPTIONS,
  type TrainConfig,
  type TrainOption,
} from "../train/config.ts";
import { SweepError } from "./errors.ts";

/** One axis of the grid: a setting and its values, in the file's order. */
export interface SweepAxis {
  /** The setting (camelCase key of `TrainConfig`). */
  key: keyof TrainConfig;
  /** Its flag name (kebab-case), for messages and tables. */
  flag: string;
  /** The values, checked and converted. */
  values: readonly unknown[];
}

/** A checked sweep file. */
export interface SweepSpec {
  /** Where it came from (the file name), for messages. */
  source: string;
  /** The sweep's name: job names, the default root. */
  name: string;
  /** The run root as written (relative paths are taken from the working directory). */
  root: string;
  /** The defaults under `base`: the paper's recipe or the demo's preset. */
  preset: "paper" | "demo";
  /** Settings shared by every run (camelCase keys, checked values). */
  base: Readonly<Record<string, unknown>>;
  /** The axes, outermost first. */
  axes: readonly SweepAxis[];
}

/** The settings a sweep may vary, in the order tables list them. */
export const AXIS_KEYS: readonly (keyof TrainConfig)[] = [
  "task",
  "method",
  "lr",
  "lrOffset",
  "promptLength",
  "rank",
  "seed",
  "steps",
];

/** The keys of a sweep file. */
const TOP_KEYS = ["name", "root", "preset", "base", "axes"] as const;

/** The most runs one sweep file may expand to. */
export const MAX_RUNS = 10_000;

const axisFlags = () => AXIS_KEYS.map((k) => optionFor(k)!.flag);

/** The edit distance of two short strings. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

/** `; did you mean "x"?` for the closest candidate within two edits, or "". */
function hint(word: string, candidates: readonly string[]): string {
  const w = word.toLowerCase().replace(/_/g, "-");
  let best: string | undefined, bestD = 3;
  for (const c of candidates) {
    const d = Math.min(distance(w, c), w.endsWith("s") ? distance(w.slice(0, -1), c) : 9);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best ? `; did you mean "${best}"?` : "";
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks one value of a setting; the message names `where` (e.g. `grid.yaml: axes.lr[1]`). */
function checkValue(o: TrainOption, v: unknown, where: string): unknown {
  let value: unknown;
  try {
    value = parseValue(o, v, "");
  } catch (e) {
    // parseValue's message is "<where> --<flag>: <what>, got <value>": keep what follows the flag
    const msg = (e as Error).message.replace(/^\s*--[a-z-]+: /, "");
    throw new SweepError(`${where}: ${msg}`);
  }
  try {
    if (o.key === "method") methodModule(value as string);
    if (o.key === "task" && !(value as string).toLowerCase().endsWith(".json")) {
      getTask(value as string);
    }
  } catch (e) {
    throw new SweepError(`${where}: ${(e as Error).message}`);
  }
  return value;
}

/**
 * Checks a parsed sweep file (a JSON or YAML document) and returns its spec.
 *
 * @param raw The parsed document.
 * @param source The file name, for messages and the default name.
 *
 * @example
 * ```ts
 * import { parseSweep, SweepError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const spec = parseSweep(
 *   { base: { steps: 1000 }, axes: { task: ["rte", "cb"], "lr-offset": [1e-4, 5e-3] } },
 *   "sweeps/glue.yaml",
 * );
 * assert.equal(spec.name, "glue");
 * assert.equal(spec.root, "runs/sweeps/glue");
 * assert.deepEqual(spec.axes.map((a) => a.key), ["task", "lrOffset"]);
 * // refused, naming the key and the fix
 * assert.throws(() => parseSweep({ axes: { tasks: ["rte"] } }, "g.yaml"), /did you mean "task"/);
 * assert.throws(() => parseSweep({ axes: { lr: ["fast"] } }, "g.yaml"), SweepError);
 * ```
 */
export function parseSweep(raw: unknown, source: string): SweepSpec {
  if (!isRecord(raw)) {
    throw new SweepError(
      `${source}: expected a mapping with ${TOP_KEYS.join(", ")}, got ${
        Array.isArray(raw) ? "a list" : JSON.stringify(raw)
      }`,
    );
  }
  for (const k of Object.keys(raw)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) {
      throw new SweepError(
        `${source}: unknown key "${k}"${hint(k, TOP_KEYS)}; a sweep file has ${
          TOP_KEYS.join(", ")
        } (training settings go under base, grids under axes)`,
      );
    }
  }
  const str = (k: string, v: unknown, re?: RegExp, what?: string) => {
    if (typeof v !== "string" || v.trim() === "" || (re && !re.test(v))) {
      throw new SweepError(
        `${source}: ${k} must be ${what ?? "a non-empty string"}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const name = raw.name === undefined
    ? basename(source, extname(source)).replace(/[^A-Za-z0-9_.-]/g, "_")
    : str(
      "name",
      raw.name,
      /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
      "letters, digits, _ . - (at most 63)",
    );
  const root = raw.root === undefined ? `runs/sweeps/${name}` : str("root", raw.root);
  const preset = raw.preset === undefined ? "paper" : raw.preset;
  if (preset !== "paper" && preset !== "demo") {
    throw new SweepError(
      `${source}: preset must be "paper" (the paper's recipe) or "demo" (the demo's tiny T5 and ` +
        `dictionary task), got ${JSON.stringify(preset)}`,
    );
  }

  const settingFlags = TRAIN_OPTIONS.map((o) => o.flag);
  const base: Record<string, unknown> = {};
  if (raw.base !== undefined && !isRecord(raw.base)) {
    throw new SweepError(
      `${source}: base must be a mapping of training settings, got ${JSON.stringify(raw.base)}`,
    );
  }
  for (const [k, v] of Object.entries(raw.base ?? {})) {
    const o = optionFor(k);
    if (!o) {
      throw new SweepError(
        `${source}: base.${k} is not a training setting${hint(k, settingFlags)}; the settings ` +
          `are ${settingFlags.filter((f) => f !== "out" && f !== "resume").join(", ")}`,
      );
    }
    if (o.key === "out" || o.key === "resume") {
      throw new SweepError(
        `${source}: base.${k}: the sweep chooses each run's folder (<root>/<task>-<method>-<id>) ` +
          "and resumes interrupted runs itself; remove it (set root to choose where runs go)",
      );
    }
    if (o.key in base) throw new SweepError(`${source}: base sets ${o.flag} twice (${k})`);
    if (v === null || v === undefined) {
      throw new SweepError(`${source}: base.${k} has no value; give one or remove the key`);
    }
    base[o.key] = checkValue(o, v, `${source}: base.${k}`);
  }

  if (raw.axes === undefined) {
    throw new SweepError(
      `${source}: no axes; add e.g. "axes: { lr: [3e-1, 4e-1] }" (the axes are ${
        axisFlags().join(", ")
      })`,
    );
  }
  if (!isRecord(raw.axes)) {
    throw new SweepError(
      `${source}: axes must be a mapping of setting to a list of values, got ${
        JSON.stringify(raw.axes)
      }`,
    );
  }
  const axes: SweepAxis[] = [];
  let runs = 1;
  for (const [k, v] of Object.entries(raw.axes)) {
    const o = optionFor(k);
    if (!o || !AXIS_KEYS.includes(o.key)) {
      const inBase = o && o.key !== "out" && o.key !== "resume"
        ? ` (${o.flag} is a training setting: set it under base)`
        : hint(k, axisFlags());
      throw new SweepError(
        `${source}: axes.${k} is not a sweep axis${inBase}; the axes are ${axisFlags().join(", ")}`,
      );
    }
    if (axes.some((a) => a.key === o.key)) {
      throw new SweepError(`${source}: axes set ${o.flag} twice (${k})`);
    }
    if (o.key in base) {
      throw new SweepError(
        `${source}: ${o.flag} is both under base and under axes; keep one (an axis of one value ` +
          "is fine)",
      );
    }
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) {
      throw new SweepError(
        `${source}: axes.${k} is empty; give at least one value, or remove the axis to use the ` +
          "base's value",
      );
    }
    const values = list.map((x, i) => {
      if (Array.isArray(x) || isRecord(x) || x === null || x === undefined) {
        throw new SweepError(
          `${source}: axes.${k}[${i}]: expected a ${o.kind}, got ${JSON.stringify(x ?? null)}`,
        );
      }
      return checkValue(o, x, `${source}: axes.${k}[${i}]`);
    });
    const seen = new Map<string, number>();
    values.forEach((x, i) => {
      const j = seen.get(JSON.stringify(x));
      if (j !== undefined) {
        throw new SweepError(
          `${source}: axes.${k} repeats ${JSON.stringify(x)} (items ${j} and ${i}); each value ` +
            "once",
        );
      }
      seen.set(JSON.stringify(x), i);
    });
    runs *= values.length;
    axes.push({ key: o.key, flag: o.flag, values });
  }
  if (axes.length === 0) {
    throw new SweepError(
      `${source}: axes is empty; add at least one, e.g. "lr: [3e-1, 4e-1]" (the axes are ${
        axisFlags().join(", ")
      })`,
    );
  }
  if (runs > MAX_RUNS) {
    throw new SweepError(
      `${source}: the axes make ${runs} runs (${
        axes.map((a) => a.values.length).join(" x ")
      }), more than ${MAX_RUNS}; split the sweep into several files`,
    );
  }
  return { source, name, root, preset, base, axes };
}

/**
 * Parses the text of a sweep file: JSON for `.json`, YAML for `.yaml` / `.yml`.
 *
 * @param text The file's text.
 * @param source The file name: its extension picks the format; it names the file in messages.
 *
 * @example
 * ```ts
 * import { parseSweepText } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const yaml = "base:\n  steps: 500\naxes:\n  lr: [3e-1, 4e-1]\n  seed: [1, 2]\n";
 * const json = '{"base": {"steps": 500}, "axes": {"lr": [0.3, 0.4], "seed": [1, 2]}}';
 * assert.deepEqual(parseSweepText(yaml, "g.yaml").axes, parseSweepText(json, "g.json").axes);
 * assert.throws(() => parseSweepText("axes: [", "g.yaml"), /g\.yaml: not valid YAML/);
 * ```
 */
export function parseSweepText(text: string, source: string): SweepSpec {
  const ext = extname(source).toLowerCase();
  let raw: unknown;
  if (ext === ".json") {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new SweepError(`${source}: not valid JSON (${(e as Error).message})`);
    }
  } else if (ext === ".yaml" || ext === ".yml") {
    try {
      raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
    } catch (e) {
      throw new SweepError(`${source}: not valid YAML (${(e as Error).message.trim()})`);
    }
  } else {
    throw new SweepError(
      `${source}: a sweep file ends in .json, .yaml or .yml (got "${ext || "no extension"}")`,
    );
  }
  return parseSweep(raw, source);
}

/**
 * Reads and checks a sweep file (see {@link parseSweepText}).
 *
 * @example
 * ```ts
 * import { loadSweepFile } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/grid.yaml`, "preset: demo\naxes:\n  method: [adept, pt]\n");
 * const spec = await loadSweepFile(`${dir}/grid.yaml`);
 * assert.equal(spec.preset, "demo");
 * await assert.rejects(loadSweepFile(`${dir}/missing.yaml`), /cannot read the sweep file/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadSweepFile(path: string): Promise<SweepSpec> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new SweepError(`${path}: cannot read the sweep file (${(e as Error).message})`);
  }
  return parseSweepText(text, path);
}
