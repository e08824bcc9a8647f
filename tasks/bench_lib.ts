/**
 * What every benchmark shares: timing sized by measurement, the records (one JSON line per
 * figure, with the machine they came from), GPU-time profiles by op group, and the comparison of
 * a run with a baseline that a CI job can gate on.
 *
 * A record is a flat JSON object: `id` names the figure (the same id across runs), the other
 * fields are its parameters and its measurements. Which fields are measurements, and whether
 * higher is better, is {@link METRICS}.
 *
 * @module
 */

import type { Gpu } from "../src/gpu/device.ts";
import type { Op } from "../src/gpu/op.ts";

/** Measurement fields and whether higher is better. */
export const METRICS: Readonly<Record<string, "higher" | "lower">> = {
  gflops: "higher",
  tokens_per_s: "higher",
  steps_per_s: "higher",
  generated_tokens_per_s: "higher",
  ms_per_matmul: "lower",
  gpu_ms_per_matmul: "lower",
  ms_per_step: "lower",
  gpu_ms_per_step: "lower",
  ms_per_batch: "lower",
  ms_median: "lower",
  ms_min: "lower",
  seconds: "lower",
  peak_memory_mib: "lower",
  gpu_memory_mib: "lower",
  dispatches: "lower",
};

/** One benchmark figure. */
export type BenchRecord = { id: string } & Record<string, unknown>;

/** The machine and build a run came from (written once per record with `--out`). */
export interface RunInfo {
  adapter: string;
  vendor: string;
  architecture: string;
  software: boolean;
  limits: Record<string, number>;
  /** The reduction path the kernels take: subgroup operations or workgroup-memory trees. */
  reductions: "subgroups" | "trees";
  /** Whether the device accepts `shader-f16` (f16 frozen weights). */
  shaderF16: boolean;
  deno: string;
  commit: string;
  date: string;
}

/** The adapter, its main limits, Deno's version, the git commit and the date. */
export async function runInfo(gpu: Gpu): Promise<RunInfo> {
  let commit = "unknown";
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "HEAD"], stderr: "null" })
      .output();
    if (out.success) commit = new TextDecoder().decode(out.stdout).trim();
  } catch { /* no git: a package install */ }
  const l = gpu.limits;
  return {
    adapter: gpu.adapter.description,
    vendor: gpu.adapter.vendor,
    architecture: gpu.adapter.architecture,
    software: gpu.adapter.software,
    limits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
    reductions: gpu.subgroups ? "subgroups" : "trees",
    shaderF16: gpu.hasF16,
    deno: Deno.version.deno,
    commit,
    date: new Date().toISOString(),
  };
}

/**
 * Median milliseconds of `fn` (which waits for its GPU work), after one warm-up, repeated until
 * both `minReps` runs and `minSeconds` have passed (at most `maxReps`).
 */
export async function timeMs(
  fn: () => Promise<void>,
  o: { minReps?: number; minSeconds?: number; maxReps?: number } = {},
): Promise<{ median: number; min: number; reps: number }> {
  await fn();
  const xs: number[] = [];
  const start = performance.now();
  const minReps = o.minReps ?? 3, minMs = (o.minSeconds ?? 1) * 1000, maxReps = o.maxReps ?? 1000;
  while (xs.length < maxReps && (xs.length < minReps || performance.now() - start < minMs)) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], reps: xs.length };
}

