/**
 * The learning-rate schedule of the paper's recipe (transformers'
 * `get_linear_schedule_with_warmup`): linear warm-up from 0 to the peak over `warmup` steps,
 * then linear decay to 0 at `total` steps. Each parameter group follows it with its own peak.
 *
 * @module
 */

/**
 * The factor on the peak learning rate at step `t` (1-based: the step about to be applied):
 * `(t − 1) / warmup` during warm-up (so step 1 runs at 0, as PyTorch's `LambdaLR` does before
 * its first `scheduler.step()`), then `(total − (t − 1)) / (total − warmup)`, never below 0.
 *
 * @example
 * ```ts
 * import { linearWarmupDecay } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // the paper's 500 warm-up steps of 30,000: a factor on each group's peak learning rate
 * assert.equal(linearWarmupDecay(1, 500, 30000), 0);
 * assert.equal(linearWarmupDecay(251, 500, 30000), 0.5);
 * assert.equal(linearWarmupDecay(501, 500, 30000), 1);
 * assert.equal(linearWarmupDecay(30000, 500, 30000), 1 / 29500);
 * ```
 */
export function linearWarmupDecay(t: number, warmup: number, total: number): number {
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`step must be an integer >= 1, got ${t}`);
  if (!Number.isInteger(warmup) || warmup < 0 || !Number.isInteger(total) || total < 1) {
    throw new RangeError(
      `warmup (${warmup}) must be an integer >= 0 and total (${total}) an integer >= 1`,
    );
  }
  const done = t - 1; // scheduler steps taken before this optimizer step
  if (done < warmup) return done / warmup;
  return Math.max(0, (total - done) / Math.max(1, total - warmup));
}
