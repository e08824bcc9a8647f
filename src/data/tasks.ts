/**
 * Tasks: where the data comes from, how a row becomes a `source`/`target` text pair, which
 * metrics score it, and how the train/validation/test splits are drawn.
 *
 * The 13 GLUE and SuperGLUE tasks of docs/method.md ({@link TASKS}) reproduce the authors'
 * `src/tasks.py` (DePT/ADePT, from ATTEMPT): source = parts joined by single spaces with no task
 * prefix (`add_prefix=False`), target = `str(label)`:
 *
 * | task | HF dataset, config | source | target |
 * |---|---|---|---|
 * | mnli | nyu-mll/glue, mnli | `premise: {premise} hypothesis: {hypothesis}` | 0/1/2 |
 * | qqp | nyu-mll/glue, qqp | `question1: {question1} question2: {question2}` | 0/1 |
 * | qnli | nyu-mll/glue, qnli | `question: {question} sentence: {sentence}` | 0/1 |
 * | sst2 | nyu-mll/glue, sst2 | `sentence: {sentence}` | 0/1 |
 * | stsb | nyu-mll/glue, stsb | `sentence1: {sentence1} sentence2: {sentence2}` | `str(np.round(label, 1))` |
 * | mrpc | nyu-mll/glue, mrpc | `sentence1: {sentence1} sentence2: {sentence2}` | 0/1 |
 * | rte | nyu-mll/glue, rte | `sentence1: {sentence1} sentence2: {sentence2}` | 0/1 |
 * | cola | nyu-mll/glue, cola | `sentence: {sentence}` | 0/1 |
 * | multirc | aps/super_glue, multirc | `question: {question} answer: {answer} paragraph: {paragraph}`, `<br>` → space, `<b>`/`</b>` removed | 0/1 |
 * | boolq | aps/super_glue, boolq | `question: {question} passage: {passage}` | 0/1 |
 * | wic | aps/super_glue, wic | `sentence1: {sentence1} sentence2: {sentence2} word: {word}` | 0/1 |
 * | wsc | aps/super_glue, wsc.fixed | `text: {text}`, span1 marked `* .. *`, span2 `# .. #` (T5's regex) | 0/1 |
 * | cb | aps/super_glue, cb | `premise: {premise} hypothesis: {hypothesis}` | 0/1/2 |
 *
 * Metrics are the authors' `TASK_TO_METRICS` (the first selects the checkpoint): accuracy,
 * except qqp/mrpc [accuracy, f1], stsb [pearson, spearmanr], cola [matthews_correlation],
 * multirc [f1], cb [f1_multiclass, accuracy]. The maximum target length is the authors'
 * `max(len(tokenizer.encode(label)) for label in labels_list)`, or their generation budget (20)
 * for a task without a label list: see {@link maxTargetLength}.
 * Splits follow docs/method.md with `randperm` seed 42 (`splits.ts`).
 *
 * **Custom tasks** ({@link customTask}) read local csv/tsv/jsonl/json/parquet files and build
 * the source from a template such as `"question: {question} context: {context}"`.
 *
 * @module
 */

import type { MetricName } from "./metrics.ts";
import {
  DatasetError,
  downloadHubSplits,
  type HubSplitFiles,
  type LocatedRows,
  readTableLocated,
  type Row,
} from "./datasets.ts";
import type { HubOptions } from "../io/hub.ts";
import { checkRegularFile, FileReadError, readFileChecked } from "../io/files.ts";
import { randperm } from "./randperm.ts";
import { SPLIT_SCHEMES, splitIndices, type SplitName, type SplitScheme } from "./splits.ts";

/** One text-to-text example. */
export interface Example {
  /** The encoder input text. */
  source: string;
  /** The target text (a label string for classification tasks). */
  target: string;
}

/**
 * Where a row came from, for error messages: the file and one of `line` (1-based, the line a
 * JSONL/CSV/TSV record starts on), `row` (1-based, parquet) or `element` (0-based, JSON
 * arrays), as the readers report them (datasets.ts `readTableLocated`).
 */
export interface RowLocation {
  /** The file (or dataset/split) the row was read from. */
  file: string;
  /** 1-based line the record starts on (JSONL, CSV, TSV). */
  line?: number;
  /** 1-based row (parquet). */
  row?: number;
  /** 0-based element index (a JSON file holding an array). */
  element?: number;
}

/** "file, line 12" / "file, row 3" / "file, element 0" / "file". */
function describeLocation(where: RowLocation): string {
  if (where.line !== undefined) return `${where.file}, line ${where.line}`;
  if (where.row !== undefined) return `${where.file}, row ${where.row}`;
  if (where.element !== undefined) return `${where.file}, element ${where.element}`;
  return where.file;
}

