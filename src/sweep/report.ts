/**
 * `sweep report`: every run folder of a plan read back into one results table, in the layout of
 * the paper's tables (a row per method, a column per task, then the GLUE and SuperGLUE means),
 * with the published DePT numbers beside ours where the task matches.
 *
 * Selection, per task and method: the runs are grouped by their settings but the seed; the group
 * with the best mean validation score (the best evaluation of each run on the task's first
 * metric, as the trainer keeps it) wins, ties going to the group planned first; its test score is
 * the mean over its seeds of the test score of each run's best parameters. Every number is read
 * from the runs' `log.jsonl`.
 *
 * Failures are data: crashed, killed, refused, diverged and interrupted runs are listed with the
 * last lines of their output; pending and running ones are counted. A run folder whose settings
 * or trainer config do not hash to its plan id is refused (the report stops, naming it).
 *
 * @module
 */

import { join } from "node:path";
import { resolveTask } from "../data/task_file.ts";
import { writeFileAtomic } from "../io/files.ts";
import "../peft/registry.ts";
import { methodModule } from "../peft/method.ts";
import { type EvalRecord, readLog } from "../train/run_log.ts";
import { barChartSvg } from "./bar_chart.ts";
import { checkRunDir } from "./execute.ts";
import { type PlannedRun, runSettings, type SweepPlan } from "./plan.ts";
import { DEPT_PUBLISHED, GLUE_TASKS, SUPERGLUE_TASKS } from "./published.ts";
import {
  OUTPUT_FILE,
  readRunState,
  type RunState,
  type RunStatus,
  tailLines,
} from "./run_state.ts";

/** One run's results, read from its folder. */
export interface RunResult {
  run: PlannedRun;
  state: RunState;
  /** The task's name (a custom task's `name`). */
  task: string;
  /** The task's first metric: it selects the best step and the best run. */
  metric: string;
  /** The best validation evaluation (log.jsonl). */
  validation?: { step: number; score: number; metrics: Record<string, number> };
  /** The test scores of the best parameters (log.jsonl). */
  test?: Record<string, number>;
  /** The last lines of the run's output (for failures). */
  lastLines: string[];
}

/** The chosen hyper-parameters of one task and method. */
export interface ChosenResult {
  /** The task's display name. */
  task: string;
  /** The method's registry name. */
  method: string;
  /** The task's first metric. */
  metric: string;
  /** The runs of the chosen settings (one per seed) that completed. */
  runs: RunResult[];
  /** Their mean best validation score. */
  validation: number;
  /** Their mean test score (the first metric). */
  test: number;
  /** The test scores' standard deviation over seeds (more than one seed). */
  testStd?: number;
  /** The chosen values of the axes (seed excepted), by flag. */
  settings: Record<string, unknown>;
  /** How many settings were compared. */
  candidates: number;
}

/** A sweep's results. */
export interface SweepReport {
  plan: SweepPlan;
  /** Every run, in plan order. */
  results: RunResult[];
  /** One per task and method with a completed run, tasks in table order. */
  chosen: ChosenResult[];
  /** The table's columns (display names): GLUE tasks, SuperGLUE tasks, then others. */
  tasks: string[];
  /** The table's rows (registry names), in plan order. */
  methods: string[];
  /** Runs per status. */
  counts: Partial<Record<RunStatus, number>>;
}

