/**
 * Compares two benchmark files (`deno task bench --out`): prints a Markdown table of every
 * figure of CURRENT against BASELINE (also to `$GITHUB_STEP_SUMMARY` when set) and exits with
 * status 1 when one is worse by more than the tolerance.
 *
 * Usage: `deno run -A tasks/bench_compare.ts CURRENT.jsonl BASELINE.jsonl [--tolerance 0.1]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { compareRecords, comparisonMarkdown, readRecords } from "./bench_lib.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { tolerance: { type: "string", default: "0.1" } },
});
const tolerance = Number(values.tolerance);
if (positionals.length !== 2 || !(tolerance >= 0 && tolerance < 1)) {
  console.error("usage: bench_compare.ts CURRENT.jsonl BASELINE.jsonl [--tolerance 0.1]");
  Deno.exit(2);
}
const [current, baseline] = await Promise.all(positionals.map(readRecords));
const rows = compareRecords(current, baseline, tolerance);
const md = comparisonMarkdown(rows, tolerance);
console.log(md);
const summary = Deno.env.get("GITHUB_STEP_SUMMARY");
if (summary) {
  await Deno.writeTextFile(summary, `## Benchmarks vs main\n\n${md}\n`, { append: true });
}
Deno.exit(rows.some((r) => r.regression) ? 1 : 0);