/**
 * A task that cannot be had or applied: an unknown task name, a custom task's bad template or
 * options, a row that does not fit its task (a missing or null field, a label of the wrong type),
 * or data too small to split. `task` names the task when known; `where` locates the row when it
 * came from a file. (A data file that cannot be read, or lacks a column, is a `DatasetError`.)
 *
 * @example
 * ```ts
 * import { getTask, TaskError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => getTask("squad2"), TaskError);
 * assert.throws(
 *   () => getTask("sst2").format({ label: 1 }, { file: "train.jsonl", line: 3 }),
 *   (e) => e instanceof TaskError && e.task === "sst2" && e.where?.line === 3,
 * );
 * ```
 */
export class TaskError extends Error {
  /** The task concerned, when known. */
  readonly task?: string;
  /** Where the offending row was read from, when it came from a file. */
  readonly where?: RowLocation;
  /** An error about `options.task` (and the row at `options.where`); the message says what. */
  constructor(
    message: string,
    options?: ErrorOptions & { task?: string; where?: RowLocation },
  ) {
    super(message, options);
    this.name = "TaskError";
    this.task = options?.task;
    this.where = options?.where;
  }
}

/** A task definition. */
export interface Task {
  /** The task name (`sst2`, or the custom task's name). */
  readonly name: string;
  /** For Hub tasks: the dataset repo and config (`nyu-mll/glue`, `sst2`). */
  readonly dataset?: { readonly repo: string; readonly config: string };
  /** For custom tasks: the local files of each given split. */
  readonly files?: Readonly<Partial<Record<SplitName, string>>>;
  /** The columns `format` reads (the readers check they exist). */
  readonly columns: readonly string[];
  /** How the train/validation/test splits are drawn. */
  readonly splitScheme: SplitScheme | "custom";
  /** Metric names (metrics.ts `METRICS` keys); the first selects the best checkpoint. */
  readonly metrics: readonly MetricName[];
  /** All target strings, for classification tasks (sets the maximum target length). */
  readonly labels?: readonly string[];
  /** Source length in tokens, EOS included (256; MultiRC 348). */
  readonly maxSourceLength: number;
  /** A fixed maximum target length in tokens (EOS included), overriding the labels rule. */
  readonly maxTargetLength?: number;
  /**
   * Changes whenever `format` would give different examples (templates, version of the rules):
   * part of the tokenized-dataset cache key.
   */
  readonly fingerprint: string;
  /** Turns a row into an example; throws a clear error naming `where` on a bad row. */
  format(row: Row, where?: RowLocation): Example;
}

/** The names of the built-in tasks. */
export type TaskName =
  | "mnli"
  | "qqp"
  | "qnli"
  | "sst2"
  | "stsb"
  | "mrpc"
  | "rte"
  | "cola"
  | "multirc"
  | "boolq"
  | "wic"
  | "wsc"
  | "cb";

/** A task's row-level error. */
function rowError(task: string, where: RowLocation | undefined, message: string): TaskError {
  const at = where ? describeLocation(where) : "a row";
  return new TaskError(`${task}: ${at}: ${message}`, { task, where });
}

function text(task: string, row: Row, field: string, where?: RowLocation): string {
  const v = row[field];
  if (typeof v === "string") return v;
  if (v === undefined || v === null) {
    throw rowError(
      task,
      where,
      `field ${JSON.stringify(field)} is ${v === null ? "null" : "missing"}; the row has ${
        Object.keys(row).map((k) => JSON.stringify(k)).join(", ")
      }`,
    );
  }
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw rowError(task, where, `field ${JSON.stringify(field)} is not text: ${JSON.stringify(v)}`);
}

function intLabel(task: string, row: Row, where?: RowLocation): string {
  const v = row.label;
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  throw rowError(task, where, `label must be an integer, got ${JSON.stringify(v)}`);
}

/**
 * Python's `round(x, 1)` as numpy does it for float64 (`x * 10`, round half to even, `/ 10`),
 * formatted like Python's `str()` (`"3.8"`, `"5.0"`).
 */
function numpyRound1(x: number): string {
  const y = x * 10;
  const f = Math.floor(y);
  const d = y - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  const v = r / 10;
  if (Object.is(v, -0)) return "-0.0";
  const s = String(v);
  return /[.e]/.test(s) || !Number.isFinite(v) ? s : `${s}.0`;
}

/**
 * The STS-B target string: the authors' `str(round_stsb_target(label))`, i.e.
 * `str(np.round((label * 5) / 5, decimals=1))`. (Despite its docstring it rounds to one decimal,
 * not to the nearest 0.2.)
 *
 * @param label The similarity score (0..5).
 * @returns The target, e.g. `"3.8"`, `"5.0"`.
 *
 * @example
 * ```ts
 * import { stsbTarget } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stsbTarget(3.799999952316284), "3.8");
 * assert.equal(stsbTarget(5), "5.0");
 * ```
 */
export function stsbTarget(label: number): string {
  return numpyRound1((label * 5) / 5);
}

/** The authors' STS-B `labels_list`: `str(np.round(v, 1))` for `v` in `np.arange(0, 5.2, 0.2)`. */
export const STSB_LABELS: readonly string[] = Object.freeze(
  Array.from({ length: 26 }, (_, i) => numpyRound1(i * 0.2)),
);