/** The op group a dispatch's kernel belongs to, for profiles. */
export function kernelGroup(kernel: string, label: string): string {
  if (/attention|softmax/.test(kernel)) return "attention";
  // the matmul path of attention (scores, context and their gradients) counts as attention;
  // the projections around it (q·k·v, o) are products like any other
  if (/attention[^(]*\.(scores|context|dprobs|dv|dq|dk)(\(|$)/.test(label)) {
    return "attention";
  }
  if (kernel.startsWith("matmul")) return "matmul";
  if (kernel.startsWith("rms_norm")) return "norms";
  if (kernel.startsWith("cross_entropy")) return "loss";
  return "elementwise";
}

/**
 * GPU milliseconds per op group of a step: consecutive ops of one group form one timed pass,
 * and the passes of a group are summed. `origin` names the group of ops that are not the model's
 * (a method's, an optimizer's). Undefined without `timestamp-query`.
 */
export async function profileGroups(
  gpu: Gpu,
  ops: readonly { op: Op; origin?: string }[],
): Promise<Record<string, number> | undefined> {
  const runs: { label: string; ops: Op[] }[] = [];
  for (const { op, origin } of ops) {
    const g = origin ?? kernelGroup(op.dispatches[0]?.kernel ?? "", op.label);
    if (runs.at(-1)?.label === g) runs.at(-1)!.ops.push(op);
    else runs.push({ label: g, ops: [op] });
  }
  const ms = await gpu.profile(runs);
  if (!ms) return undefined;
  const out: Record<string, number> = {};
  runs.forEach((r, i) => out[r.label] = (out[r.label] ?? 0) + ms[i]);
  for (const k of Object.keys(out)) out[k] = +out[k].toFixed(3);
  return out;
}

/** A figure of the comparison table. */
export interface Comparison {
  id: string;
  metric: string;
  baseline: number;
  current: number;
  /** current / baseline, oriented so that > 1 is better. */
  ratio: number;
  regression: boolean;
}

/**
 * Compares every metric of `current` with the record of the same id in `baseline`. A metric is
 * a regression when it is worse by more than `tolerance` (0.1: 10 %).
 *
 * @example
 * ```ts
 * import { compareRecords } from "./bench_lib.ts";
 * import assert from "node:assert/strict";
 * const rows = compareRecords(
 *   [{ id: "matmul/512^3", gflops: 80 }],
 *   [{ id: "matmul/512^3", gflops: 100 }],
 *   0.1,
 * );
 * assert.equal(rows[0].regression, true); // 20 % slower
 * ```
 */
export function compareRecords(
  current: readonly BenchRecord[],
  baseline: readonly BenchRecord[],
  tolerance: number,
): Comparison[] {
  const base = new Map(baseline.map((r) => [r.id, r]));
  const out: Comparison[] = [];
  for (const r of current) {
    const b = base.get(r.id);
    if (!b) continue;
    for (const [metric, better] of Object.entries(METRICS)) {
      const cur = r[metric], old = b[metric];
      if (typeof cur !== "number" || typeof old !== "number" || old === 0 || cur === 0) continue;
      const ratio = better === "higher" ? cur / old : old / cur;
      out.push({
        id: r.id,
        metric,
        baseline: old,
        current: cur,
        ratio,
        regression: ratio < 1 - tolerance,
      });
    }
  }
  return out;
}

/** The comparison as a Markdown table (a CI job summary). */
export function comparisonMarkdown(rows: readonly Comparison[], tolerance: number): string {
  const lines = [
    `| figure | metric | baseline | current | change | |`,
    `| --- | --- | ---: | ---: | ---: | --- |`,
    ...rows.map((r) =>
      `| ${r.id} | ${r.metric} | ${r.baseline} | ${r.current} | ${
        ((r.ratio - 1) * 100).toFixed(1)
      } % | ${r.regression ? "**regression**" : r.ratio > 1 + tolerance ? "faster" : ""} |`
    ),
  ];
  const n = rows.filter((r) => r.regression).length;
  lines.push(
    "",
    n
      ? `${n} figure(s) regressed by more than ${tolerance * 100} % (change: positive is better).`
      : `No figure regressed by more than ${tolerance * 100} % (change: positive is better).`,
  );
  return lines.join("\n");
}

/** Reads a `--out` file (JSON lines). */
export async function readRecords(path: string): Promise<BenchRecord[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l) as BenchRecord;
    } catch {
      throw new Error(`${path}:${i + 1}: not a JSON line`);
    }
  });
}
