/**
 * Custom tasks defined by a JSON file, so that `--task my_task.json` trains on your own data:
 *
 * ```json
 * {
 *   "name": "dictionary",
 *   "train": "data/train.jsonl",
 *   "validation": "data/validation.jsonl",
 *   "test": "data/test.jsonl",
 *   "source": "{words}",
 *   "target": "translation",
 *   "metrics": ["accuracy"]
 * }
 * ```
 *
 * File paths are relative to the JSON file. The fields are those of `customTask` (tasks.ts):
 * `name`, `train` (required), `validation`, `test`, `source` (a template with `{fields}`,
 * required), `target` (a column or a template, required), `metrics`, `labels`,
 * `maxSourceLength`, `maxTargetLength`.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { describeIoError, FileReadError, readTextFileChecked } from "../io/files.ts";
import type { MetricName } from "./metrics.ts";
import { METRICS } from "./metrics.ts";
import { customTask, type CustomTaskOptions, getTask, type Task, TaskError } from "./tasks.ts";

const FIELDS: Record<string, "string" | "string[]" | "integer"> = {
  name: "string",
  train: "string",
  validation: "string",
  test: "string",
  source: "string",
  target: "string",
  metrics: "string[]",
  labels: "string[]",
  maxSourceLength: "integer",
  maxTargetLength: "integer",
};

/**
 * Parses a custom task definition (the JSON object of a task file); relative paths are resolved
 * against `baseDir`. Errors name the file and the field.
 *
 * @example
 * ```ts
 * import { parseTaskFile, TaskError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const t = parseTaskFile({ train: "t.jsonl", source: "{q}", target: "a" }, "/data/task.json");
 * assert.equal(t.files?.train, "/data/t.jsonl"); // relative to the task file
 * assert.deepEqual(t.format({ q: "2+2", a: "4" }), { source: "2+2", target: "4" });
 * assert.throws(() => parseTaskFile({ train: "t.jsonl", source: "{q}" }, "task.json"), TaskError);
 * ```
 */
export function parseTaskFile(raw: unknown, file: string): Task {
  const fail = (msg: string) => new TaskError(`${file}: ${msg}`, { task: file });
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw fail(`a task file holds a JSON object, got ${JSON.stringify(raw)?.slice(0, 40)}`);
  }
  const r = raw as Record<string, unknown>;
  for (const [k, v] of Object.entries(r)) {
    const kind = FIELDS[k];
    if (!kind) {
      throw fail(`unknown field "${k}"; the fields are ${Object.keys(FIELDS).join(", ")}`);
    }
    const ok = kind === "string"
      ? typeof v === "string" && v !== ""
      : kind === "integer"
      ? Number.isInteger(v) && (v as number) > 0
      : Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string");
    if (!ok) {
      const want = kind === "string"
        ? "a non-empty string"
        : kind === "integer"
        ? "a positive integer"
        : "a non-empty list of strings";
      throw fail(`field "${k}" must be ${want}, got ${JSON.stringify(v)}`);
    }
  }
  for (const k of ["train", "source", "target"]) {
    if (r[k] === undefined) throw fail(`the field "${k}" is required`);
  }
  const metrics = (r.metrics as string[] | undefined) ?? ["accuracy"];
  for (const m of metrics) {
    if (!Object.hasOwn(METRICS, m)) {
      throw fail(`unknown metric "${m}"; the metrics are ${Object.keys(METRICS).join(", ")}`);
    }
  }
  const base = dirname(file);
  const path = (p: unknown) =>
    p === undefined ? undefined : isAbsolute(p as string) ? p as string : join(base, p as string);
  const options: CustomTaskOptions = {
    name: (r.name as string | undefined) ?? undefined,
    train: path(r.train)!,
    validation: path(r.validation),
    test: path(r.test),
    source: r.source as string,
    target: r.target as string,
    metrics: metrics as MetricName[],
    labels: r.labels as string[] | undefined,
    maxSourceLength: r.maxSourceLength as number | undefined,
    maxTargetLength: r.maxTargetLength as number | undefined,
  };
  try {
    return customTask(options);
  } catch (e) {
    throw fail((e as Error).message);
  }
}

/**
 * Reads and parses a task file (see the module doc).
 *
 * @example
 * ```ts
 * import { loadTaskFile } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const task = await loadTaskFile("tasks/default/task.json"); // the demo's task
 * assert.equal(task.name, "dictionary");
 * assert.deepEqual(task.metrics, ["accuracy"]);
 * ```
 */
export async function loadTaskFile(file: string): Promise<Task> {
  let text: string;
  try {
    text = await readTextFileChecked(file, { maxBytes: 16 * 1024 * 1024 });
  } catch (e) {
    const why = e instanceof FileReadError ? e.message : describeIoError(e);
    throw new TaskError(`${file}: cannot read the task file: it ${why}`, { task: file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TaskError(`${file}: not valid JSON: ${(e as Error).message}`, { task: file });
  }
  return parseTaskFile(raw, file);
}

/**
 * A built-in task by name (`rte`), or a custom task from a `.json` task file.
 *
 * @example
 * ```ts
 * import { resolveTask } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal((await resolveTask("rte")).name, "rte"); // built in
 * assert.equal((await resolveTask("tasks/default/task.json")).name, "dictionary"); // a task file
 * ```
 */
export async function resolveTask(nameOrFile: string): Promise<Task> {
  if (nameOrFile.toLowerCase().endsWith(".json")) return await loadTaskFile(nameOrFile);
  return getTask(nameOrFile);
}