/** The short name of a method for tables: `ADePT`, `DePT`, `prompt tuning`. */
function methodLabel(method: string): string {
  return methodModule(method).title.replace(/ \(.*$/, "");
}

function bestValidation(log: EvalRecord[]): RunResult["validation"] {
  let best: EvalRecord | undefined;
  for (const r of log) if (r.split === "validation" && (!best || r.score > best.score)) best = r;
  return best && { step: best.step, score: best.score, metrics: best.metrics };
}

const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;

/**
 * Reads every run folder of a plan and chooses, per task and method, the best settings (see the
 * module doc).
 *
 * @example Two finished runs, written by hand
 * ```ts
 * import { collectReport, parseSweep, planSweep, runSettings } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const spec = parseSweep({ axes: { task: ["rte"], lr: [0.3, 0.4] } }, "g.yaml");
 * const plan = await planSweep(spec, { root });
 * for (const [i, run] of plan.runs.entries()) {
 *   const val = [70, 75][i], test = [71, 74][i];
 *   await Deno.mkdir(run.dir);
 *   await Deno.writeTextFile(`${run.dir}/settings.json`, JSON.stringify(runSettings(run.config)));
 *   const summary = { status: "completed", steps: 10 };
 *   await Deno.writeTextFile(`${run.dir}/summary.json`, JSON.stringify(summary));
 *   await Deno.writeTextFile(`${run.dir}/log.jsonl`, [
 *     { type: "eval", step: 10, split: "validation", metrics: { accuracy: val }, score: val },
 *     { type: "eval", step: 10, split: "test", metrics: { accuracy: test }, score: test },
 *   ].map((r) => JSON.stringify(r) + "\n").join(""));
 * }
 * const report = await collectReport(plan);
 * assert.equal(report.chosen[0].runs[0].run.id, plan.runs[1].id); // validation 75 beats 70
 * assert.equal(report.chosen[0].test, 74);
 * assert.deepEqual(report.chosen[0].settings, { task: "rte", lr: 0.4 });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function collectReport(plan: SweepPlan): Promise<SweepReport> {
  const taskInfo = new Map<string, Promise<{ name: string; metric: string }>>();
  const info = (task: string) => {
    if (!taskInfo.has(task)) {
      taskInfo.set(task, resolveTask(task).then((t) => ({ name: t.name, metric: t.metrics[0] })));
    }
    return taskInfo.get(task)!;
  };
  const results: RunResult[] = [];
  for (const run of plan.runs) {
    const exists = await Deno.stat(join(run.dir, "settings.json")).then(() => true, () => false);
    if (exists) await checkRunDir(run.dir);
    const state = await readRunState(run.dir);
    const { name, metric } = await info(run.config.task);
    const log = (await readLog(join(run.dir, "log.jsonl"))).filter((r): r is EvalRecord =>
      r.type === "eval"
    );
    const test = log.filter((r) => r.split === "test").at(-1)?.metrics;
    const failed = !["completed", "pending", "running"].includes(state.status);
    const lastLines = failed ? await tailLines(join(run.dir, OUTPUT_FILE), 8) : [];
    if (failed && lastLines.length === 0) {
      lastLines.push(...await tailLines(join(run.dir, "log.jsonl"), 3));
    }
    results.push({
      run,
      state,
      task: name,
      metric,
      validation: bestValidation(log),
      test,
      lastLines,
    });
  }

  // Group by (task, method), then by settings without the seed.
  const axes = plan.spec.axes.map((a) => a.flag).filter((f) => f !== "seed");
  const cells = new Map<string, Map<string, RunResult[]>>();
  for (const r of results) {
    const method = methodModule(r.run.config.method).name;
    const cellKey = JSON.stringify([r.run.config.task, method]);
    if (!cells.has(cellKey)) cells.set(cellKey, new Map());
    const { seed: _, ...rest } = runSettings(r.run.config);
    const g = JSON.stringify(rest);
    const groups = cells.get(cellKey)!;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(r);
  }
  const chosen: ChosenResult[] = [];
  for (const groups of cells.values()) {
    let best: ChosenResult | undefined;
    let candidates = 0;
    for (const runs of groups.values()) {
      const done = runs.filter((r) =>
        r.state.status === "completed" && r.validation && r.test?.[r.metric] !== undefined
      );
      if (done.length === 0) continue;
      candidates++;
      const validation = mean(done.map((r) => r.validation!.score));
      if (best && validation <= best.validation) continue;
      const tests = done.map((r) => r.test![r.metric]);
      const m = mean(tests);
      const first = done[0];
      const settings: Record<string, unknown> = {};
      for (const f of axes) {
        if (first.run.values[f] !== undefined) settings[f] = first.run.values[f];
      }
      best = {
        task: first.task,
        method: methodModule(first.run.config.method).name,
        metric: first.metric,
        runs: done,
        validation,
        test: m,
        testStd: tests.length > 1
          ? Math.sqrt(tests.reduce((a, x) => a + (x - m) ** 2, 0) / (tests.length - 1))
          : undefined,
        settings,
        candidates: 0,
      };
    }
    if (best) chosen.push({ ...best, candidates });
  }
  const seenTasks = [...new Set(results.map((r) => r.task))];
  const tasks = [
    ...GLUE_TASKS.filter((t) => seenTasks.includes(t)),
    ...SUPERGLUE_TASKS.filter((t) => seenTasks.includes(t)),
    ...seenTasks.filter((t) => !GLUE_TASKS.includes(t) && !SUPERGLUE_TASKS.includes(t)),
  ];
  const methods: string[] = [
    ...new Set(results.map((r) => methodModule(r.run.config.method).name as string)),
  ];
  const order = (c: ChosenResult) => tasks.indexOf(c.task) * 100 + methods.indexOf(c.method);
  chosen.sort((a, b) => order(a) - order(b));
  const counts: Partial<Record<RunStatus, number>> = {};
  for (const r of results) counts[r.state.status] = (counts[r.state.status] ?? 0) + 1;
  return { plan, results, chosen, tasks, methods, counts };
}

/** A suite mean over the tasks present: the value and how many of the suite's tasks it covers. */
function suiteMean(
  suite: readonly string[],
  score: (task: string) => number | undefined,
): { value: number; n: number } | undefined {
  const xs = suite.map(score).filter((x): x is number => x !== undefined);
  return xs.length ? { value: mean(xs), n: xs.length } : undefined;
}

/** The table of test scores: rows (label, cells), the header, for Markdown, CSV and the chart. */
function scoreTable(
  r: SweepReport,
): { header: string[]; rows: { label: string; cells: (number | undefined)[]; notes: string[] }[] } {
  const glue = r.tasks.some((t) => GLUE_TASKS.includes(t));
  const sglue = r.tasks.some((t) => SUPERGLUE_TASKS.includes(t));
  const header = [...r.tasks, ...(glue ? ["GLUE mean"] : []), ...(sglue ? ["SuperGLUE mean"] : [])];
  const rows = r.methods.map((m) => {
    const score = (t: string) => r.chosen.find((c) => c.method === m && c.task === t)?.test;
    const notes: string[] = [];
    const means: (number | undefined)[] = [];
    for (
      const [on, suite, name] of [[glue, GLUE_TASKS, "GLUE"], [
        sglue,
        SUPERGLUE_TASKS,
        "SuperGLUE",
      ]] as const
    ) {
      if (!on) continue;
      const s = suiteMean(suite, score);
      means.push(s?.value);
      if (s && s.n < suite.length) notes.push(`${name} mean over ${s.n} of ${suite.length} tasks`);
    }
    return { label: `${methodLabel(m)} (ours)`, cells: [...r.tasks.map(score), ...means], notes };
  });
  if (r.tasks.some((t) => t in DEPT_PUBLISHED.scores)) {
    const score = (t: string) => r.tasks.includes(t) ? DEPT_PUBLISHED.scores[t] : undefined;
    const means: (number | undefined)[] = [];
    for (
      const [on, suite, all] of [[glue, GLUE_TASKS, DEPT_PUBLISHED.means.glue], [
        sglue,
        SUPERGLUE_TASKS,
        DEPT_PUBLISHED.means.superglue,
      ]] as const
    ) {
      if (!on) continue;
      const s = suiteMean(suite, score)!;
      means.push(s.n === suite.length ? all : s.value);
    }
    rows.push({
      label: `${DEPT_PUBLISHED.method} (published)`,
      cells: [...r.tasks.map((t) => DEPT_PUBLISHED.scores[t]), ...means],
      notes: [],
    });
  }
  return { header, rows };
}

const fmt = (v: number | undefined) => v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(2);

/**
 * The report as Markdown: counts, the test-score table (with DePT's published numbers), the
 * chosen hyper-parameters, failures with their output's last lines, unfinished runs.
 *
 * @example
 * ```ts
 * import { collectReport, parseSweep, planSweep, reportMarkdown } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const plan = await planSweep(parseSweep({ axes: { task: ["rte", "cb"] } }, "g.yaml"), { root });
 * const md = reportMarkdown(await collectReport(plan)); // nothing ran yet
 * assert.match(md, /2 runs .*: 2 pending/);
 * assert.match(md, /\| DePT \(published\) +\| 79\.14 +\| 92\.86 /);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function reportMarkdown(r: SweepReport): string {
  const out: string[] = [];
  const { spec } = r.plan;
  const counts = Object.entries(r.counts).map(([k, v]) => `${v} ${k}`).join(", ");
  out.push(`# Sweep report: ${spec.name}`, "");
  out.push(`${r.results.length} runs in ${r.plan.root} (${spec.source}): ${counts}.`, "");
  const byMetric = new Map<string, string[]>();
  for (const t of r.tasks) {
    const m = r.results.find((x) => x.task === t)!.metric;
    byMetric.set(m, [...(byMetric.get(m) ?? []), t]);
  }
  const metrics = [...byMetric].map(([m, ts]) => `${m}: ${ts.join(", ")}`).join("; ");
  out.push(
    "Per task and method, the settings with the best mean validation score over seeds, on the " +
      `task's first metric (${metrics}); the test score of their best parameters on that ` +
      "metric, mean over seeds. Every number is read from the runs' log.jsonl.",
    "",
  );
  const table = (header: string[], rows: string[][], right: boolean[]) => {
    const w = header.map((h, i) => Math.max(h.length, 3, ...rows.map((x) => x[i].length)));
    const line = (cells: string[]) =>
      `| ${cells.map((c, i) => right[i] ? c.padStart(w[i]) : c.padEnd(w[i])).join(" | ")} |`;
    return [
      line(header),
      `| ${w.map((n, i) => right[i] ? "-".repeat(n - 1) + ":" : "-".repeat(n)).join(" | ")} |`,
      ...rows.map(line),
    ];
  };
  out.push("## Test scores", "");
  const t = scoreTable(r);
  if (r.chosen.length === 0) out.push("No run has completed yet.", "");
  out.push(
    ...table(
      ["method", ...t.header],
      t.rows.map((row) => [row.label, ...row.cells.map(fmt)]),
      [false, ...t.header.map(() => true)],
    ),
    "",
  );
  const notes = t.rows.flatMap((row) => row.notes.map((n) => `- ${row.label}: ${n}`));
  if (t.rows.some((x) => x.label.endsWith("(published)"))) {
    notes.push(`- ${DEPT_PUBLISHED.method} (published): ${DEPT_PUBLISHED.source}`);
  }
  if (notes.length) out.push(...notes, "");
  if (r.chosen.length) {
    out.push("## Chosen hyper-parameters", "");
    const keys = [...new Set(r.chosen.flatMap((c) => Object.keys(c.settings)))].filter((k) =>
      k !== "task" && k !== "method"
    );
    out.push(
      ...table(
        ["task", "method", ...keys, "seeds", "validation", "test", "of", "runs"],
        r.chosen.map((c) => [
          c.task,
          methodLabel(c.method),
          ...keys.map((k) => c.settings[k] === undefined ? "–" : String(c.settings[k])),
          String(c.runs.length),
          `${c.validation.toFixed(2)} ${c.metric}`,
          c.testStd === undefined
            ? c.test.toFixed(2)
            : `${c.test.toFixed(2)} ± ${c.testStd.toFixed(2)}`,
          String(c.candidates),
          c.runs.map((x) => x.run.id).join(" "),
        ]),
        [false, false, ...keys.map(() => true), true, true, true, true, false],
      ),
      "",
      '"of": how many settings were compared; "runs": the ids of the chosen runs (folders ' +
        "<task>-<method>-<id>).",
      "",
    );
  }
  const failed = r.results.filter((x) =>
    !["completed", "pending", "running"].includes(x.state.status)
  );
  if (failed.length) {
    out.push("## Failures", "");
    for (const f of failed) {
      out.push(`### ${f.run.name}: ${f.state.status}`, "", f.state.detail + ".", "");
      if (f.lastLines.length) out.push("```", ...f.lastLines, "```", "");
    }
  }
  const waiting = r.results.filter((x) =>
    x.state.status === "pending" || x.state.status === "running"
  );
  if (waiting.length) {
    out.push("## Not finished", "");
    for (const w of waiting) out.push(`- ${w.run.name}: ${w.state.detail}`);
    out.push("");
  }
  return out.join("\n");
}

function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? "" : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Every run as a CSV row: its settings (the axes), status, the task's first metric, the best
 * validation step, the best validation and the test score on that metric, every metric of both,
 * and whether it is among the chosen runs.
 *
 * @example
 * ```ts
 * import { collectReport, parseSweep, planSweep, reportCsv } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const plan = await planSweep(parseSweep({ axes: { lr: [0.3, 0.4] } }, "g.yaml"), { root });
 * const lines = reportCsv(await collectReport(plan)).trim().split("\n");
 * assert.equal(lines.length, 3);
 * assert.match(lines[0], /^index,id,folder,task,method,lr,status,/);
 * assert.match(lines[2], /^1,[0-9a-f]{12},rte-adept-[0-9a-f]{12},rte,adept,0\.4,pending,/);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function reportCsv(r: SweepReport): string {
  const axes = r.plan.spec.axes.map((a) => a.flag).filter((f) => f !== "task" && f !== "method");
  const valKeys = [...new Set(r.results.flatMap((x) => Object.keys(x.validation?.metrics ?? {})))];
  const testKeys = [...new Set(r.results.flatMap((x) => Object.keys(x.test ?? {})))];
  const chosen = new Set(r.chosen.flatMap((c) => c.runs.map((x) => x.run.id)));
  const header = [
    "index",
    "id",
    "folder",
    "task",
    "method",
    ...axes,
    "status",
    "metric",
    "best_step",
    "validation",
    "test",
    ...valKeys.map((k) => `validation_${k}`),
    ...testKeys.map((k) => `test_${k}`),
    "chosen",
  ];
  const rows = r.results.map((x) => [
    x.run.index,
    x.run.id,
    x.run.name,
    x.task,
    methodModule(x.run.config.method).name,
    ...axes.map((a) => x.run.values[a]),
    x.state.status,
    x.metric,
    x.validation?.step,
    x.validation?.score,
    x.test?.[x.metric],
    ...valKeys.map((k) => x.validation?.metrics[k]),
    ...testKeys.map((k) => x.test?.[k]),
    chosen.has(x.run.id),
  ]);
  return [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
}

/**
 * The test-score table as an SVG bar chart: a group per task (and mean), a bar per method,
 * DePT's published numbers beside ours.
 *
 * @example
 * ```ts
 * import { collectReport, parseSweep, planSweep, reportSvg } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const plan = await planSweep(parseSweep({ axes: { task: ["cb"] } }, "g.yaml"), { root });
 * const svg = reportSvg(await collectReport(plan)); // no run yet: the published bars only
 * assert.equal(svg.match(/<rect class="bar"/g)?.length, 2); // cb and the SuperGLUE mean
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function reportSvg(r: SweepReport): string {
  const t = scoreTable(r);
  return barChartSvg({
    title: `${r.plan.spec.name}: test scores of the chosen settings`,
    yLabel: "test score",
    categories: t.header,
    series: t.rows.map((row) => ({ name: row.label, values: row.cells })),
  });
}

/**
 * Writes `report.md`, `report.csv` and `report.svg` into `dir` (atomically) and returns their
 * paths.
 *
 * @example
 * ```ts
 * import { collectReport, parseSweep, planSweep, writeReport } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const plan = await planSweep(parseSweep({ axes: { task: ["rte"] } }, "g.yaml"), { root });
 * const files = await writeReport(await collectReport(plan), `${root}/report`);
 * assert.deepEqual(files.map((f) => f.slice(root.length)), [
 *   "/report/report.md",
 *   "/report/report.csv",
 *   "/report/report.svg",
 * ]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function writeReport(r: SweepReport, dir: string): Promise<string[]> {
  const files: [string, string][] = [
    [join(dir, "report.md"), reportMarkdown(r)],
    [join(dir, "report.csv"), reportCsv(r)],
    [join(dir, "report.svg"), reportSvg(r)],
  ];
  for (const [p, text] of files) await writeFileAtomic(p, text);
  return files.map(([p]) => p);
}