/**
 * The authors' MultiRC `remove_markup`: `<br>` → space, `<b>` and `</b>` removed.
 *
 * @param s Text with HTML markup.
 * @returns The text without it.
 *
 * @example
 * ```ts
 * import { removeMarkup } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const text = removeMarkup("<b>Sent 1: </b>Hi.<br><b>Sent 2: </b>Yes.");
 * assert.equal(text, "Sent 1: Hi. Sent 2: Yes.");
 * ```
 */
export function removeMarkup(s: string): string {
  return s.replaceAll("<br>", " ").replace(/<\/?b>/g, "");
}

/**
 * T5's `_mark_span` as the authors wrote it: the regex `^((?:\S+\s){N})(W)` with `W` the span text
 * (used as a regex, as in their code), replaced by `\1{mark} \2 {mark}`. A span that does not
 * match leaves the text unchanged.
 *
 * @param text The sentence.
 * @param span The span's text.
 * @param index The span's word index.
 * @param mark `*` or `#`.
 * @returns The text with the span marked.
 *
 * @example
 * ```ts
 * import { markSpan } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const marked = markSpan("This is a test sentence .", "test", 3, "*");
 * assert.equal(marked, "This is a * test * sentence .");
 * ```
 */
export function markSpan(text: string, span: string, index: number, mark: string): string {
  let re: RegExp;
  try {
    re = new RegExp(`^((?:\\S+\\s){${index}})(${span})`);
  } catch {
    // Python would raise; mark the literal text instead.
    re = new RegExp(`^((?:\\S+\\s){${index}})(${span.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`);
  }
  return text.replace(re, (_m, pre: string, w: string) => `${pre}${mark} ${w} ${mark}`);
}

/**
 * The WSC source text with both spans marked, as the authors' `SuperGLUEWSCFixed.preprocessor`.
 *
 * @param row A `super_glue` `wsc.fixed` row.
 * @returns The marked text (without the `text:` prefix).
 *
 * @example
 * ```ts
 * import { wscText } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const row = {
 *   text: "This is a test sentence .",
 *   span1_text: "test",
 *   span1_index: 3,
 *   span2_text: "This",
 *   span2_index: 0,
 * };
 * assert.equal(wscText(row), "# This # is a * test * sentence .");
 * ```
 */
export function wscText(row: Row): string {
  const i1 = Number(row.span1_index), i2 = Number(row.span2_index);
  let t = markSpan(String(row.text), String(row.span1_text), i1, "*");
  t = markSpan(t, String(row.span2_text), i2 + (i1 < i2 ? 2 : 0), "#");
  return t;
}

interface BuiltinSpec {
  repo: string;
  config: string;
  columns: string[];
  metrics: MetricName[];
  labels: readonly string[];
  maxSourceLength?: number;
  parts: (row: Row, where?: RowLocation) => string[];
  target?: (row: Row, where?: RowLocation) => string;
}

const GLUE = "nyu-mll/glue";
const SUPER_GLUE = "aps/super_glue";
const L2 = ["0", "1"] as const;
const L3 = ["0", "1", "2"] as const;

function pairTask(
  name: string,
  repo: string,
  a: string,
  b: string,
  labels: readonly string[],
  metrics: MetricName[],
): BuiltinSpec {
  return {
    repo,
    config: name,
    columns: [a, b, "label"],
    metrics,
    labels,
    parts: (r, w) => [`${a}:`, text(name, r, a, w), `${b}:`, text(name, r, b, w)],
  };
}

function sentenceTask(name: string, metrics: MetricName[]): BuiltinSpec {
  return {
    repo: GLUE,
    config: name,
    columns: ["sentence", "label"],
    metrics,
    labels: L2,
    parts: (r, w) => ["sentence:", text(name, r, "sentence", w)],
  };
}

