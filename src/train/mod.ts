/**
 * Training: `train(config)` runs the paper's recipe end to end (one submit per step, evaluation,
 * checkpoints, resume, logs and plots); `evaluateAdapter` and `predict` use a saved adapter;
 * `runDemo` is what `deno task train` runs with no flags; `parseTrainArgs` is its command line.
 *
 * @module
 */

export * from "./checkpoint.ts";
export * from "./cli.ts";
export * from "./config.ts";
export * from "./demo.ts";
export * from "./evaluate.ts";
export * from "./inference.ts";
export * from "./plot.ts";
export * from "./run_log.ts";
export * from "./step.ts";
export * from "./trainer.ts";
