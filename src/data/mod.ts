/**
 * Data: Hub access and the HF cache, torch-exact random permutations, the paper's splits, and
 * the task metrics.
 *
 * @module
 */

export * from "./hub.ts";
export * from "./metrics.ts";
export * from "./mt19937.ts";
export * from "./randperm.ts";
export * from "./splits.ts";
