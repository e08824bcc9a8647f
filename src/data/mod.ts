/**
 * Data: tokenizers, dataset readers, the paper's GLUE/SuperGLUE
 * tasks with torch-exact splits, the tokenized-dataset cache, fixed-shape batching, and the
 * task metrics.
 *
 * @module
 */

export * from "./batching.ts";
export * from "./cache.ts";
export * from "./datasets.ts";
export * from "./metrics.ts";
export * from "./mt19937.ts";
export * from "./randperm.ts";
export * from "./precompiled_charsmap.ts";
export * from "./splits.ts";
export * from "./task_file.ts";
export * from "./tasks.ts";
export * from "./tokenizer.ts";