const SPECS: Record<TaskName, BuiltinSpec> = {
  mnli: pairTask("mnli", GLUE, "premise", "hypothesis", L3, ["accuracy"]),
  qqp: pairTask("qqp", GLUE, "question1", "question2", L2, ["accuracy", "f1"]),
  qnli: pairTask("qnli", GLUE, "question", "sentence", L2, ["accuracy"]),
  sst2: sentenceTask("sst2", ["accuracy"]),
  stsb: {
    ...pairTask("stsb", GLUE, "sentence1", "sentence2", STSB_LABELS, ["pearson", "spearmanr"]),
    target: (r, w) => {
      if (typeof r.label !== "number" || !Number.isFinite(r.label)) {
        throw rowError("stsb", w, `label must be a number, got ${JSON.stringify(r.label)}`);
      }
      return stsbTarget(r.label);
    },
  },
  mrpc: pairTask("mrpc", GLUE, "sentence1", "sentence2", L2, ["accuracy", "f1"]),
  rte: pairTask("rte", GLUE, "sentence1", "sentence2", L2, ["accuracy"]),
  cola: sentenceTask("cola", ["matthews_correlation"]),
  multirc: {
    repo: SUPER_GLUE,
    config: "multirc",
    columns: ["question", "answer", "paragraph", "label"],
    metrics: ["f1"],
    labels: L2,
    maxSourceLength: 348,
    parts: (r, w) => [
      "question:",
      removeMarkup(text("multirc", r, "question", w)),
      "answer:",
      removeMarkup(text("multirc", r, "answer", w)),
      "paragraph:",
      removeMarkup(text("multirc", r, "paragraph", w)),
    ],
  },
  boolq: pairTask("boolq", SUPER_GLUE, "question", "passage", L2, ["accuracy"]),
  wic: {
    repo: SUPER_GLUE,
    config: "wic",
    columns: ["sentence1", "sentence2", "word", "label"],
    metrics: ["accuracy"],
    labels: L2,
    parts: (r, w) => [
      "sentence1:",
      text("wic", r, "sentence1", w),
      "sentence2:",
      text("wic", r, "sentence2", w),
      "word:",
      text("wic", r, "word", w),
    ],
  },
  wsc: {
    repo: SUPER_GLUE,
    config: "wsc.fixed",
    columns: ["text", "span1_index", "span2_index", "span1_text", "span2_text", "label"],
    metrics: ["accuracy"],
    labels: L2,
    parts: (r, w) => {
      for (const f of ["text", "span1_text", "span2_text"]) text("wsc", r, f, w);
      for (const f of ["span1_index", "span2_index"]) {
        if (!Number.isInteger(r[f])) {
          throw rowError("wsc", w, `${f} must be an integer, got ${JSON.stringify(r[f])}`);
        }
      }
      return ["text:", wscText(r)];
    },
  },
  cb: pairTask("cb", SUPER_GLUE, "premise", "hypothesis", L3, ["f1_multiclass", "accuracy"]),
};

function builtin(name: TaskName): Task {
  const s = SPECS[name];
  return Object.freeze({
    name,
    dataset: Object.freeze({ repo: s.repo, config: s.config }),
    columns: Object.freeze([...s.columns]),
    splitScheme: SPLIT_SCHEMES[name],
    metrics: Object.freeze([...s.metrics]),
    labels: Object.freeze([...s.labels]),
    maxSourceLength: s.maxSourceLength ?? 256,
    fingerprint: `builtin:${name}:v1`,
    format(row: Row, where?: RowLocation): Example {
      return {
        source: s.parts(row, where).join(" "),
        target: s.target ? s.target(row, where) : intLabel(name, row, where),
      };
    },
  });
}

/** The built-in GLUE and SuperGLUE tasks of docs/method.md, by name. */
export const TASKS: Readonly<Record<TaskName, Task>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(SPECS) as TaskName[]).map((n) => [n, builtin(n)]),
  ) as Record<TaskName, Task>,
);

/** The names of the built-in tasks, in docs/method.md's order. */
export const TASK_NAMES: readonly TaskName[] = Object.freeze(Object.keys(SPECS) as TaskName[]);

/** The tasks the authors' code also names `superglue-<task>`: this project's SuperGLUE tasks. */
const SUPERGLUE_ALIASES: ReadonlySet<string> = new Set([
  "boolq",
  "cb",
  "multirc",
  "wic",
  "wsc",
  "wsc.fixed",
]);

/**
 * A built-in task by name.
 *
 * @param name A task name (case-insensitive). The authors' `superglue-<task>` names are
 *   accepted for the SuperGLUE tasks (boolq, cb, multirc, wic, wsc, wsc.fixed) only: the GLUE
 *   tasks have no such alias (`superglue-rte` is unknown, not GLUE RTE).
 * @returns The task.
 * @throws {TaskError} For an unknown name, listing the known ones.
 *
 * @example
 * ```ts
 * import { getTask } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const sst2 = getTask("SST2"); // case-insensitive; the authors' aliases work too
 * assert.deepEqual(sst2.format({ sentence: "a charming journey", label: 1 }), {
 *   source: "sentence: a charming journey",
 *   target: "1",
 * });
 * const wsc = getTask("superglue-wsc.fixed");
 * assert.deepEqual(wsc.dataset, { repo: "aps/super_glue", config: "wsc.fixed" });
 * assert.deepEqual(getTask("cb").metrics, ["f1_multiclass", "accuracy"]); // the first selects
 * ```
 */
export function getTask(name: string): Task {
  let key = name.trim().toLowerCase();
  const bare = key.replace(/^superglue-/, "");
  if (bare !== key && SUPERGLUE_ALIASES.has(bare)) key = bare;
  if (key === "wsc.fixed") key = "wsc";
  if (Object.hasOwn(TASKS, key)) return TASKS[key as TaskName];
  throw new TaskError(
    `unknown task ${JSON.stringify(name)}; known tasks: ${TASK_NAMES.join(", ")}. ` +
      "To train on your own data, define a custom task (a data file plus a source template).",
    { task: name },
  );
}

// ---------------------------------------------------------------------------------------------
// Templates and custom tasks

