/**
 * Optimizers: AdamW with PyTorch's semantics, global gradient-norm clipping, the learning-rate
 * schedule and the step guard that skips non-finite steps.
 *
 * @module
 */

export * from "./adamw.ts";
export * from "./schedule.ts";
export * from "./step_guard.ts";
