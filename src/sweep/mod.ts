/**
 * Sweeps: a grid of training runs from a sweep file (a base config and axes, JSON or YAML),
 * planned with a stable id per run (`planSweep`), run on this machine N at a time
 * (`runSweep`), as a Slurm job array (`slurmScript`, `submitSlurm`) or a Kubernetes Indexed
 * Job (`k8sManifests`), and reported as the paper's tables (`collectReport`, `reportMarkdown`,
 * `reportCsv`, `reportSvg`) beside the published numbers. `sweepMain` is `deno task sweep`.
 *
 * @module
 */

export * from "./bar_chart.ts";
export * from "./cli.ts";
export * from "./errors.ts";
export * from "./execute.ts";
export * from "./k8s.ts";
export * from "./local.ts";
export * from "./memory.ts";
export * from "./plan.ts";
export * from "./published.ts";
export * from "./report.ts";
export * from "./run_state.ts";
export * from "./slurm.ts";
export * from "./sweep_file.ts";