/** A parsed template: literal text and field names, alternating. */
interface ParsedTemplate {
  literals: string[];
  fields: string[];
}

/**
 * Parses a `{field}` template (`{{` and `}}` are literal braces).
 *
 * @param template E.g. `"question: {question} context: {context}"`.
 * @returns The literal pieces and the field names.
 * @throws {TaskError} On an unbalanced brace or an empty field name.
 *
 * @example
 * ```ts
 * import { templateFields } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const fields = templateFields("question: {question} context: {context} {{literal}}");
 * assert.deepEqual(fields, ["question", "context"]);
 * ```
 */
export function templateFields(template: string): string[] {
  return parseTemplate(template).fields;
}

function parseTemplate(template: string): ParsedTemplate {
  const literals: string[] = [];
  const fields: string[] = [];
  let lit = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === "{" && template[i + 1] === "{") {
      lit += "{";
      i++;
    } else if (c === "}" && template[i + 1] === "}") {
      lit += "}";
      i++;
    } else if (c === "{") {
      const end = template.indexOf("}", i + 1);
      const name = end < 0 ? "" : template.slice(i + 1, end).trim();
      if (end < 0 || name === "" || name.includes("{")) {
        throw new TaskError(
          `template ${JSON.stringify(template)}: unbalanced "{" at position ${i}; write ` +
            '"{field}" for a field and "{{" for a literal brace',
        );
      }
      literals.push(lit);
      fields.push(name);
      lit = "";
      i = end;
    } else if (c === "}") {
      throw new TaskError(
        `template ${JSON.stringify(template)}: unbalanced "}" at position ${i}; write "}}" ` +
          "for a literal brace",
      );
    } else lit += c;
  }
  literals.push(lit);
  return { literals, fields };
}

function fieldValue(row: Row, field: string): unknown {
  if (Object.hasOwn(row, field)) return row[field];
  // Dotted paths reach into structs: {idx.question}.
  let v: unknown = row;
  for (const part of field.split(".")) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function formatValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return JSON.stringify(v);
}

/**
 * Fills a template from a row.
 *
 * @param template E.g. `"question: {question} context: {context}"`.
 * @param row The row.
 * @param where The row's file and index, for the error message.
 * @returns The filled text. Strings are inserted as they are, numbers and booleans with
 *   `String()`, lists and objects as JSON.
 * @throws {TaskError} Naming the field, the file and the row when a field is missing or null.
 *
 * @example
 * ```ts
 * import { fillTemplate } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fillTemplate("q: {q} a: {a}", { q: "why?", a: 42 }), "q: why? a: 42");
 * ```
 */
export function fillTemplate(template: string, row: Row, where?: RowLocation): string {
  const t = parseTemplate(template);
  let out = t.literals[0];
  for (let i = 0; i < t.fields.length; i++) {
    const v = fieldValue(row, t.fields[i]);
    if (v === undefined || v === null) {
      const at = where ? ` (${describeLocation(where)})` : "";
      throw new TaskError(
        `the template ${JSON.stringify(template)} names {${t.fields[i]}}, but the row${at} ` +
          `${v === null ? "has null there" : "has no such field"}; its fields are ${
            Object.keys(row).map((k) => JSON.stringify(k)).join(", ")
          }`,
        { where },
      );
    }
    out += formatValue(v) + t.literals[i + 1];
  }
  return out;
}

/**
 * Options of {@link customTask}.
 */
export interface CustomTaskOptions {
  /** The task name (used in cache keys and logs). @default {"custom"} */
  name?: string;
  /** The training file (.csv, .tsv, .jsonl, .ndjson, .json or .parquet). */
  train: string;
  /** The validation file; without it, validation rows are drawn from train. */
  validation?: string;
  /** The test file; without it, test rows are drawn from validation (or train). */
  test?: string;
  /** The source template, e.g. `"question: {question} context: {context}"`. */
  source: string;
  /** The target: a column name (e.g. `"label"`) or a template with `{fields}`. */
  target: string;
  /** Metric names (metrics.ts); the first selects the best checkpoint. @default {["accuracy"]} */
  metrics?: MetricName[];
  /** All target strings, if the task is a classification (sets the maximum target length). */
  labels?: string[];
  /** Source length in tokens, EOS included. @default {256} */
  maxSourceLength?: number;
  /**
   * Target length in tokens, EOS included; longer targets are truncated (keeping EOS).
   * @default {from `labels`, else GENERATION_MAX_LENGTH (20)}
   */
  maxTargetLength?: number;
}

/**
 * Defines a task over local files, without code. Splits (`randperm` seed 42):
 * - train, validation and test given: used as they are;
 * - train and validation: validation is halved into validation and test, as docs/method.md does for
 *   small GLUE tasks;
 * - train and test: validation = `min(1000, n/10)` train rows drawn by `randperm`, the rest
 *   trains;
 * - train only: validation and test are each `min(1000, n/10)` train rows drawn by
 *   `randperm`, the rest trains.
 *
 * @param options Files, templates, metrics, lengths.
 * @returns The task.
 * @throws {TaskError} On a malformed template or an empty target name.
 * @throws {DatasetError} For a file of unknown type.
 *
 * @example
 * ```ts
 * import { customTask } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const t = customTask({ train: "train.csv", source: "review: {text}", target: "label" });
 * const example = t.format({ text: "great", label: "1" });
 * assert.deepEqual(example, { source: "review: great", target: "1" });
 * const qa = customTask({
 *   train: "data/train.jsonl",
 *   validation: "data/dev.jsonl",
 *   source: "question: {question} context: {context}",
 *   target: "{answer.text}", // a template: fields reach into structs
 * });
 * assert.deepEqual(qa.columns, ["question", "context", "answer"]);
 * ```
 */
export function customTask(options: CustomTaskOptions): Task {
  const name = options.name ?? "custom";
  const sourceFields = templateFields(options.source);
  const targetIsTemplate = options.target.includes("{");
  const targetFields = targetIsTemplate ? templateFields(options.target) : [options.target];
  if (!options.target.trim()) {
    throw new TaskError(`${name}: the target column name is empty`, { task: name });
  }
  if (sourceFields.length === 0) {
    throw new TaskError(
      `${name}: the source template ${JSON.stringify(options.source)} names no {field}`,
      { task: name },
    );
  }
  const files: Partial<Record<SplitName, string>> = { train: options.train };
  if (options.validation) files.validation = options.validation;
  if (options.test) files.test = options.test;
  for (const f of Object.values(files)) {
    const ext = f.slice(f.lastIndexOf(".")).toLowerCase();
    if (![".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet"].includes(ext)) {
      throw new DatasetError(
        f,
        `${name}: ${f}: unknown data file type; use .csv, .tsv, .jsonl, .json or .parquet`,
      );
    }
  }
  const top = (f: string) => f.split(".")[0];
  const columns = [...new Set([...sourceFields, ...targetFields].map(top))];
  return Object.freeze({
    name,
    files: Object.freeze(files),
    columns: Object.freeze(columns),
    splitScheme: "custom" as const,
    metrics: Object.freeze([...(options.metrics ?? ["accuracy"])]),
    labels: options.labels ? Object.freeze([...options.labels]) : undefined,
    maxSourceLength: options.maxSourceLength ?? 256,
    maxTargetLength: options.maxTargetLength,
    fingerprint: `custom:v1:${JSON.stringify([options.source, options.target])}`,
    format(row: Row, where?: RowLocation): Example {
      const source = fillTemplate(options.source, row, where);
      let target: string;
      if (targetIsTemplate) target = fillTemplate(options.target, row, where);
      else {
        const v = fieldValue(row, options.target);
        if (v === undefined || v === null) {
          const at = where ? ` (${describeLocation(where)})` : "";
          throw new TaskError(
            `the target field ${JSON.stringify(options.target)} is ${
              v === null ? "null" : "missing"
            } in the row${at}; its fields are ${
              Object.keys(row).map((k) => JSON.stringify(k)).join(", ")
            }`,
            { task: name, where },
          );
        }
        target = formatValue(v);
      }
      return { source, target };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Loading a task's splits

/** Where a task's data is, resolved before reading it: enough to key a cache. */
export interface TaskData {
  /** The task. */
  task: Task;
  /**
   * Files per source split: Hugging Face split names (`train`, `validation_matched`, ...) for
   * Hub tasks, train/validation/test for custom tasks.
   */
  files: Record<string, string[]>;
  /**
   * A string that changes when the data changes: the Hub commit sha and file names, or the
   * SHA-256 of each local file's contents.
   */
  identity: string;
}

/**
 * Options of {@link resolveTaskData} and {@link loadTaskExamples}.
 */
export interface TaskDataOptions extends HubOptions {
  /**
   * Where to read a Hub task's dataset from instead of its repo id: another repo id or a local
   * folder with the same layout (`<config>/<split>-*.parquet`).
   * @default {the task's repo, e.g. "nyu-mll/glue"}
   */
  datasetRepo?: string;
  /** Seed of the split permutations. @default {42} */
  seed?: number;
  /** Caps on the number of rows per split (the authors' `max_*_samples`). */
  maxSamples?: Partial<Record<SplitName, number>>;
}

/** The Hugging Face splits a scheme reads. */
const SCHEME_SOURCES: Record<SplitScheme, string[]> = {
  small: ["train", "validation"],
  large: ["train", "validation"],
  mnli: ["train", "validation_matched", "validation_mismatched"],
};

/**
 * Finds (downloading Hub data if needed) the files of a task's splits, without reading them.
 *
 * @param task A built-in or custom task.
 * @param options Hub settings and the dataset location.
 * @returns The files and a data identity for cache keys.
 * @throws {HubError} When Hub data cannot be had.
 * @throws {DatasetError} When a custom task's file does not exist.
 * @throws {TaskError} When the task has neither a dataset nor files.
 *
 * @example A built-in task (needs the network, or the files in the cache)
 * ```ts ignore
 * import { getTask, resolveTaskData } from "@adept/trainer";
 * const data = await resolveTaskData(getTask("cola"));
 * data.files.validation; // ["/…/datasets--nyu-mll--glue/snapshots/<sha>/cola/validation-….parquet"]
 * ```
 *
 * @example A custom task
 * ```ts
 * import { customTask, resolveTaskData } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.jsonl`, '{"text": "fine", "label": 1}\n');
 * const task = customTask({ train: `${dir}/train.jsonl`, source: "{text}", target: "label" });
 * const data = await resolveTaskData(task);
 * assert.deepEqual(data.files, { train: [`${dir}/train.jsonl`] });
 * assert.match(data.identity, /[0-9a-f]{64}/); // the file's SHA-256: it changes with the data
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function resolveTaskData(
  task: Task,
  options: TaskDataOptions = {},
): Promise<TaskData> {
  if (task.dataset) {
    const scheme = task.splitScheme as SplitScheme;
    const repo = options.datasetRepo ?? task.dataset.repo;
    const got: HubSplitFiles = await downloadHubSplits(
      repo,
      task.dataset.config,
      SCHEME_SOURCES[scheme],
      options,
    );
    const all = Object.values(got.files).flat();
    const rel = (f: string) => f.slice(got.snapshot.dir.length + 1);
    const identity = got.snapshot.sha
      ? `hub:${got.snapshot.repo}@${got.snapshot.sha}:${all.map(rel).join(",")}`
      : `local:${await contentDigests(all.map((f) => [rel(f), f]))}`;
    return { task, files: got.files, identity };
  }
  if (!task.files) {
    throw new TaskError(`task ${task.name} has neither a dataset nor files`, { task: task.name });
  }
  const files: Record<string, string[]> = {};
  for (const [split, f] of Object.entries(task.files)) {
    if (!f) continue;
    try {
      await checkRegularFile(f);
    } catch (e) {
      const why = e instanceof FileReadError ? e.message : "cannot be read";
      throw new DatasetError(f, `${task.name}: the ${split} file ${f} ${why}`, { cause: e });
    }
    files[split] = [f];
  }
  const identity = await contentDigests(Object.entries(files).map(([s, [f]]) => [s, f]));
  return { task, files, identity: `files:${identity}` };
}

/**
 * `name=<sha256 hex>` of each file's contents, joined by commas. Contents, not sizes and times:
 * an edit that keeps both (`cp -p`, `rsync -t`, a checkout) must change the cache key. The
 * files are read whole anyway when the data is tokenized; hashing one of SST-2's size (67k
 * rows) takes milliseconds.
 */
async function contentDigests(named: readonly (readonly [string, string])[]): Promise<string> {
  const parts: string[] = [];
  for (const [name, path] of named) {
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", await readFileChecked(path)),
    );
    let hex = "";
    for (const b of digest) hex += b.toString(16).padStart(2, "0");
    parts.push(`${name}=${hex}`);
  }
  return parts.join(",");
}

/** The formatted examples of a task's three splits. */
export interface TaskExamples {
  /** Training examples, in the split's order. */
  train: Example[];
  /** Validation examples (model selection). */
  validation: Example[];
  /** Test examples (the reported score). */
  test: Example[];
}

/** The rows of one source split (its files concatenated) and where each came from. */
interface SourceRows {
  rows: Row[];
  /** Per file, in order: the file, the index of its first row in `rows`, its reader's output. */
  parts: { file: string; start: number; located: LocatedRows }[];
}

async function readRows(task: Task, files: string[]): Promise<SourceRows> {
  const rows: Row[] = [];
  const parts: SourceRows["parts"] = [];
  for (const file of files) {
    const located = await readTableLocated(file, { columns: task.columns });
    parts.push({ file, start: rows.length, located });
    for (const r of located.rows) rows.push(r);
  }
  return { rows, parts };
}

/** Where row `i` of a source split is: its file, and its line, row or element there. */
function locate(src: SourceRows, i: number): RowLocation {
  let p = src.parts[0];
  for (const q of src.parts) {
    if (q.start > i) break;
    p = q;
  }
  return { file: p.file, [p.located.unit]: p.located.positions[i - p.start] };
}

function formatAll(task: Task, src: SourceRows, indices: ArrayLike<number>): Example[] {
  const out = new Array<Example>(indices.length);
  for (let k = 0; k < indices.length; k++) {
    out[k] = task.format(src.rows[indices[k]], locate(src, indices[k]));
  }
  return out;
}

/**
 * Reads a task's data and builds its train/validation/test examples with docs/method.md's split
 * rules (built-in tasks) or the custom-task rules of {@link customTask}.
 *
 * @param task A built-in or custom task.
 * @param options Hub settings, seed, caps; or pass `data` already resolved.
 * @returns The examples of each split.
 * @throws {DatasetError} For malformed files or missing columns.
 * @throws {TaskError} For rows a template or label rule cannot format (naming the file and
 *   the row's line, parquet row or JSON element, as {@link RowLocation} describes), and for a
 *   split left empty.
 *
 * @example
 * ```ts
 * import { customTask, loadTaskExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const rows = Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `t${i}`, label: 0 }));
 * await Deno.writeTextFile(`${dir}/train.jsonl`, rows.join("\n"));
 * await Deno.writeTextFile(`${dir}/dev.jsonl`, rows.slice(0, 10).join("\n"));
 * const task = customTask({
 *   train: `${dir}/train.jsonl`,
 *   validation: `${dir}/dev.jsonl`,
 *   source: "text: {text}",
 *   target: "label",
 * });
 * const ex = await loadTaskExamples(task); // dev is halved into validation and test (seed 42)
 * assert.deepEqual([ex.train.length, ex.validation.length, ex.test.length], [30, 5, 5]);
 * assert.deepEqual(ex.train[0], { source: "text: t0", target: "0" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadTaskExamples(
  task: Task,
  options: TaskDataOptions & { data?: TaskData } = {},
): Promise<TaskExamples> {
  const data = options.data ?? await resolveTaskData(task, options);
  const seed = options.seed ?? 42;
  const read: Record<string, SourceRows> = {};
  for (const [split, files] of Object.entries(data.files)) {
    read[split] = await readRows(task, files);
  }
  const sizes = Object.fromEntries(Object.entries(read).map(([k, v]) => [k, v.rows.length]));

  if (task.splitScheme !== "custom") {
    const sel = splitIndices(task.splitScheme, sizes, { seed, maxSamples: options.maxSamples });
    const build = (s: SplitName) => {
      const src = read[sel[s].source];
      return formatAll(task, src, sel[s].indices);
    };
    return { train: build("train"), validation: build("validation"), test: build("test") };
  }

  // Custom tasks.
  const all = (s: string) => {
    const n = read[s].rows.length;
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    return a;
  };
  const pick = (s: string, idx: Int32Array) => formatAll(task, read[s], idx);
  const cap = (split: SplitName, idx: Int32Array) => {
    const c = options.maxSamples?.[split];
    return c === undefined ? idx : idx.slice(0, c);
  };
  let train: Example[], validation: Example[], test: Example[];
  if (read.validation && read.test) {
    train = pick("train", cap("train", all("train")));
    validation = pick("validation", cap("validation", all("validation")));
    test = pick("test", cap("test", all("test")));
  } else if (read.validation) {
    const sel = splitIndices("small", sizes, { seed, maxSamples: options.maxSamples });
    train = pick("train", sel.train.indices);
    validation = pick("validation", sel.validation.indices);
    test = pick("validation", sel.test.indices);
  } else {
    const n = read.train.rows.length;
    const v = Math.min(1000, Math.floor(n / 10));
    const perm = randperm(n, seed);
    if (read.test) {
      validation = pick("train", cap("validation", perm.slice(0, v)));
      train = pick("train", cap("train", perm.slice(v)));
      test = pick("test", cap("test", all("test")));
    } else {
      validation = pick("train", cap("validation", perm.slice(0, v)));
      test = pick("train", cap("test", perm.slice(v, 2 * v)));
      train = pick("train", cap("train", perm.slice(2 * v)));
    }
  }
  for (
    const [split, ex] of [["train", train], ["validation", validation], ["test", test]] as const
  ) {
    if (ex.length === 0) {
      throw new TaskError(
        `${task.name}: the ${split} split is empty (train has ${read.train.rows.length} rows); ` +
          "give more data or separate validation and test files",
        { task: task.name },
      );
    }
  }
  return { train, validation, test };
}

/**
 * The target length of tasks without a label list: the authors' `generation_max_length` (20,
 * the "at most 20 new tokens" of docs/method.md), which their `train.py` uses as
 * `default_max_length` when a task has no `labels_list`.
 */
export const GENERATION_MAX_LENGTH = 20;

/**
 * A task's maximum target length in tokens (EOS included): the task's fixed value if set, else
 * the authors' `max(len(tokenizer.encode(label)) for label in labels)`, else
 * {@link GENERATION_MAX_LENGTH}. The data is never measured, so no split (the test split least
 * of all) chooses it.
 *
 * @param task The task.
 * @param encodedLength `(text) => number of ids with special tokens`, e.g.
 *   `(t) => tokenizer.encode(t).length`.
 * @returns The length (at least 1).
 *
 * @example
 * ```ts
 * import { getTask, maxTargetLength } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(maxTargetLength(getTask("rte"), (t) => t.length + 1), 2); // "0"/"1" plus EOS
 * ```
 */
export function maxTargetLength(task: Task, encodedLength: (text: string) => number): number {
  if (task.maxTargetLength !== undefined) return task.maxTargetLength;
  if (!task.labels) return GENERATION_MAX_LENGTH;
  let m = 1;
  for (const t of task.labels) m = Math.max(m, encodedLength(t));
  return m;
}
